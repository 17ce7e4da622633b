"""Cancellation sweep through HTTP: stop or cancel a real batch at every await point."""

from __future__ import annotations

import asyncio

from lanes_support import FakeAccount, buckets

from searchcans_async import LanePool, StopReason
from searchcans_async._clock import VirtualClock

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
