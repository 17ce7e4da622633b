"""`searchcans-async batch --redis URL --account NAME`: several workers on one account."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import TYPE_CHECKING

from click.testing import CliRunner
from redis_support import RedisServer, new_account, redis_server_fixture
from test_cli_process import child_env, start

from searchcans_async._cli.app import cli
from searchcans_async._cli.errors import ExitCode
from searchcans_async.testing import AccountSpec, Emulator, KeySpec

if TYPE_CHECKING:
    from pathlib import Path

redis_server = redis_server_fixture()


async def test_three_workers_share_one_accounts_lanes_and_budget(
    redis_server: RedisServer, canary_key: str, tmp_path: Path
) -> None:
    """Three CLI workers through Redis: never more than the lanes, one shared budget."""
    spec = AccountSpec(credits=10_000, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    group = new_account()
    async with Emulator([spec], latency=0.003) as emu:
        env = child_env(emu, canary_key)
        outputs = []
        processes = []
        for worker in range(3):
            source = tmp_path / f"worker{worker}.jsonl"
            words = [f"worker {worker} query {n}" for n in range(30)]
            source.write_text("".join(json.dumps(w) + "\n" for w in words), encoding="utf-8")
            out = tmp_path / f"out{worker}.jsonl"
            outputs.append(out)
            command = (
                "batch", str(source), "--out", str(out), "--budget", "60",
                "--redis", redis_server.url, "--account", group, "--progress", "off",
            )  # fmt: skip
            processes.append(await start(*command, env=env))
        async with asyncio.timeout(120):
            results = [await process.communicate() for process in processes]
        codes = [process.returncode for process in processes]
        stats = emu.stats()
        charges = emu.charges_by_subject()
    stderr = "".join(err.decode() for _, err in results)
    assert set(codes) <= {ExitCode.OK, ExitCode.BUDGET}, stderr
    assert ExitCode.BUDGET in codes, stderr  # 90 items, one budget of 60 for the group
    assert stats.peak_in_flight <= 3
    assert 1010 not in stats.refusals
    assert stats.charged == 60
    assert set(charges.values()) == {1}
    written = Counter(
        record["subject"]
        for out in outputs
        for record in map(json.loads, out.read_text(encoding="utf-8").splitlines())
        if record["ok"]
    )
    assert sum(written.values()) == 60
    assert set(written.values()) == {1}
    assert canary_key not in stderr
    assert redis_server.url not in stderr


def test_redis_and_account_go_together(tmp_path: Path) -> None:
    """--redis without --account (or the reverse) is a usage error, before anything runs."""
    source = tmp_path / "in.jsonl"
    source.write_text('"q"\n', encoding="utf-8")
    runner = CliRunner()
    env = {"SEARCHCANS_API_KEY": "sk_test_key", "SEARCHCANS_BASE_URL": "http://127.0.0.1:9"}
    for extra, message in (
        (["--redis", "redis://127.0.0.1:9/0"], "--redis needs --account"),
        (["--account", "team"], "--account needs --redis"),
    ):
        result = runner.invoke(cli, ["batch", str(source), *extra], env=env)
        assert result.exit_code == ExitCode.USAGE
        assert message in result.output


def test_a_redis_url_in_the_environment_alone_does_not_share(tmp_path: Path) -> None:
    """SEARCHCANS_REDIS_URL without --account runs an ordinary batch (here: unreachable API)."""
    source = tmp_path / "in.jsonl"
    source.write_text('"q"\n', encoding="utf-8")
    env = {
        "SEARCHCANS_API_KEY": "sk_test_key",
        "SEARCHCANS_BASE_URL": "http://127.0.0.1:9",
        "SEARCHCANS_REDIS_URL": "redis://127.0.0.1:9/0",
    }
    result = CliRunner().invoke(cli, ["batch", str(source), "--progress", "off"], env=env)
    assert result.exit_code == ExitCode.ERROR
    assert "redis" not in result.output.lower()
    assert "connect" in result.output


def test_an_unreachable_redis_is_one_line_and_nothing_is_spent(
    tmp_path: Path, canary_key: str
) -> None:
    """A Redis that does not answer: one clear line, exit 7, no request billed."""
    source = tmp_path / "in.jsonl"
    source.write_text('"q"\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"

    async def serve_and_run() -> tuple[int, str, int]:
        spec = AccountSpec(credits=100, lanes=1, keys=[KeySpec(canary_key, name="canary")])
        async with Emulator([spec], latency=0) as emu:
            env = child_env(emu, canary_key)
            process = await start(
                "batch", str(source), "--out", str(out), "--progress", "off",
                "--redis", "redis://:hunter2@127.0.0.1:9/0", "--account", "team", env=env,
            )  # fmt: skip
            async with asyncio.timeout(60):
                _, err = await process.communicate()
            assert process.returncode is not None
            return process.returncode, err.decode(), emu.stats().charged

    code, stderr, charged = asyncio.run(serve_and_run())
    assert code == ExitCode.ERROR, stderr
    assert stderr.count("\n") == 1
    assert "hunter2" not in stderr
    assert "cannot reach Redis at redis://127.0.0.1:9/0" in stderr  # not the SearchCans URL
    assert "--redis" in stderr
    assert "--base-url" not in stderr
    assert charged == 0


async def test_a_groups_budget_is_raised_only_on_purpose(
    redis_server: RedisServer, canary_key: str, tmp_path: Path
) -> None:
    """The smallest budget opened under a group holds; --raise-budget lifts it for all."""
    spec = AccountSpec(credits=10_000, lanes=2, keys=[KeySpec(canary_key, name="canary")])
    group = new_account("raise")
    async with Emulator([spec], latency=0) as emu:
        env = child_env(emu, canary_key)

        async def worker(name: str, *options: str) -> tuple[int | None, str]:
            source = tmp_path / f"{name}.txt"
            source.write_text("".join(f"{name} {n}\n" for n in range(20)), encoding="utf-8")
            command = (
                "batch", str(source), "--out", str(tmp_path / f"{name}.jsonl"),
                "--redis", redis_server.url, "--account", group, "--progress", "off", *options,
            )  # fmt: skip
            process = await start(*command, env=env)
            async with asyncio.timeout(60):
                _, err = await process.communicate()
            return process.returncode, err.decode()

        assert (await worker("a", "--budget", "5"))[0] == ExitCode.BUDGET
        code, err = await worker("b", "--budget", "10")
        assert code == ExitCode.BUDGET, err  # the group's budget is still 5, all spent
        assert "--raise-budget" in err
        charged_before = emu.stats().charged
        code, err = await worker("b", "--resume", "--budget", "10", "--raise-budget")
        assert code == ExitCode.BUDGET, err
        charged_after = emu.stats().charged
    assert charged_before == 5
    assert charged_after == 10
