"""``searchcans-async monitor``: click's CliRunner, the coroutine on a virtual clock, a subprocess.

The command runs its own event loop (``asyncio.run``), so for CliRunner the emulator serves
from a loop in a background thread. The subprocess runs the real entry point against an
emulator in the test's own loop and is stopped with SIGINT / SIGTERM.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

import searchcans_async
from searchcans_async import Account, SearchCans, ServerError
from searchcans_async._cli.app import cli
from searchcans_async._cli.errors import ExitCode
from searchcans_async._cli.monitor import EXIT_WARNING, MonitorOptions, monitor_command, run_monitor
from searchcans_async._clock import VirtualClock
from searchcans_async.monitor import PrometheusMetrics
from searchcans_async.testing import AccountSpec, Emulator, KeySpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterator

T = TypeVar("T")
NICKNAME = "Nick Canary-Person"
EMAIL = "canary.person@example.invalid"


def spec(canary_key: str, **options: Any) -> AccountSpec:
    keys = [KeySpec(canary_key, name="canary"), KeySpec(name="intern", quota=50)]
    return AccountSpec(keys=keys, nickname=NICKNAME, email=EMAIL, **options)


class ServedEmulator:
    """An :class:`Emulator` serving from its own event loop in a daemon thread."""

    def __init__(self, *accounts: AccountSpec) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.emulator = Emulator(list(accounts), latency=0)
        self.run(self.emulator.start())
        self.base_url = self.emulator.base_url

    def run(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.emulator.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def served(canary_key: str) -> Iterator[ServedEmulator]:
    """1000 credits, 3 lanes, the canary key and a capped one, personal fields set."""
    emulator = ServedEmulator(spec(canary_key, credits=1_000, lanes=3))
    yield emulator
    emulator.close()


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, served: ServedEmulator, canary_key: str) -> Any:
    """Run ``searchcans-async <args>`` with ``monitor`` registered, against ``served``."""
    monkeypatch.setitem(cli.commands, "monitor", monitor_command)
    for name in ("SEARCHCANS_API_KEY_FILE", "SEARCHCANS_ALLOW_KEY_ARGUMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEARCHCANS_BASE_URL", served.base_url)
    monkeypatch.setenv("SEARCHCANS_API_KEY", canary_key)

    def run(*args: str) -> Result:
        result = CliRunner().invoke(cli, list(args), prog_name="searchcans-async")
        for secret in (canary_key, NICKNAME, EMAIL):
            assert secret not in result.stdout
            assert secret not in result.stderr
        return result

    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- CliRunner ----------------------------------------------------------------------------------


def test_once_prints_one_line_and_exits_0(invoke: Any) -> None:
    """--once: remain, month, lanes and each key's quota on one line; no personal field."""
    result = invoke("monitor", "--once")
    assert result.exit_code == ExitCode.OK, result.stderr
    (line,) = result.stdout.splitlines()
    assert "remain 1000 · month 0 · permanent 0 · lanes 3" in line
    assert "keys: canary: shared pool, intern: 50 of 50 left" in line
    assert result.stderr == ""


def test_a_warning_with_exit_on_warning_exits_8(invoke: Any) -> None:
    """Below the threshold: one warning line on stderr and exit code 8."""
    result = invoke("monitor", "--once", "--warn-below", "2000", "--exit-on-warning")
    assert result.exit_code == EXIT_WARNING == 8
    assert result.stderr == "searchcans-async: warning: remain 1000 credits is below 2000\n"


def test_a_warning_without_exit_on_warning_still_exits_0(invoke: Any) -> None:
    """The warning is shown; the exit code stays 0 unless asked otherwise."""
    result = invoke("monitor", "--once", "--warn-below", "2000")
    assert result.exit_code == ExitCode.OK
    assert "warning: remain 1000 credits is below 2000" in result.stderr
    assert invoke("monitor", "--once", "--warn-below", "10").stderr == ""


def test_the_continuous_monitor_stops_at_the_first_warning_when_asked(invoke: Any) -> None:
    """Without --once: checks, prints a line, warns and exits 8 (no interval waited)."""
    result = invoke("monitor", "--warn-below", "5000", "--exit-on-warning", "--display", "plain")
    assert result.exit_code == EXIT_WARNING
    assert len(result.stdout.splitlines()) == 1
    assert "remain 1000" in result.stdout
    assert "below 5000" in result.stderr


def test_the_live_view_shows_the_account_and_the_key_quotas(invoke: Any) -> None:
    """--display live draws the account table, the keys table and the warning."""
    result = invoke("monitor", "--display", "live", "--warn-below", "5000", "--exit-on-warning")
    assert result.exit_code == EXIT_WARNING
    for text in ("SearchCans account", "credits left", "1,000", "Parallel Lanes", "API keys"):
        assert text in result.stdout
    assert "50 of 50 left" in result.stdout
    assert "warning: remain 1000 credits is below 5000" in result.stdout


def test_a_refused_key_exits_5_with_one_line(invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown key: one error line on stderr, exit code 5 (with and without --once)."""
    monkeypatch.setenv("SEARCHCANS_API_KEY", "sk_not_a_key_of_this_account")
    for args in (["--once"], ["--display", "plain"]):
        result = invoke("monitor", *args)
        assert result.exit_code == ExitCode.AUTH == 5
        assert result.stderr.startswith("searchcans-async: error: ")
        assert len(result.stderr.splitlines()) == 1


def test_an_unreachable_service_exits_7_with_once(invoke: Any) -> None:
    """Nothing listening: --once fails with one line and exit code 7."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = invoke("--base-url", nowhere, "--retries", "0", "monitor", "--once")
    assert result.exit_code == ExitCode.ERROR == 7
    assert "cannot reach" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_taken_metrics_port_exits_7(invoke: Any) -> None:
    """Another process holds the port: one line naming it, exit code 7."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = invoke("monitor", "--metrics-port", str(port), "--display", "plain")
    assert result.exit_code == ExitCode.ERROR
    expected = f"searchcans-async: error: cannot serve metrics on 127.0.0.1:{port}: "
    assert result.stderr.startswith(expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once", "--metrics-port", "0"], "nothing to serve"),
        (["--once", "--warn-runout", "60"], "--warn-runout needs a burn rate"),
        (["--exit-on-warning"], "--exit-on-warning needs a warning"),
        (["--interval", "0"], "--interval"),
        (["--metrics-port", "70000"], "--metrics-port"),
    ],
)
def test_options_that_make_no_sense_exit_2(invoke: Any, args: list[str], message: str) -> None:
    """Bad options: one line saying what is wrong, exit code 2, nothing sent."""
    result = invoke("monitor", *args)
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_metrics_without_the_extra_exit_2_naming_it(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--metrics-port without prometheus-client: one line saying what to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # "not installed"
    monkeypatch.delitem(sys.modules, "searchcans_async._monitor.prometheus", raising=False)
    monkeypatch.delattr(searchcans_async._monitor, "prometheus", raising=False)
    result = invoke("monitor", "--metrics-port", "0")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "searchcans-async: error: --metrics-port needs prometheus-client: "
        "pip install 'searchcans-async[monitor]'\n"
    )
    assert invoke("monitor", "--once").exit_code == ExitCode.OK  # the rest works without it


def test_verbose_logging_keeps_the_key_out(invoke: Any, canary_key: str) -> None:
    """-vv logs the client's work to stderr; the key and personal fields stay out."""
    result = invoke("-vv", "monitor", "--once")
    assert result.exit_code == ExitCode.OK
    assert "account: remain 1000, month 0, 3 lanes" in result.stderr


def test_the_exit_codes_agree_with_the_command_groups() -> None:
    """8 is reserved in the group's codes for the monitor; the others are shared (0, 2, 5, 7)."""
    assert EXIT_WARNING == ExitCode.WARNING == 8
    assert (ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.ERROR) == (0, 2, 5, 7)


# -- the coroutine on a virtual clock -------------------------------------------------------------


async def test_a_steady_drain_raises_a_runout_warning_and_exits_8(canary_key: str) -> None:
    """Another consumer spends 100 credits a minute: at 1.67/s, 800 credits last 8 minutes."""
    clock = VirtualClock()
    out = io.StringIO()
    warned: list[str] = []
    metrics = PrometheusMetrics()
    async with (
        Emulator([spec(canary_key, credits=1_000)], latency=0) as emu,
        SearchCans(canary_key, base_url=emu.base_url, clock=clock) as client,
    ):

        async def drained_account() -> Account:
            emu.drain(100)
            return await client.account()

        options = MonitorOptions(interval=60, warn_runout=900, exit_on_warning=True)
        code = await run_monitor(
            drained_account,
            options,
            console=Console(file=out, width=200),
            warn=warned.append,
            metrics=metrics,
            clock=clock,
        )
    assert code == EXIT_WARNING
    assert emu.stats().account_calls == 2  # nothing checked after the warning
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "remain 800" in lines[1]
    assert "burn 1.67/s · runs out in 8m00s" in lines[1]
    assert warned == [
        "remain 800 credits runs out in about 8m00s at 1.67 credits/s (warning threshold 15m00s)"
    ]
    assert metrics.registry.get_sample_value("searchcans_account_remain_credits") == 800


async def test_a_failed_check_is_shown_and_the_monitor_goes_on(clock: VirtualClock) -> None:
    """A 503 prints one line with the next check's time; the next check succeeds."""
    answers: list[Account | Exception] = [
        ServerError("down for maintenance", http_status=503),
        Account(remain=10, concurrent=1),
    ]

    async def source() -> Account:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    out = io.StringIO()
    options = MonitorOptions(interval=30, warn_below=100, exit_on_warning=True)
    code = await run_monitor(
        source, options, console=Console(file=out, width=200), warn=print, clock=clock
    )
    first, second = out.getvalue().splitlines()
    assert code == EXIT_WARNING
    assert "account check failed: down for maintenance (HTTP 503); next check in" in first
    assert "remain 10" in second
    assert 30 <= clock.sleeps[0] <= 60


async def test_setting_stop_ends_the_monitor_with_0(clock: VirtualClock) -> None:
    """What Ctrl-C and SIGTERM do (they set the stop event): a clean end, exit code 0."""
    stop = asyncio.Event()
    checks = 0

    async def source() -> Account:
        nonlocal checks
        checks += 1
        if checks == 3:
            stop.set()
        return Account(remain=10, concurrent=1)

    out = io.StringIO()
    options = MonitorOptions(interval=5)
    console = Console(file=out)
    code = await run_monitor(source, options, console=console, warn=print, stop=stop, clock=clock)
    assert code == ExitCode.OK
    assert checks == 3
    assert len(out.getvalue().splitlines()) == 3


# -- a real process ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_the_process_serves_metrics_and_a_signal_stops_it_cleanly(
    canary_key: str, signum: signal.Signals
) -> None:
    """Scrape the running command's /metrics; Ctrl-C (or SIGTERM) ends it with exit code 0."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEARCHCANS_")}
    async with Emulator([spec(canary_key, credits=1_000, lanes=3)], latency=0) as emu:
        env |= {"SEARCHCANS_API_KEY": canary_key, "SEARCHCANS_BASE_URL": emu.base_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "searchcans_async", "-vv", "monitor",
            "--metrics-port", "0", "--interval", "1", "--display", "plain",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            first_line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            url = ""
            errors = []
            while not url:
                line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
                assert line, f"the monitor ended before serving: {''.join(errors)}"
                errors.append(line)
                if "serving metrics on " in line:
                    url = line.rsplit(" ", 1)[1].strip()
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                text = await response.text()
        finally:
            process.send_signal(signum)
            out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert url.startswith("http://127.0.0.1:")
    assert "remain 1000 · month 0 · permanent 0 · lanes 3" in first_line
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }
    assert found["searchcans_account_remain_credits"] == 1_000
    assert found["searchcans_account_lanes"] == 3
    everything = first_line + out.decode() + "".join(errors) + err.decode() + text
    for secret in (canary_key, NICKNAME, EMAIL):
        assert secret not in everything
    assert "Traceback" not in everything
