"""The real entry point, ``python -m searchcans_async``, in a subprocess.

The emulator serves from the test's own event loop, so the test reads the server's records
(``charges_by_subject``) directly: after a stop and a resume no item was charged twice and
none is missing. The canary key is the only key, and it never shows in any output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from searchcans_async._cli.errors import ExitCode
from searchcans_async.testing import AccountSpec, Emulator, KeySpec

if TYPE_CHECKING:
    from pathlib import Path

_DEADLINE = 60  # seconds; a safety net against a hung child, not a timing assertion


def child_env(emu: Emulator | None, key: str | None) -> dict[str, str]:
    """The child's environment: this interpreter's, plus the emulator's address and key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHCANS_")}
    if emu is not None:
        env["SEARCHCANS_BASE_URL"] = emu.base_url
    if key is not None:
        env["SEARCHCANS_API_KEY"] = key
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def start(
    *args: str, env: dict[str, str], stdin: int | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m searchcans_async ARGS``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "searchcans_async", *args, env=env, stdin=stdin,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the command to its end: exit code, stdout, stderr."""
    process = await start(*args, env=env)
    async with asyncio.timeout(_DEADLINE):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def succeeded_lines(path: Path) -> Counter[int]:
    """How many times each input line is recorded as succeeded in a batch output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(record["line"] for record in map(json.loads, lines) if record["ok"])


@pytest.fixture
def queries(tmp_path: Path) -> tuple[Path, list[str]]:
    """Sixty distinct queries as a JSONL file."""
    words = [f"subprocess query {n}" for n in range(60)]
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(word) + "\n" for word in words), encoding="utf-8")
    return path, words


async def test_a_budget_stop_and_a_resume_pay_each_item_exactly_once(
    canary_key: str, queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Exit 3 at the budget, exit 0 after a top-up and --resume; the server's books agree."""
    source, words = queries
    out = tmp_path / "results.jsonl"
    spec = AccountSpec(credits=35, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0.001) as emu:
        env = child_env(emu, canary_key)
        command = ("batch", str(source), "--out", str(out), "--floor", "5")
        code, stdout, stderr = await run(*command, env=env)
        assert code == ExitCode.BUDGET, stderr
        assert "stopped: budget" in stderr
        assert len(succeeded_lines(out)) == 30
        emu.add_credits(100)
        code, resumed_out, resumed_err = await run(*command, "--resume", env=env)
        assert code == ExitCode.OK, resumed_err
        charges = emu.charges_by_subject()
    assert set(charges) == set(words), "an item is missing from the server's charges"
    assert set(charges.values()) == {1}, "an item was charged twice"
    assert succeeded_lines(out) == Counter(range(1, 61))
    everything = stdout + stderr + resumed_out + resumed_err + out.read_text()
    assert canary_key not in everything


async def test_ctrl_c_finishes_the_work_in_flight_and_resume_completes(
    canary_key: str, queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """SIGINT: nothing new starts, the items in flight finish and are written, exit 6."""
    source, words = queries
    out = tmp_path / "results.jsonl"
    spec = AccountSpec(credits=1_000, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0) as emu:
        env = child_env(emu, canary_key)
        command = ("batch", str(source), "--out", str(out), "--progress", "plain")
        emu.pause()  # admitted requests wait in their lanes: the child is mid-batch
        process = await start(*command, env=env)
        async with asyncio.timeout(_DEADLINE):
            while emu.stats().in_flight < 3:  # noqa: ASYNC110  # polls the emulator: no event
                await asyncio.sleep(0.01)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(_DEADLINE):
            while "stopping" not in (await process.stderr.readline()).decode():  # type: ignore[union-attr]  # the pipe exists: the process was started with PIPE
                pass
        emu.resume()
        async with asyncio.timeout(_DEADLINE):
            _, stderr = await process.communicate()
        assert process.returncode == ExitCode.CANCELLED, stderr.decode()
        assert "stopped: cancelled" in stderr.decode()
        interrupted = succeeded_lines(out)
        assert len(interrupted) == 3
        code, _, resumed_err = await run(*command, "--resume", env=env)
        assert code == ExitCode.OK, resumed_err
        charges = emu.charges_by_subject()
    assert set(charges) == set(words)
    assert set(charges.values()) == {1}
    assert succeeded_lines(out) == Counter(range(1, 61))


async def test_the_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    """`emulator --port 0` prints its URL and key, answers the CLI, and exits 0 on SIGINT."""
    process = await start("emulator", "--port", "0", "--lanes", "2", env=child_env(None, None))
    try:
        settings: dict[str, str] = {}
        async with asyncio.timeout(_DEADLINE):
            while "SEARCHCANS_API_KEY" not in settings:
                line = (await process.stdout.readline()).decode()  # type: ignore[union-attr]  # the pipe exists: the process was started with PIPE
                assert line, "the emulator exited early"
                name, _, value = line.removeprefix("export ").strip().partition("=")
                settings[name] = value
        env = child_env(None, settings["SEARCHCANS_API_KEY"])
        env["SEARCHCANS_BASE_URL"] = settings["SEARCHCANS_BASE_URL"]
        code, stdout, stderr = await run("account", "--json", env=env)
        assert code == 0, stderr
        assert json.loads(stdout)["concurrent"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(_DEADLINE):
            stdout_rest, stderr_rest = await process.communicate()
    assert process.returncode == 0, stderr_rest.decode()
    assert "emulator stopped" in stdout_rest.decode()


async def test_a_missing_key_exits_2_with_one_line() -> None:
    """The real process: no key, one line on stderr, exit 2, no traceback."""
    code, stdout, stderr = await run("account", env=child_env(None, None))
    assert code == ExitCode.USAGE
    assert stderr.startswith("searchcans-async: error: no API key")
    assert stderr.count("\n") == 1
    assert stdout == ""


async def test_a_batch_from_stdin_exits_with_its_code_while_stdin_stays_open(
    canary_key: str, tmp_path: Path
) -> None:
    """batch - stops at its budget while the producer keeps stdin open: exit 3, not 134."""
    out = tmp_path / "results.jsonl"
    spec = AccountSpec(credits=1_000, lanes=2, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0) as emu:
        env = child_env(emu, canary_key)
        command = ("batch", "-", "--out", str(out), "--budget", "5", "--progress", "plain")
        process = await start(*command, env=env, stdin=asyncio.subprocess.PIPE)
        assert process.stdin is not None
        process.stdin.write(b"".join(f'"open stdin {n}"\n'.encode() for n in range(20)))
        await process.stdin.drain()  # and never closed until the child has exited
        async with asyncio.timeout(_DEADLINE):
            _, stderr = await process.communicate()
        charges = emu.charges_by_subject()
    assert process.returncode == ExitCode.BUDGET, stderr.decode()
    assert "Fatal Python error" not in stderr.decode()
    assert sum(charges.values()) == 5


async def test_a_second_run_on_the_same_output_refuses_while_the_first_runs(
    canary_key: str, queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Two `batch --resume` on one --out (cron started twice): the second exits 9 at once."""
    source, words = queries
    out = tmp_path / "results.jsonl"
    spec = AccountSpec(credits=1_000, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0) as emu:
        env = child_env(emu, canary_key)
        command = ("batch", str(source), "--out", str(out), "--resume", "--progress", "plain")
        emu.pause()  # the first run holds its lanes, mid-batch
        first = await start(*command, env=env)
        async with asyncio.timeout(_DEADLINE):
            while emu.stats().in_flight < 3:  # noqa: ASYNC110  # polls the emulator: no event
                await asyncio.sleep(0.01)
        code, _, stderr = await run(*command, env=env)
        emu.resume()
        async with asyncio.timeout(_DEADLINE):
            _, first_err = await first.communicate()
        charges = emu.charges_by_subject()
    assert code == ExitCode.LOCKED, stderr
    assert f"another batch is writing {out}" in stderr
    assert first.returncode == ExitCode.OK, first_err.decode()
    assert set(charges) == set(words)
    assert set(charges.values()) == {1}, "an item was paid twice"
    assert not (tmp_path / "results.jsonl.lock").exists()  # the first run cleaned up


async def test_the_emulator_command_on_a_busy_port_and_its_help() -> None:
    """A taken port: one line, exit 7 (as the testing module); --help lists the fault kinds."""
    from searchcans_async.testing import FAULT_KINDS  # noqa: PLC0415  # imported where the test needs it

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, stderr = await run("emulator", "--port", str(port), env=child_env(None, None))
    assert code == ExitCode.ERROR
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert stderr.count("\n") == 1, stderr
    code, help_text, _ = await run("emulator", "--help", env=child_env(None, None))
    assert code == 0
    flat = " ".join(help_text.split())
    assert all(kind in flat for kind in FAULT_KINDS), help_text
