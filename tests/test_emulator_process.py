"""The emulator's lifecycle, its process entry point, serve() and the pytest plugin."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from emulator_support import SEARCH, send

from searchcans_async.testing import (
    Emulator,
    Fault,
    emulator_from_options,
    parse_fault_rate,
    serve,
)
from searchcans_async.testing import _main as main_module

if TYPE_CHECKING:
    # Imported for typing only: importing the plugin before pytest registers it would stop
    # pytest from rewriting its asserts (a warning, hence an error under -W error).
    from searchcans_async.testing.pytest_plugin import EmulatorFactory

pytest_plugins = ["pytester", "searchcans_async.testing.pytest_plugin"]

QUERY = {"s": "q", "t": "google"}


async def post(
    session: aiohttp.ClientSession, base_url: str, key: str, path: str = SEARCH
) -> tuple[int, Any]:
    reply = await send(session, base_url + path, QUERY, key=key)
    return reply.status, reply.json()


async def test_lifecycle_errors_teach_what_to_do() -> None:
    """base_url before start and a second start raise errors saying what to do instead."""
    emu = Emulator()
    with pytest.raises(RuntimeError, match="async with Emulator"):
        _ = emu.base_url
    assert "not serving" in repr(emu)
    await emu.start()
    try:
        with pytest.raises(RuntimeError, match="aclose"):
            await emu.start()
        assert emu.base_url in repr(emu)
    finally:
        await emu.aclose()
    await emu.aclose()
    assert not emu.running


async def test_an_emulator_can_restart_and_keeps_its_state(
    session: aiohttp.ClientSession,
) -> None:
    """After aclose() a new start() serves the same accounts and records."""
    emu = Emulator(latency=0)
    async with emu:
        await post(session, emu.base_url, emu.api_key)
    async with emu:
        await post(session, emu.base_url, emu.api_key)
    assert emu.stats().charged == 2
    assert [record.ordinal for record in emu.log] == [1, 2]


async def test_a_busy_port_raises_and_leaves_nothing_open() -> None:
    """Starting on a port in use raises OSError and leaves the emulator stopped."""
    async with Emulator() as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        second = Emulator(port=port)
        with pytest.raises(OSError, match="address"):
            await second.start()
        assert not second.running


async def test_closing_with_requests_in_flight_frees_their_lanes(
    session: aiohttp.ClientSession,
) -> None:
    """aclose() with held requests cancels them after shutdown_timeout; lanes return to 0."""
    emu = Emulator(latency=0, shutdown_timeout=0.01)
    await emu.start()
    emu.pause()
    call = asyncio.create_task(post(session, emu.base_url, emu.api_key))
    for _ in range(2000):
        if emu.stats().in_flight:
            break
        await asyncio.sleep(0.005)
    await emu.aclose()
    with pytest.raises(aiohttp.ClientConnectionError):
        await call
    stats = emu.stats()
    assert (stats.in_flight, stats.charged) == (0, 0)
    assert emu.log[0].http_status is None


async def test_the_app_can_be_mounted_by_another_runner(session: aiohttp.ClientSession) -> None:
    """emu.app is a plain aiohttp Application sharing the emulator's state."""
    emu = Emulator(latency=0)
    assert emu.app is emu.app
    outer = web.Application()
    outer.add_subapp("/searchcans", emu.app)
    runner = web.AppRunner(outer)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        status, _ = await post(session, f"http://{host}:{port}/searchcans", emu.api_key)
    finally:
        await runner.cleanup()
    assert status == 200
    assert emu.stats().charged == 1


async def test_serve_runs_until_cancelled(session: aiohttp.ClientSession) -> None:
    """serve() starts the emulator, calls ready, and closes what it started when cancelled."""
    ready = asyncio.Event()
    emu = Emulator(latency=0)
    task = asyncio.create_task(serve(emu, ready=lambda _: ready.set()))
    await ready.wait()
    assert (await post(session, emu.base_url, emu.api_key))[0] == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not emu.running


async def test_serve_leaves_a_running_emulator_running() -> None:
    """serve() on an emulator that already runs does not close it."""
    async with Emulator() as emu:
        task = asyncio.create_task(serve(emu))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert emu.running


def test_emulator_from_options_builds_one_account() -> None:
    """The CLI's options give one account with N named keys and the faults at their rates."""
    emu = emulator_from_options(credits=50, lanes=4, keys=3, seed=2, faults=["lane_busy=0.25"])
    stats = emu.stats()
    assert (stats.remain, stats.lanes, len(emu.keys)) == (50, 4, 3)
    assert emu.key_for("key3") == emu.keys[2]
    assert "8765" not in repr(emu)
    emu = emulator_from_options(faults={Fault.server_error(502): 0.5})
    assert emu.stats().remain == 10_000
    with pytest.raises(ValueError, match="keys"):
        emulator_from_options(keys=0)


@pytest.mark.parametrize("option", ["boom=0.1", "lane_busy", "lane_busy=often"])
def test_bad_fault_options_are_refused(option: str) -> None:
    """--fault takes KIND=RATE with a known kind and a numeric rate."""
    with pytest.raises(ValueError, match=r"KIND=RATE|number"):
        parse_fault_rate(option)
    assert parse_fault_rate(" slow_body=1 ") == (Fault.slow_body(), 1.0)


def test_main_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    """python -m searchcans_async.testing exits 2 with a usage error on a bad --fault."""
    with pytest.raises(SystemExit) as exit_info:
        main_module.main(["--fault", "boom=1"])
    assert exit_info.value.code == 2
    assert "KIND=RATE" in capsys.readouterr().err


def test_main_serves_until_sigterm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() prints the base URL and a key, then exits 0 on SIGTERM."""
    announce = main_module._announce

    def announce_then_stop(emulator: Emulator) -> None:
        announce(emulator)
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(main_module, "_announce", announce_then_stop)
    assert main_module.main(["--port", "0", "--keys", "2", "--latency", "0"]) == 0
    out = capsys.readouterr().out
    assert "SEARCHCANS_BASE_URL=http://127.0.0.1:" in out
    assert "SEARCHCANS_API_KEY=sk_emu_" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_the_module_runs_as_a_process(
    session: aiohttp.ClientSession, signum: signal.Signals
) -> None:
    """`python -m searchcans_async.testing` serves, prints URL and key, exits 0 on a signal."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "searchcans_async.testing",
        "--port",
        str(port),
        "--lanes",
        "2",
        "--seed",
        "5",
        "--fault",
        "lane_busy=0",
        "--latency",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = {}
        async with asyncio.timeout(30):
            while "SEARCHCANS_API_KEY" not in lines:
                name, _, value = (await process.stdout.readline()).decode().strip().partition("=")
                lines[name] = value
        assert lines["SEARCHCANS_BASE_URL"] == f"http://127.0.0.1:{port}"
        status, envelope = await post(
            session, lines["SEARCHCANS_BASE_URL"], lines["SEARCHCANS_API_KEY"]
        )
        assert (status, envelope["code"]) == (200, 0)
    finally:
        process.send_signal(signum)
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


async def test_the_fixture_serves_a_default_emulator(searchcans_emulator: Emulator) -> None:
    """searchcans_emulator is a running Emulator() with its defaults."""
    stats = searchcans_emulator.stats()
    assert searchcans_emulator.running
    assert (stats.remain, stats.lanes) == (10_000, 3)


@pytest.mark.parametrize("searchcans_emulator", [{"lanes": 1, "credits": 5}], indirect=True)
async def test_the_fixture_takes_indirect_parameters(searchcans_emulator: Emulator) -> None:
    """Indirect parametrisation passes Emulator arguments to the fixture."""
    assert (searchcans_emulator.stats().lanes, searchcans_emulator.stats().remain) == (1, 5)


def test_the_fixture_refuses_non_dict_parameters() -> None:
    """A non-dict indirect parameter is a usage error naming the expected form."""
    node = SimpleNamespace(get_closest_marker=lambda _name: None)
    request = SimpleNamespace(node=node, param=[1])
    from searchcans_async.testing import pytest_plugin  # noqa: PLC0415 - registered by now

    with pytest.raises(TypeError, match="dicts of Emulator arguments"):
        pytest_plugin._options(request)  # type: ignore[arg-type]  # a minimal stand-in for pytest's request


async def test_the_factory_builds_several_emulators(
    searchcans_emulator_factory: EmulatorFactory,
) -> None:
    """searchcans_emulator_factory returns running emulators, closed after the test."""
    first = await searchcans_emulator_factory(lanes=1)
    second = await searchcans_emulator_factory(seed=9)
    assert first.running
    assert second.running
    assert first.base_url != second.base_url
    assert first.api_key != second.api_key


def test_users_enable_the_plugin_from_their_conftest(pytester: pytest.Pytester) -> None:
    """pytest_plugins in a user's conftest gives the fixtures and the marker (strict mode too)."""
    pytester.makeconftest('pytest_plugins = ["searchcans_async.testing.pytest_plugin"]')
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.searchcans_emulator(credits=42, lanes=2)
        async def test_marker(searchcans_emulator):
            assert searchcans_emulator.stats().remain == 42

        @pytest.mark.asyncio
        async def test_factory(searchcans_emulator_factory):
            emu = await searchcans_emulator_factory(lanes=7)
            assert emu.stats().lanes == 7
        """
    )
    result = pytester.runpytest_inprocess(
        "--strict-markers", "-o", "asyncio_default_fixture_loop_scope=function", "-W", "error"
    )
    result.assert_outcomes(passed=2)


def test_main_on_a_busy_port_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A port in use: one line on stderr and exit 7, as `searchcans-async emulator` does."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main_module.main(["--port", str(port)])
    err = capsys.readouterr().err
    assert code == 7
    assert err.count("\n") == 1, err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_the_readme_testing_example_runs_as_written(pytester: pytest.Pytester) -> None:
    """README's conftest.py + test_crawler.py, copied into a fresh folder, pass as they are."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# (conftest|test_crawler)\.py\n.*?)```", readme, re.DOTALL)
    files = {name: code for code, name in blocks}
    assert set(files) == {"conftest", "test_crawler"}
    pytester.makeconftest(files["conftest"])
    pytester.makepyfile(test_crawler=files["test_crawler"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # as a user runs it
    result.assert_outcomes(passed=1)
