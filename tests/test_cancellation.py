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
