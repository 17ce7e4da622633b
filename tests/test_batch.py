"""The batch layer over the pool's seat API, against an in-memory account source.

Every way of running work takes a seat the same way (a lane from ``pool.limiter``,
credits from the backend, ``pool.give_back`` at the end). These tests run batches over
the in-process backend and over one that answers nothing at once (as a shared backend
does), and check that both schedule alike: same outcomes, input order, lanes, credits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lanes_support import FakeAccount, buckets, item_cost

from searchcans_async import AuthenticationError, LanePool, ServerError, StopReason
from searchcans_async._clock import VirtualClock
from searchcans_async._lanes.backend import LocalBackend, Permit


class Deferring(LocalBackend):
    """The local ledger behind a backend that never answers at once (like Redis).

    Every reservation goes through ``await acquire`` and every release through ``await
    release``, each counted, so a test sees the slow path taken for every seat.
    """

    def __init__(self) -> None:
        super().__init__()
        self.acquired = 0
        self.released = 0
        self.acquiring = 0
        self.peak_acquiring = 0

    def reserve_nowait(self, cost: int) -> Permit | None:
        return None

    async def acquire(self, cost: int) -> Permit | None:
        self.acquiring += 1
        self.peak_acquiring = max(self.peak_acquiring, self.acquiring)
        try:
            await asyncio.sleep(0)  # a round trip
        finally:
            self.acquiring -= 1
        permit = super().reserve_nowait(cost)
        self.acquired += permit is not None
        return permit

    def release_nowait(self, permit: Permit, *, committed: int, possibly_charged: int) -> bool:
        return False

    async def release(self, permit: Permit, *, committed: int, possibly_charged: int) -> None:
        await asyncio.sleep(0)
        super().release_nowait(permit, committed=committed, possibly_charged=possibly_charged)
        self.released += 1


BACKENDS = ["local", "deferring"]


def assert_seats_taken_the_slow_way(pool: LanePool, seats: int) -> None:
    """Over the deferring backend, every seat was acquired and released by awaiting."""
    if isinstance(pool.backend, Deferring):
        assert pool.backend.acquired == pool.backend.released == seats


def pool_for(fake: FakeAccount, backend: str, **options: Any) -> LanePool:
    return LanePool(
        fake,
        backend=Deferring() if backend == "deferring" else LocalBackend(),
        recheck_every=None,
        recheck_interval=None,
        settle_grace=0.0,
        clock=VirtualClock(),
        **options,
    )


def recorder(fake: FakeAccount, started: list[Any], **work: Any) -> Any:
    """``fake.work`` that also records the order in which items start."""
    run = fake.work(**work)

    async def record(item: Any) -> Any:
        started.append(item)
        return await run(item)

    return record


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_batch_schedules_alike_on_every_backend(backend: str) -> None:
    """Items start in input order, lanes are never exceeded, the budget stops it exactly."""
    fake = FakeAccount(remain=1_000, concurrent=3)
    items = [(f"q{i}", 1 + i % 3) for i in range(12)]  # costs 1, 2, 3, 1, 2, 3, ...
    started: list[Any] = []
    async with pool_for(fake, backend, budget=13) as pool:
        report = await pool.run_batch(recorder(fake, started, yields=6), items, cost=item_cost)
        stats = pool.statistics()
    # 1+2+3+1+2+3 = 12; the seventh (cost 1) fits too: 13; the eighth (cost 2) does not.
    assert started == items[:7]
    assert report.succeeded == 7
    assert report.not_started == ((7, items[7]),)
    assert report.stop_reason is StopReason.BUDGET
    assert fake.charged == report.credits_committed == 13
    assert fake.peak_in_flight == stats.peak_in_flight == 3
    assert (stats.reserved, stats.in_flight) == (0, 0)
    assert_seats_taken_the_slow_way(pool, 7)


async def test_an_item_waiting_for_credits_keeps_its_place() -> None:
    """A cheaper item behind one that waits for credits does not jump ahead of it.

    Budget 8: a (3) and b (3) run and hold their lanes; c (4) must wait for them, since
    they might fail unbilled. d (1) would fit at once but must not start before c is
    decided. a and b are billed, so c is refused: the batch stops there, d never read.

    (With a shared backend, whether credits fit is known only after the round trip,
    which items make side by side: there d may start before c is refused.)
    """
    backend = "local"
    fake = FakeAccount(remain=1_000, concurrent=4)
    gate = asyncio.Event()
    started: list[str] = []

    async def work(item: tuple[str, int]) -> str:
        started.append(item[0])
        await gate.wait()
        fake.charge(item[1])
        return item[0]

    items = [("a", 3), ("b", 3), ("c", 4), ("d", 1)]
    async with pool_for(fake, backend, budget=8) as pool:
        async with pool.map(work, items, cost=item_cost) as outcomes:
            for _ in range(10):
                await asyncio.sleep(0)
            assert started == ["a", "b"]
            assert pool.statistics().reserved == 6
            gate.set()
            results = [outcome.result async for outcome in outcomes]
    report = outcomes.report
    assert sorted(results) == ["a", "b"]
    assert started == ["a", "b"]
    assert report.not_started == ((2, ("c", 4)),)
    assert report.unread_from == 3
    assert report.stop_reason is StopReason.BUDGET
    assert fake.charged == 6


@pytest.mark.parametrize("backend", BACKENDS)
async def test_credits_won_after_a_stop_are_given_back(backend: str) -> None:
    """An item that waited for credits and got them after a stop does not start.

    Budget 2 at cost 1: items 0 and 1 hold the budget; item 2 waits for credits. The batch
    is stopped; then 0 and 1 fail unbilled, so item 2 gets its credits, but only to give
    them back: it is reported not started, and resuming runs it.
    """
    fake = FakeAccount(remain=1_000, concurrent=3)
    gate = asyncio.Event()

    async def work(item: int) -> int:
        await gate.wait()
        raise ServerError("failed, not billed", http_status=500)

    async with pool_for(fake, backend, budget=2) as pool:
        async with pool.map(work, range(5)) as outcomes:
            for _ in range(10):
                await asyncio.sleep(0)
            assert pool.statistics().in_flight == 3  # two running, one waiting for credits
            outcomes.stop()
            gate.set()
            failed = [outcome.index async for outcome in outcomes]
        stats = pool.statistics()
    report = outcomes.report
    assert sorted(failed) == [0, 1]
    assert report.stop_reason is StopReason.CANCELLED
    assert report.not_started == ((2, 2),)
    assert buckets(report) == {0: "failed", 1: "failed", 2: "not_started"}
    assert list(report.to_resume(range(5))) == [0, 1, 2, 3, 4]
    assert (stats.reserved, stats.committed, stats.possibly_charged) == (0, 0, 0)
    assert fake.charged == 0


@pytest.mark.parametrize("backend", BACKENDS)
async def test_lane_run_and_map_share_the_same_seats(backend: str) -> None:
    """lane(), run() and a batch in flight at once never hold more lanes or credits than
    the pool has, and every seat taken is given back."""
    fake = FakeAccount(remain=1_000, concurrent=2)
    async with pool_for(fake, backend, budget=100) as pool:

        async def in_a_lane() -> None:
            async with pool.lane(cost=1):
                await fake.work()(("lane", 1))

        async def batch() -> int:
            report = await pool.run_batch(fake.work(yields=3), range(6))
            return report.succeeded

        results = await asyncio.gather(
            in_a_lane(), pool.run(fake.work(), ("run", 1), cost=1), batch()
        )
        stats = pool.statistics()
    assert results[2] == 6
    assert fake.charged == stats.committed == 8
    assert stats.peak_in_flight == fake.peak_in_flight == 2
    assert (stats.in_flight, stats.reserved) == (0, 0)
    assert_seats_taken_the_slow_way(pool, 8)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_batch_on_a_stopped_pool_starts_nothing(backend: str) -> None:
    """After a bad key stopped the pool, a new batch reports the same reason, reads nothing."""
    fake = FakeAccount(remain=1_000, concurrent=2)

    async def revoked(item: int) -> int:
        raise AuthenticationError("the key was revoked", http_status=401, code=401)

    async with pool_for(fake, backend) as pool:
        first = await pool.run_batch(revoked, range(3))
        second = await pool.run_batch(fake.work(), range(3))
    assert first.stop_reason is second.stop_reason is StopReason.AUTH
    assert (second.items_read, second.succeeded, second.unread_from) == (0, 0, 0)
    assert fake.charged == 0


async def test_round_trips_to_a_shared_backend_run_side_by_side() -> None:
    """Waiting for a round trip is not waiting for credits: workers do not queue for it.

    Four lanes, credits for everything: the four first items are acquired at once, as a
    process of a Redis group does (one worker at a time would cap a process's rate at
    one round trip per item).
    """
    fake = FakeAccount(remain=1_000, concurrent=4)
    backend = Deferring()
    pool = LanePool(fake, backend=backend, recheck_every=None, recheck_interval=None)
    async with pool:
        report = await pool.run_batch(fake.work(yields=4), range(12))
    assert report.succeeded == 12
    assert backend.peak_acquiring == 4
    assert fake.peak_in_flight == 4
