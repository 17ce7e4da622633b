"""Cancellation sweep through HTTP: stop or cancel a real batch at every await point."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from lanes_support import FakeAccount, buckets

from searchcans_async import LanePool, RetryPolicy, SearchCans, StopReason
from searchcans_async._clock import VirtualClock
from searchcans_async.testing import Emulator, Fault, Faults

if TYPE_CHECKING:
    from collections import Counter

    from searchcans_async import Batch, BatchReport, PoolStatistics

# -- regressions -----------------------------------------------------------------------------


async def test_stop_with_cancel_before_any_worker_ran_ends_the_batch() -> None:
    """stop(cancel=True) right after the batch opens: the batch ends instead of hanging."""
    fake = FakeAccount(concurrent=3)
    async with LanePool(
        fake, recheck_every=None, recheck_interval=None, clock=VirtualClock()
    ) as pool:
        async with asyncio.timeout(5):  # a guard against the hang, not a timing assertion
            async with pool.map(fake.work(), range(10)) as batch:
                batch.stop(cancel=True)  # the workers exist but none has run yet
                outcomes = [outcome async for outcome in batch]
        stats = pool.statistics()
    report = batch.report
    assert outcomes == []
    assert report.stop_reason is StopReason.CANCELLED
    assert set(buckets(report)) == set(range(report.items_read))
    assert (stats.in_flight, stats.reserved) == (0, 0)


async def test_cancelling_a_worker_that_waits_for_credits_gives_its_lane_back() -> None:
    """stop(cancel=True) while a worker waits for credits: its lane is released too."""
    fake = FakeAccount(remain=1_000, concurrent=2)
    gate = asyncio.Event()

    async def blocked(item: int) -> int:
        await gate.wait()
        return item

    async with LanePool(
        fake, budget=3, recheck_every=None, recheck_interval=None, clock=VirtualClock()
    ) as pool:
        async with pool.map(blocked, range(4), cost=2) as batch:
            # Item 0 holds 2 of the 3 credits; item 1 holds the other lane, waiting for them.
            for _ in range(10):
                await asyncio.sleep(0)
            assert pool.statistics().in_flight == 2
            batch.stop(cancel=True)
            outcomes = [outcome async for outcome in batch]
        stats = pool.statistics()
    report = batch.report
    assert outcomes == []
    assert [index for index, _ in report.not_started] == [1]
    assert [outcome.index for outcome in report.failed] == [0]
    assert (stats.in_flight, stats.reserved, stats.waiting) == (0, 0, 0)


# -- the sweep through HTTP ------------------------------------------------------------------

ITEMS = [f"sweep item {i}" for i in range(6)]
GUARD_SECONDS = 30


@dataclass
class Step:
    """What one cancellation step left behind."""

    finished_alone: bool
    report: BatchReport[str] | None
    pool: PoolStatistics | None  # None: cancelled before the pool was built
    server_in_flight: int
    charges: Counter[str]
    charged: int
    leftover_tasks: set[asyncio.Task[Any]]
    loop_errors: list[str] = field(default_factory=list)


async def sweep_step(how: str, api: str, turns: int, *, budget: int | None) -> Step:
    """Run a small batch over HTTP; after ``turns`` loop turns stop or cancel it as ``how``."""
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context["message"]))
    faults = Faults(script={2: Fault.lane_busy(), 4: Fault.reset_after_charge()})
    try:
        async with Emulator(credits=1_000, lanes=2, latency=0, faults=faults) as emu:
            client = SearchCans(
                emu.api_key,
                base_url=emu.base_url,
                clock=VirtualClock(),
                retry=RetryPolicy(lane_busy_delay=(0.001, 0.002), retry_possibly_charged=True),
            )
            pools: list[LanePool] = []
            batches: list[Batch[str, Any]] = []
            reports: list[BatchReport[str]] = []

            async def run() -> None:
                async with client.lanes(budget=budget, recheck_every=2) as pool:
                    pools.append(pool)
                    if api == "run_batch":
                        reports.append(await pool.run_batch(client.search, ITEMS, cost=2))
                        return
                    batch = pool.map(client.search, ITEMS, cost=2)
                    batches.append(batch)
                    try:
                        async with batch:
                            async for _ in batch:
                                await asyncio.sleep(0)
                    finally:
                        with contextlib.suppress(RuntimeError):  # cancelled before it began
                            reports.append(batch.report)

            async with client:
                task = asyncio.create_task(run())
                for _ in range(turns):
                    await asyncio.sleep(0)
                finished_alone = task.done()
                if how == "task_cancel":
                    task.cancel()
                elif how == "pool_stop" and pools:
                    pools[0].stop(cancel=True)
                elif how == "batch_stop" and batches:
                    batches[0].stop(cancel=True)
                with contextlib.suppress(asyncio.CancelledError):
                    # A guard against a batch that never ends once stopped, not a timing test.
                    async with asyncio.timeout(GUARD_SECONDS):
                        await task
            # The server finishes what it admitted even when the client gave up on it.
            for _ in range(100):
                if not emu.stats().in_flight:
                    break
                await asyncio.sleep(0)
            server_in_flight = emu.stats().in_flight
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
    finally:
        loop.set_exception_handler(previous)
    return Step(
        finished_alone=finished_alone,
        report=reports[0] if reports else None,
        pool=pools[0].statistics() if pools else None,
        server_in_flight=server_in_flight,
        charges=emu.charges_by_subject(),
        charged=emu.stats().charged,
        leftover_tasks=leftover,
        loop_errors=loop_errors,
    )


@pytest.mark.parametrize("budget", [None, 5], ids=["plenty", "tight"])
@pytest.mark.parametrize(
    ("how", "api"),
    [
        ("pool_stop", "run_batch"),
        ("pool_stop", "map"),
        ("batch_stop", "map"),
        ("task_cancel", "run_batch"),
        ("task_cancel", "map"),
    ],
)
async def test_stopping_or_cancelling_at_every_await_point_leaks_nothing(
    how: str, api: str, budget: int | None
) -> None:
    """Stop or cancel after k loop turns, each k: lanes, credits, tasks and items all settle."""
    turns = 0
    while True:
        step = await sweep_step(how, api, turns, budget=budget)
        where = f"{how}/{api} budget={budget} after {turns} turns"
        assert not step.leftover_tasks, f"{where}: tasks left: {step.leftover_tasks}"
        assert not step.loop_errors, f"{where}: {step.loop_errors}"
        assert step.server_in_flight == 0, where
        pool = step.pool
        if pool is None:
            assert step.charged == 0, where
        else:
            assert (pool.in_flight, pool.reserved, pool.waiting) == (0, 0, 0), f"{where}: {pool}"
            # Whatever the server billed is committed or still in doubt: nothing vanished.
            assert step.charged <= pool.committed + pool.possibly_charged, f"{where}: {pool}"
        assert max(step.charges.values(), default=0) <= 2, where  # opted in: at most one retry
        report = step.report
        if report is not None:
            assert set(buckets(report)) == set(range(report.items_read)), where
            assert report.unread_from in (None, report.items_read), where
            assert report.items_read <= len(ITEMS), where
            # Stopped or cancelled before it ended by itself, unless it had already ended.
            ended = (StopReason.COMPLETED, StopReason.BUDGET)
            expected = ended if step.finished_alone else (*ended, StopReason.CANCELLED)
            assert report.stop_reason in expected, f"{where}: {report.stop_reason}"
            in_flight_cancelled = [o for o in report.failed if not isinstance(o.error, Exception)]
            assert all(isinstance(o.error, asyncio.CancelledError) for o in in_flight_cancelled)
        elif how != "task_cancel" and step.finished_alone:
            pytest.fail(f"{where}: a batch that finished left no report")
        if step.finished_alone:
            break
        turns += 1
    assert turns > 20, "the sweep should cross many await points"
