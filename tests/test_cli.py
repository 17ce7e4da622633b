"""The command line in-process (click's CliRunner) against a real emulator on 127.0.0.1.

The commands run their own event loop (``asyncio.run``), so the emulator serves from a
loop in a background thread here (:class:`ServedEmulator`), and tests read its records
through that loop. Subprocess runs of the real entry point are in test_cli_process.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from searchcans_async._cli import main
from searchcans_async._cli.app import cli
from searchcans_async._cli.errors import ExitCode
from searchcans_async.testing import AccountSpec, Emulator, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping
    from pathlib import Path

T = TypeVar("T")


class ServedEmulator:
    """An :class:`Emulator` serving from its own event loop in a daemon thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.emulator = Emulator(*args, **kwargs)
        self.run(self.emulator.start())
        self.base_url = self.emulator.base_url
        self.api_key = self.emulator.api_key

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""

        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=60)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn`` on the emulator's loop (its state is not thread-safe)."""

        async def wrapped() -> T:
            return fn(*args)

        return self.run(wrapped())

    def env(self, **extra: str | None) -> dict[str, str | None]:
        """The environment a command needs to reach this emulator with its first key."""
        return {
            "SEARCHCANS_BASE_URL": self.base_url,
            "SEARCHCANS_API_KEY": self.api_key,
            "SEARCHCANS_API_KEY_FILE": None,
            "SEARCHCANS_ALLOW_KEY_ARGUMENT": None,
            **extra,
        }

    def close(self) -> None:
        """Stop serving and close the loop."""
        self.run(self.emulator.aclose())
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def serving() -> Iterator[Callable[..., ServedEmulator]]:
    """The body of the ``serve`` fixture (test_cli_batch.py declares its own from it)."""
    served: list[ServedEmulator] = []

    def factory(*args: Any, **kwargs: Any) -> ServedEmulator:
        kwargs.setdefault("latency", 0)
        served.append(ServedEmulator(*args, **kwargs))
        return served[-1]

    yield factory
    for emulator in served:
        emulator.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServedEmulator]]:
    """A factory of emulators served from a background loop, all closed after the test."""
    yield from serving()


@pytest.fixture
def canary_emulator(serve: Callable[..., ServedEmulator], canary_key: str) -> ServedEmulator:
    """An emulator whose key is the canary, with a second key holding its own quota."""
    spec = AccountSpec(
        credits=500,
        lanes=3,
        keys=[KeySpec(canary_key, name="canary"), KeySpec(name="capped", quota=40)],
        nickname="Ada",
        email="ada@example.invalid",
    )
    # Key suffixes tell the two keys apart (the published mask, `sk_` and bullets, would not).
    return serve([spec], wire=WireOptions(key_suffix=True))


def invoke(
    args: list[str], env: Mapping[str, str | None] | None = None, stdin: str | bytes | None = None
) -> Result:
    """Run the command in-process; exceptions are not swallowed."""
    return CliRunner().invoke(cli, args, env=env, input=stdin, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    """The single 'searchcans-async: error: ...' line of stderr."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("searchcans-async: error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- the group ---------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    """--help shows the commands and exits 0."""
    result = invoke(["--help"])
    assert result.exit_code == 0
    for command in ("account", "search", "read", "batch", "emulator", "demo"):
        assert command in result.stdout


def test_version() -> None:
    """--version prints the package version."""
    from searchcans_async import __version__  # noqa: PLC0415  # imported where the test needs it

    result = invoke(["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_an_unknown_command_is_one_line_and_exit_2() -> None:
    """click's usage errors become one line, not a usage dump."""
    result = invoke(["frobnicate"])
    assert result.exit_code == ExitCode.USAGE
    assert "frobnicate" in one_error_line(result)


def test_a_missing_argument_names_the_command_help() -> None:
    """A usage error says which command's --help to read."""
    result = invoke(["search"])
    assert result.exit_code == ExitCode.USAGE
    assert "searchcans-async search --help" in one_error_line(result)


def test_main_runs_the_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console-script entry point runs the group and exits with its code."""
    monkeypatch.setattr("sys.argv", ["searchcans-async", "--help"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert "Usage: searchcans-async" in capsys.readouterr().out


def test_main_without_the_cli_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without click or rich: one line naming the extra, exit 2."""
    import builtins  # noqa: PLC0415  # imported where the test needs it
    import sys  # noqa: PLC0415  # imported where the test needs it

    real_import = builtins.__import__

    def no_rich(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "rich" or name.startswith("rich."):
            raise ImportError(f"No module named {name!r}", name="rich")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m.startswith("searchcans_async._cli.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_rich)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "pip install 'searchcans-async[cli]'" in capsys.readouterr().err


# -- the API key ---------------------------------------------------------------------------


def test_a_missing_key_is_one_line_and_exit_2(serve: Callable[..., ServedEmulator]) -> None:
    """No SEARCHCANS_API_KEY and no key file: one clear line, exit 2, nothing sent."""
    emu = serve()
    result = invoke(["account"], env=emu.env(SEARCHCANS_API_KEY=None))
    assert result.exit_code == ExitCode.USAGE
    assert "SEARCHCANS_API_KEY" in one_error_line(result)
    assert emu.call(emu.emulator.stats).account_calls == 0


def test_the_key_argument_is_refused_without_the_opt_in(
    canary_emulator: ServedEmulator, canary_key: str
) -> None:
    """--api-key is refused (shell history) unless explicitly allowed, and never echoed."""
    env = canary_emulator.env(SEARCHCANS_API_KEY=None)
    result = invoke(["--api-key", canary_key, "account"], env=env)
    assert result.exit_code == ExitCode.USAGE
    assert "shell history" in one_error_line(result)
    assert canary_key not in result.output + result.stderr
    allowed = invoke(
        ["--api-key", canary_key, "account", "--json"],
        env={**env, "SEARCHCANS_ALLOW_KEY_ARGUMENT": "1"},
    )
    assert allowed.exit_code == 0
    assert canary_key not in allowed.output + allowed.stderr


def test_the_key_file_is_read_and_checked(
    canary_emulator: ServedEmulator, canary_key: str, tmp_path: Path
) -> None:
    """--api-key-file works; a file with two lines or none is refused without echoing it."""
    env = canary_emulator.env(SEARCHCANS_API_KEY=None)
    key_file = tmp_path / "key"
    key_file.write_text(f"\n{canary_key}\n")
    assert invoke(["--api-key-file", str(key_file), "account", "--json"], env=env).exit_code == 0
    key_file.write_text(f"{canary_key}\nsecond line\n")
    result = invoke(["--api-key-file", str(key_file), "account"], env=env)
    assert result.exit_code == ExitCode.USAGE
    assert "alone, on one line" in one_error_line(result)
    assert canary_key not in result.output + result.stderr
    missing = invoke(["--api-key-file", str(tmp_path / "nope"), "account"], env=env)
    assert missing.exit_code == ExitCode.USAGE
    assert "cannot read the key file" in one_error_line(missing)
    both = invoke(
        ["--api-key-file", str(key_file), "--api-key", "x", "account"],
        env={**env, "SEARCHCANS_ALLOW_KEY_ARGUMENT": "1"},
    )
    assert both.exit_code == ExitCode.USAGE
    assert "not both" in one_error_line(both)


def test_a_key_with_whitespace_is_refused_locally(serve: Callable[..., ServedEmulator]) -> None:
    """A key the client cannot send is a usage error, before any request."""
    emu = serve()
    result = invoke(["account"], env=emu.env(SEARCHCANS_API_KEY="sk_a b"))
    assert result.exit_code == ExitCode.USAGE
    assert "whitespace" in one_error_line(result)


def test_a_rejected_key_is_exit_5_without_the_key(
    serve: Callable[..., ServedEmulator], canary_key: str
) -> None:
    """401: one line with a hint, exit 5, and the key is not in it."""
    emu = serve()
    result = invoke(["-v", "search", "python"], env=emu.env(SEARCHCANS_API_KEY=canary_key))
    assert result.exit_code == ExitCode.AUTH
    line = one_error_line(result)
    assert "HTTP 401" in line
    assert "SEARCHCANS_API_KEY" in line
    assert canary_key not in result.output + result.stderr


# -- service errors --------------------------------------------------------------------------


def test_an_unreachable_base_url_is_one_line_and_exit_7() -> None:
    """Connection refused: the URL in a single line, exit 7, no traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke(
        ["--retries", "0", "account"],
        env={"SEARCHCANS_BASE_URL": url, "SEARCHCANS_API_KEY": "sk_test_unreachable"},
    )
    assert result.exit_code == ExitCode.ERROR
    line = one_error_line(result)
    assert f"cannot reach {url} (from SEARCHCANS_BASE_URL)" in line  # where it came from
    assert "check SEARCHCANS_BASE_URL" in line
    assert "ssl:default" not in line  # aiohttp's wording, meaningless for plain http
    assert "sk_test_unreachable" not in result.stderr
    flag = invoke(
        ["--retries", "0", "--base-url", url, "account"],
        env={"SEARCHCANS_API_KEY": "sk_test_unreachable"},
    )
    assert "check --base-url" in one_error_line(flag)


def test_an_invalid_base_url_is_a_usage_error() -> None:
    """A base URL that is not http(s) is refused before anything is sent."""
    result = invoke(
        ["--base-url", "ftp://example.com", "account"],
        env={"SEARCHCANS_API_KEY": "sk_test"},
    )
    assert result.exit_code == ExitCode.USAGE
    assert "--base-url" in one_error_line(result)


def test_no_credits_is_exit_4(serve: Callable[..., ServedEmulator]) -> None:
    """A 402 answer maps to the billing exit code."""
    emu = serve(credits=0)
    result = invoke(["read", "https://example.com"], env=emu.env())
    assert result.exit_code == ExitCode.BILLING
    assert "insufficient credits" in one_error_line(result)


def test_an_invalid_option_is_a_usage_error_before_sending(
    serve: Callable[..., ServedEmulator],
) -> None:
    """pages with bing is refused by the request's own validation; nothing is sent."""
    emu = serve()
    result = invoke(["search", "x", "--engine", "bing", "--pages", "2"], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert "pages" in one_error_line(result)
    assert emu.call(emu.emulator.stats).requests == 0


# -- account ---------------------------------------------------------------------------------


def test_account_table_shows_credits_lanes_and_quotas(canary_emulator: ServedEmulator) -> None:
    """The table: remain, lanes, each key with 'shared pool' or its own quota; no email."""
    result = invoke(["account"], env=canary_emulator.env())
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "500" in out
    assert "Parallel Lanes" in out
    assert "shared pool" in out
    assert "40 of 40 left" in out
    assert "this key" in out
    assert "ada@example.invalid" not in out
    assert "Ada" not in out


def test_account_personal_fields_need_the_flag(canary_emulator: ServedEmulator) -> None:
    """--show-personal adds nickname and email, in the table and in JSON."""
    table = invoke(["account", "--show-personal"], env=canary_emulator.env())
    assert "ada@example.invalid" in table.stdout
    payload = json.loads(
        invoke(["account", "--json", "--show-personal"], env=canary_emulator.env()).stdout
    )
    assert payload["email"] == "ada@example.invalid"
    assert payload["nickname"] == "Ada"


def test_account_json(canary_emulator: ServedEmulator, canary_key: str) -> None:
    """--json: the numbers, the keys without their masked values, and no personal data."""
    result = invoke(["account", "--json"], env=canary_emulator.env())
    payload = json.loads(result.stdout)
    assert (payload["remain"], payload["spendable"], payload["concurrent"]) == (500, 500, 3)
    assert "email" not in payload
    canary, capped = payload["keys"]
    assert (canary["name"], canary["quota"], canary["calling"]) == ("canary", "shared pool", True)
    assert (capped["total"], capped["remain"], capped["calling"]) == (40, 40, False)
    assert canary_key not in result.stdout


def test_account_of_an_inactive_key(serve: Callable[..., ServedEmulator]) -> None:
    """An inactive key: the server refuses it (403), exit 5."""
    emu = serve()
    emu.call(emu.emulator.set_key_active, emu.api_key, False)
    result = invoke(["account", "--json"], env=emu.env())
    assert result.exit_code == ExitCode.AUTH


# -- search and read -----------------------------------------------------------------------


def test_search_prints_numbered_results_and_the_cost(serve: Callable[..., ServedEmulator]) -> None:
    """Text output: numbered titles and links on stdout, credits on stderr."""
    emu = serve()
    result = invoke(["search", "python asyncio", "--pages", "2"], env=emu.env())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("1. ")
    assert "\n20. " in result.stdout
    assert "2 credits" in result.stderr
    assert emu.call(emu.emulator.stats).charged == 2


def test_search_json_has_the_organic_results(serve: Callable[..., ServedEmulator]) -> None:
    """--json: one object with organic results and the blocks asked for."""
    emu = serve()
    result = invoke(
        ["search", "rust", "--country", "us", "--language", "en", "--with", "knowledge-graph",
         "--json"],
        env=emu.env(),
    )  # fmt: skip
    payload = json.loads(result.stdout)
    assert len(payload["organic"]) == 10
    assert payload["organic"][0]["position"] == 1
    assert payload["knowledge_graph"]["title"] == "Rust"
    assert payload["credits"] == 1


def test_search_text_prints_every_block_asked_for(serve: Callable[..., ServedEmulator]) -> None:
    """--with people-also-ask --with knowledge-graph: both blocks follow the results."""
    emu = serve()
    command = ["search", "rust", "--with", "people-also-ask", "--with", "knowledge-graph"]
    result = invoke([*command, "--with", "ai-summary", "--with", "news-aggregation"], env=emu.env())
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith("1. ")
    assert "People also ask:\n- What is rust?" in out
    assert "Knowledge graph:\n- Rust\n   Topic" in out
    assert "AI summary:\n- In short, rust is covered by" in out
    assert "Top stories:\n- rust: story 1" in out
    assert out.index("10. ") < out.index("People also ask:") < out.index("Knowledge graph:")


def test_search_of_a_vertical_engine_prints_its_own_list(
    serve: Callable[..., ServedEmulator],
) -> None:
    """google_news has no organic list: its news results are printed instead."""
    emu = serve()
    result = invoke(["search", "llm", "--engine", "google_news"], env=emu.env())
    assert result.exit_code == 0
    assert result.stdout.startswith("1. ")


def test_search_with_no_results(serve: Callable[..., ServedEmulator]) -> None:
    """A 9999 answer is an empty result, not an error, and costs nothing."""
    emu = serve(no_results=["nothing here"])
    result = invoke(["search", "nothing here"], env=emu.env())
    assert result.exit_code == 0
    assert "no results" in result.stdout
    payload = json.loads(invoke(["search", "nothing here", "--json"], env=emu.env()).stdout)
    assert payload["no_results"] is True
    assert emu.call(emu.emulator.stats).charged == 0


def test_read_prints_the_markdown(serve: Callable[..., ServedEmulator]) -> None:
    """read: the title and the markdown on stdout; the cost (with proxy) on stderr."""
    emu = serve()
    result = invoke(["read", "https://example.com/docs/asyncio", "--proxy", "1"], env=emu.env())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# ")
    assert "[Source](https://example.com/docs/asyncio)" in result.stdout
    assert "4 credits" in result.stderr


def test_read_json(serve: Callable[..., ServedEmulator]) -> None:
    """read --json: url, title, markdown, credits."""
    emu = serve()
    result = invoke(["read", "https://example.com/a", "--json"], env=emu.env())
    payload = json.loads(result.stdout)
    assert payload["url"] == "https://example.com/a"
    assert payload["markdown"]
    assert payload["credits"] == 2


def test_read_refuses_a_wait_without_browser(serve: Callable[..., ServedEmulator]) -> None:
    """--wait needs --browser: a usage error from the request's validation."""
    emu = serve()
    result = invoke(["read", "https://example.com", "--wait", "2"], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert "browser" in one_error_line(result)


def test_verbose_logging_never_shows_the_key(
    canary_emulator: ServedEmulator, canary_key: str
) -> None:
    """-vv logs the client's work to stderr, with the key nowhere."""
    result = invoke(["-vv", "search", "python"], env=canary_emulator.env())
    assert result.exit_code == 0
    assert canary_key not in result.output + result.stderr


# -- emulator ------------------------------------------------------------------------------


async def test_serve_until_announces_the_url_and_the_key() -> None:
    """The emulator command's loop: announce, serve until told to stop, close."""
    from searchcans_async._cli.emulator import serve_until  # noqa: PLC0415  # imported where the test needs it

    lines: list[str] = []
    stop, ready = asyncio.Event(), asyncio.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            ready.set()

    emu = Emulator(port=0)
    task = asyncio.create_task(serve_until(emu, stop, echo))
    async with asyncio.timeout(30):
        await ready.wait()
    assert f"export SEARCHCANS_API_KEY={emu.api_key}" in lines
    stop.set()
    await task
    assert not emu.running
    assert lines[-1] == "emulator stopped"


async def test_serve_until_reports_a_port_in_use() -> None:
    """A port already taken: one line, exit 7."""
    from searchcans_async._cli.emulator import serve_until  # noqa: PLC0415  # imported where the test needs it
    from searchcans_async._cli.errors import CliError  # noqa: PLC0415  # imported where the test needs it

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        emu = Emulator(port=taken.getsockname()[1])
        with pytest.raises(CliError) as raised:
            await serve_until(emu, asyncio.Event(), print)
    assert raised.value.exit_code == ExitCode.ERROR
    assert "cannot listen" in str(raised.value)


def test_the_emulator_command_refuses_an_unknown_fault() -> None:
    """--fault must name a fault kind: a usage error."""
    result = invoke(["emulator", "--fault", "gremlins=0.5"])
    assert result.exit_code == ExitCode.USAGE
    assert "gremlins" in one_error_line(result)


def test_the_emulator_command_stops_on_sigint() -> None:
    """In-process: the command serves on the port asked for and exits 0 on SIGINT."""
    import os  # noqa: PLC0415  # imported where the test needs it
    import signal  # noqa: PLC0415  # imported where the test needs it
    import time  # noqa: PLC0415  # imported where the test needs it

    port = free_port()

    def interrupt_when_listening() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.01)
                continue
            # Listening means serve_until runs, so the loop's SIGINT handler is installed.
            os.kill(os.getpid(), signal.SIGINT)
            return

    thread = threading.Thread(target=interrupt_when_listening, daemon=True)
    thread.start()
    result = invoke(["emulator", "--port", str(port), "--latency", "0"])
    thread.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert f"http://127.0.0.1:{port}" in result.stdout
    assert result.stdout.rstrip().endswith("emulator stopped")
