"""The pool's invariants under random work: zero overshoot, exact buckets, clean cancels."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanes_support import FakeAccount, buckets

from searchcans_async import (
    InsufficientCreditsError,
    LanePool,
    ServerError,
    StopReason,
    TransportError,
)
from searchcans_async._client.meter import current_lane
from searchcans_async._clock import VirtualClock

FAILURES = ("none", "uncharged", "reset_before_charge", "reset_after_charge", "bug")


def random_work(fake: FakeAccount, rng: random.Random, *, metered: bool) -> Any:
    """Items `(cost, failure, yields, actual)`: run, bill like the server, fail as told."""

    async def work(item: tuple[int, str, int, int]) -> int:
        _cost, failure, yields, actual = item
        meter = current_lane.get() if metered else None
        for _ in range(yields):
            await asyncio.sleep(0)
        if meter is not None:
            await meter.cover(actual)  # what the client does before sending
        try:
            if failure == "uncharged":
                raise ServerError("503", http_status=503)
            if failure == "reset_before_charge":
                raise TransportError("reset", charged=None)
            fake.charge(actual)
            if failure == "reset_after_charge":
                raise TransportError("reset", charged=None)
            if failure == "bug":
                raise ValueError("bug after a billed call")
        except (TransportError, ServerError) as error:
            if meter is not None:
                meter.settle(actual, error.charged)
            raise
        except InsufficientCreditsError:
            if meter is not None:
                meter.settle(actual, False)
            raise
        if meter is not None:
            meter.settle(actual, True)
        return actual

    return work


item_strategy = st.tuples(
    st.integers(1, 12),
    st.sampled_from(FAILURES),
    st.integers(0, 3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(item_strategy, min_size=1, max_size=60),
    remain=st.integers(0, 300),
    budget=st.one_of(st.none(), st.integers(0, 200)),
    floor=st.integers(0, 50),
    lanes=st.integers(1, 6),
    recheck_every=st.one_of(st.none(), st.integers(1, 10)),
    understated=st.booleans(),
)
def test_the_server_never_charges_past_the_budget(
    items: list[tuple[int, str, int]],
    remain: int,
    budget: int | None,
    floor: int,
    lanes: int,
    recheck_every: int | None,
    understated: bool,
) -> None:
    """Random costs, latencies and failures: the account never pays past the budget."""
    fake = FakeAccount(remain=remain, concurrent=lanes)
    # With `understated`, items declare less than they cost; metered calls must still
    # keep the batch inside the budget (the client covers each call before sending).
    work_items = [(c, f, y, c + (2 if understated else 0)) for c, f, y in items]
    limit = max(0, remain - floor) if budget is None else min(budget, max(0, remain - floor))

    async def main() -> Any:
        async with LanePool(
            fake,
            budget=budget,
            floor=floor,
            recheck_every=recheck_every,
            recheck_interval=None,
            settle_grace=0.0,
            clock=VirtualClock(),
        ) as pool:
            report = await pool.run_batch(
                random_work(fake, random.Random(0), metered=True),
                work_items,
                cost=lambda item: item[0],
            )
            stats = pool.statistics()
            assert (stats.in_flight, stats.reserved) == (0, 0)
            return report

    report = asyncio.run(main())
    assert fake.charged <= limit
    assert set(buckets(report)) == set(range(report.items_read))
    assert report.items_read <= len(work_items)
    if report.stop_reason is StopReason.COMPLETED:
        assert report.items_read == len(work_items)


@settings(max_examples=60, deadline=None)
@given(
    costs=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    budget=st.integers(0, 120),
    lanes=st.integers(1, 5),
)
def test_honest_costs_use_the_budget_up_to_the_first_item_that_does_not_fit(
    costs: list[int], budget: int, lanes: int
) -> None:
    """With honest costs and no failures, items run in order until one does not fit."""
    fake = FakeAccount(remain=10_000, concurrent=lanes)

    async def main() -> Any:
        async with LanePool(
            fake, budget=budget, recheck_every=None, recheck_interval=None, clock=VirtualClock()
        ) as pool:
            return await pool.run_batch(fake.work(), [("x", c) for c in costs], cost=lambda i: i[1])

    report = asyncio.run(main())
    expected, spent = 0, 0
    for cost in costs:
        if spent + cost > budget:
            break
        spent += cost
        expected += 1
    assert report.succeeded == expected
    assert fake.charged == spent <= budget
    assert report.stop_reason is (
        StopReason.COMPLETED if expected == len(costs) else StopReason.BUDGET
    )


# -- cancellation sweep ---------------------------------------------------------------------


async def _settle_loop() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("mode", ["run_batch", "map"])
async def test_cancelling_the_caller_at_every_step_releases_everything(mode: str) -> None:
    """Cancel the batch's task after k loop turns, for every k: nothing leaks, all accounted."""
    steps = 0
    while True:
        fake = FakeAccount(remain=1_000, concurrent=3)
        async with LanePool(
            fake, recheck_every=4, recheck_interval=None, clock=VirtualClock()
        ) as pool:
            batch = pool.map(fake.work(yields=2), range(12), cost=2)

            async def consume(batch: Any = batch) -> None:
                async with batch:
                    async for _ in batch:
                        await asyncio.sleep(0)

            async def run(pool: LanePool = pool, fake: FakeAccount = fake) -> None:
                await pool.run_batch(fake.work(yields=2), range(12), cost=2)

            task = asyncio.create_task(consume() if mode == "map" else run())
            for _ in range(steps):
                await asyncio.sleep(0)
            finished = task.done()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await _settle_loop()
            stats = pool.statistics()
            assert (stats.in_flight, stats.reserved, stats.waiting) == (0, 0, 0), steps
            assert fake.in_flight == 0
            if mode == "map" and batch._entered:
                report = batch.report
                assert set(buckets(report)) == set(range(report.items_read))
                assert report.succeeded + len(report.failed) + len(report.not_started) == (
                    report.items_read
                )
            # Whatever was billed is committed or possibly charged: nothing vanished.
            assert fake.charged <= stats.committed + stats.possibly_charged
        assert asyncio.all_tasks() == {asyncio.current_task()}
        if finished:
            break
        steps += 1
    assert steps > 10


async def test_stop_with_cancel_cancels_inflight_work() -> None:
    """pool.stop(cancel=True) cancels in-flight items; they are failed, possibly charged."""
    fake = FakeAccount(remain=1_000, concurrent=3)
    gate = asyncio.Event()

    async def blocked(item: int) -> int:
        await gate.wait()
        return item

    async with LanePool(
        fake, recheck_every=None, recheck_interval=None, clock=VirtualClock()
    ) as pool:
        async with pool.map(blocked, range(10), cost=2) as outcomes:
            await asyncio.sleep(0)
            pool.stop(cancel=True)
            rest = [o async for o in outcomes]
        stats = pool.statistics()
    report = outcomes.report
    assert rest == []
    assert report.stop_reason is StopReason.CANCELLED
    assert len(report.failed) == 3
    assert all(isinstance(o.error, asyncio.CancelledError) for o in report.failed)
    assert (stats.in_flight, stats.reserved, stats.possibly_charged) == (0, 0, 6)
