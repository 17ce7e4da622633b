"""A canary key through every path: errors, logs, tracebacks, reprs, reports, events, the CLI.

Every test here runs the real client (and pool) against the emulator with a random canary
key, collects every text the library produced on the way, and checks the key is in none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import sys
import traceback
from typing import TYPE_CHECKING, Any

import pytest

import searchcans_async
from searchcans_async import (
    LanePool,
    RetryPolicy,
    SearchCans,
    SearchCansError,
)
from searchcans_async._clock import VirtualClock
from searchcans_async._lanes.backend import LocalBackend, Permit
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from searchcans_async._clock import Clock

#: Every error class the package exports: each must be produced below.
ERROR_CLASSES = {
    name
    for name in searchcans_async.__all__
    if isinstance(getattr(searchcans_async, name), type)
    and issubclass(getattr(searchcans_async, name), SearchCansError)
    and name != "SearchCansError"
}


@pytest.fixture
def canary() -> str:
    """A fresh canary key for each test (so a leak cannot come from an earlier test)."""
    return f"sk_canary_{secrets.token_hex(12)}"


def account(canary: str, **options: Any) -> AccountSpec:
    """An account whose only key is the canary."""
    active = options.pop("active", True)
    return AccountSpec(keys=[KeySpec(canary, name="canary", active=active)], **options)


def texts(*objects: object) -> Iterator[str]:
    """str and repr of each object (and of its attributes, when it has a __dict__)."""
    for obj in objects:
        yield str(obj)
        yield repr(obj)
        if hasattr(obj, "__dict__"):
            yield repr(vars(obj))


def error_texts(error: BaseException) -> Iterator[str]:
    """Everything an error shows: itself, its chain, its attributes and its traceback."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield from texts(current)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    yield "".join(traceback.format_exception(error))


def log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """Every record as a handler would format it, with its arguments and traceback."""
    yield caplog.text
    for record in caplog.records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info:
            yield "".join(traceback.format_exception(*record.exc_info))


def assert_no_canary(canary: str, found: Iterator[str] | list[str], where: str) -> None:
    for text in found:
        assert canary not in text, f"the key leaked through {where}: {text[:300]}"


# -- a faulted batch: reports, outcomes, events, logs ----------------------------------------


async def test_a_faulted_batch_never_shows_the_key(
    canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch under every fault, logged at DEBUG: no report, outcome, event or log has the key."""
    caplog.set_level(logging.DEBUG, logger="searchcans_async")
    events: list[Any] = []
    kinds = sorted(
        {
            "lane_busy",
            "rate_limited",
            "server_error",
            "api_timeout",
            "throttled",
            "network_code",
            "no_results",
            "bad_request",
            "unknown_code",
            "reset_before",
            "truncated_json",
            "wrong_types",
            "huge_body",
            "reset_after_charge",
        }
    )
    # Ordinal 1 is the pool's opening read, which must succeed; the rest may fail.
    script = {2 * i + 3: Fault.from_name(kind) for i, kind in enumerate(kinds)}
    script[2] = Fault.server_error(502, html=True)
    script[4] = Fault.rate_limited(1, http_date=True)
    script[8] = Fault.huge_body(size=40_000)
    faults = Faults(script=script, endpoints=("account", "search", "url"))
    async with Emulator([account(canary, lanes=2)], latency=0, faults=faults) as emu:
        client = SearchCans(
            canary,
            base_url=emu.base_url,
            clock=VirtualClock(),
            retry=RetryPolicy(attempts=2, retry_possibly_charged=True),
            on_event=events.append,
            max_body_bytes=16_384,
        )
        async with client, client.lanes(recheck_every=3, settle_grace=0) as pool:
            items = [f"canary query {i}" for i in range(30)]

            async def search(query: str) -> Any:
                if query.endswith(" 25"):  # the key is switched off mid-batch: auth stop
                    emu.set_key_active(canary, active=False)
                return await client.search(query)

            batch = pool.map(search, items)
            async with batch:
                outcomes = [outcome async for outcome in batch]
            report = batch.report
            with pytest.raises(SearchCansError) as halted:  # the pool refuses further work
                await pool.run(client.search, "after the stop")
            found = [
                *texts(client, pool, batch, pool.statistics(), pool.account, report),
                report.summary(),
                *texts(*outcomes, *report.failed, *report.not_started, *report.unconsumed),
                *texts(*events),
                *error_texts(halted.value),
            ]
            for outcome in [*outcomes, *report.failed]:
                if outcome.error is not None:
                    found.extend(error_texts(outcome.error))
            if report.error is not None:
                found.extend(error_texts(report.error))
    assert len(report.failed) >= 5  # the faults really failed items
    assert report.stop_reason.value == "auth"
    assert_no_canary(canary, found, "the batch's objects")
    assert_no_canary(canary, log_texts(caplog), "the logs")
    assert any(record.levelno == logging.DEBUG for record in caplog.records)


# -- every error class -----------------------------------------------------------------------


class ExpiredLeases:
    """A lane backend whose leases have always run out (as a paused process's would)."""

    def __init__(self) -> None:
        self._local = LocalBackend()

    async def open(self, **options: Any) -> None:
        await self._local.open(**options)

    def reserve_nowait(self, cost: int) -> Permit | None:
        return None

    async def acquire(self, cost: int) -> Permit | None:
        local = self._local.reserve_nowait(cost)
        return None if local is None else Permit("lease-1", cost, deadline=0.0)

    def release_nowait(self, permit: Permit, *, committed: int, possibly_charged: int) -> bool:
        return False

    async def extend(self, permit: Permit, extra: int) -> Permit | None:
        return await self._local.extend(permit, extra)

    async def release(self, permit: Permit, *, committed: int, possibly_charged: int) -> None:
        await self._local.release(permit, committed=committed, possibly_charged=possibly_charged)

    async def mark(self) -> Any:
        return await self._local.mark()

    async def rebase(self, mark: Any, *, spendable: int, current: int | None, lanes: int) -> None:
        await self._local.rebase(mark, spendable=spendable, current=current, lanes=lanes)

    async def wait_for_change(self) -> None:
        await self._local.wait_for_change()

    def lease_valid(self, permit: Permit) -> bool:
        return False

    def credits(self) -> Any:
        return self._local.credits()

    async def aclose(self) -> None:
        await self._local.aclose()


def closed_port() -> int:
    """A local port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def failing_calls(canary: str, clock: Clock) -> dict[str, list[BaseException]]:
    """Make the real client fail in every way it can; the errors by class name."""
    errors: dict[str, list[BaseException]] = {}
    once = RetryPolicy.never()

    async def capture(call: Callable[[], Any]) -> None:
        try:
            await call()
        except SearchCansError as error:
            errors.setdefault(type(error).__name__, []).append(error)
        else:
            pytest.fail("the call was meant to fail")

    def client_for(emu: Emulator, **options: Any) -> SearchCans:
        options.setdefault("retry", once)
        return SearchCans(canary, base_url=emu.base_url, clock=clock, **options)

    faults = {
        "lane_busy": Fault.lane_busy(),
        "rate_limited": Fault.rate_limited("soon"),
        "server_error": Fault.server_error(503, html=True),
        "api_timeout": Fault.api_timeout(-1001),
        "throttled": Fault.throttled(1009),
        "network_code": Fault.network_code(10054),
        "bad_request": Fault.bad_request(),
        "unknown_code": Fault.unknown_code(4242),
        "reset_before": Fault.reset_before(),
        "reset_after_charge": Fault.reset_after_charge(),
        "truncated_json": Fault.truncated_json(0.3),
        "truncated_cut": Fault.truncated_json(0.3, cut_connection=True),
        "wrong_types": Fault.wrong_types(),
        "huge_body": Fault.huge_body(size=40_000),
    }
    script = dict(enumerate(faults.values(), start=1))
    script[len(script) + 1] = Fault.wrong_types()  # for a Reader page this time
    async with Emulator([account(canary)], latency=0, faults=Faults(script=script)) as emu:
        async with client_for(emu, max_body_bytes=16_384) as client:
            for name in faults:
                await capture(lambda name=name: client.search(name, retry=once))
            await capture(lambda: client.read("https://example.com/wrong-types", retry=once))
            # A deadline too short for one whole attempt: refused before sending.
            short = RetryPolicy(attempts=1, deadline=0.1)
            await capture(lambda: client.search("short deadline", retry=short))
        async with client_for(emu) as client, client.lanes(budget=1) as pool:
            await capture(lambda: pool.run(client.read, "https://example.com/", cost=2))
        async with client_for(emu) as client:
            pool = LanePool(client.account, backend=ExpiredLeases(), clock=clock)
            async with pool:
                await capture(lambda: pool.run(client.search, "leased"))
    async with Emulator([account(canary, credits=0)], latency=0) as emu:
        async with client_for(emu) as client:
            await capture(lambda: client.search("no credits"))
    async with Emulator([account(canary, active=False)], latency=0) as emu:
        async with client_for(emu) as client:
            await capture(lambda: client.search("inactive key"))
    async with Emulator(latency=0) as emu:  # the canary is unknown there: 401
        async with client_for(emu) as client:
            await capture(client.account)
    async with Emulator([account(canary, lanes=0)], latency=0) as emu:
        async with client_for(emu) as client:
            await capture(lambda: client.lanes().open())
    base_url = f"http://127.0.0.1:{closed_port()}"
    async with SearchCans(canary, base_url=base_url, clock=clock, retry=once) as client:
        await capture(client.account)
    return errors


async def test_no_error_of_any_class_shows_the_key(
    canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every exported error class, made for real and logged at DEBUG: the key is in none."""
    caplog.set_level(logging.DEBUG, logger="searchcans_async")
    errors = await failing_calls(canary, VirtualClock())
    assert set(errors) == ERROR_CLASSES
    for name, instances in errors.items():
        for error in instances:
            assert_no_canary(canary, error_texts(error), f"a {name}")
    logger = logging.getLogger("searchcans_async.canary")
    for instances in errors.values():
        for error in instances:
            logger.debug("failed: %s", error, exc_info=error)  # as a user would log it
            logger.debug("failed: %r", error)
    assert_no_canary(canary, log_texts(caplog), "the logs")


# -- the command line ------------------------------------------------------------------------


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m searchcans_async ARGS`` in a subprocess; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "searchcans_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def cli_env(canary: str, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: the canary as SEARCHCANS_API_KEY, nothing inherited."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEARCHCANS_")}
    return {**env, "SEARCHCANS_API_KEY": canary, "SEARCHCANS_BASE_URL": base_url, **extra}


async def test_the_cli_never_prints_or_writes_the_key(canary: str, tmp_path: Path) -> None:
    """batch (faulted, then with the key switched off), account and refused keys: no leak."""
    lines = [json.dumps(f"cli query {i}") for i in range(12)]
    lines.append(json.dumps({"query": "cli pages", "pages": 2}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    script = {
        1: Fault.server_error(502, html=True),
        2: Fault.reset_after_charge(),
        3: Fault.truncated_json(0.4),
        4: Fault.wrong_types(),
        5: Fault.bad_request(),
        6: Fault.unknown_code(4242),
        7: Fault.rate_limited("soon"),
        8: Fault.lane_busy(),
    }
    async with (
        Emulator([account(canary, credits=500)], latency=0, faults=Faults(script=script)) as emu,
        Emulator([account(canary)], latency=0) as plain,
        Emulator([account(canary, active=False)], latency=0) as inactive,
        Emulator(latency=0) as stranger,
    ):
        key_file = tmp_path / "key.txt"
        key_file.write_text(f"{canary} trailing garbage\n", encoding="utf-8")
        runs = await asyncio.gather(
            run_cli(
                "-vv", "batch", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out.jsonl"),
                "--progress", "plain", env=cli_env(canary, emu.base_url),
            ),
            run_cli(
                "-vv", "batch", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "auth.jsonl"),
                "--progress", "plain", env=cli_env(canary, inactive.base_url),
            ),
            run_cli("-vv", "account", env=cli_env(canary, stranger.base_url)),
            run_cli("-vv", "account", env=cli_env(canary, plain.base_url)),
            run_cli("--api-key", canary, "account", env=cli_env(canary, plain.base_url)),
            run_cli(
                "--api-key-file", str(key_file), "account", env=cli_env(canary, plain.base_url)
            ),
        )  # fmt: skip
        served = emu.stats().requests
    codes = [code for code, _, _ in runs]
    assert codes[0] != 0  # some items failed
    assert codes[1] != 0  # the key is inactive
    assert codes[2] != 0  # the key is unknown there
    assert served >= len(lines)
    for code, stdout, stderr in runs:
        assert_no_canary(canary, [stdout, stderr], f"the CLI (exit {code})")
    out = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == len(lines)
    assert any(not record["ok"] for record in records)
    assert_no_canary(canary, [out, (tmp_path / "auth.jsonl").read_text()], "the JSONL output")
