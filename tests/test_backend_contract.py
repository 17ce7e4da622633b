"""The LaneBackend contract, run against both backends: in-process and Redis.

Every test here takes a ``backend`` opened the same way for both kinds and asserts only
on what the protocol promises (permits, ``credits()``, waiting), so the Redis ledger is
held to exactly the in-process ledger's credit rules. A seeded random walk drives both
side by side and compares their figures after every step.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import pytest
from lanes_support import FakeAccount, buckets
from redis_support import RedisServer, new_account, redis_server_fixture

from searchcans_async import LanePool, StopReason
from searchcans_async._clock import VirtualClock
from searchcans_async._lanes.backend import LaneBackend, LocalBackend, Permit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

redis_server = redis_server_fixture()

KINDS = ["local", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=KINDS)
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], LaneBackend]]:
    """Builds unopened backends of one kind (Redis ones on a fresh account); closes them."""
    made: list[LaneBackend] = []
    account = new_account("contract")

    def make() -> LaneBackend:
        backend: LaneBackend
        if request.param == "local":
            backend = LocalBackend()
        else:
            from searchcans_async.redis import RedisBackend  # noqa: PLC0415  # imported where the test needs it

            server: RedisServer = request.getfixturevalue("redis_server")
            backend = RedisBackend.from_url(
                server.url, account=account, request_timeout=1.0, lease=5.0, poll_interval=0.2
            )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


async def opened(
    backend: LaneBackend,
    *,
    spendable: int = 100,
    cap: int | None = None,
    floor: int = 0,
    lanes: int = 1000,
    current: int | None = 0,
) -> LaneBackend:
    await backend.open(
        spendable=spendable,
        current=current,
        lanes=lanes,
        cap=cap,
        floor=floor,
        grace=0.0,
        clock=VirtualClock(),
    )
    return backend


@pytest.fixture
async def backend(make_backend: Callable[[], LaneBackend]) -> LaneBackend:
    """One backend opened on 100 spendable credits, no cap, no floor."""
    return await opened(make_backend())


def granted(permit: Permit | None) -> Permit:
    assert permit is not None
    return permit


# -- reservations ----------------------------------------------------------------------------


async def test_a_permit_reserves_its_cost(backend: LaneBackend) -> None:
    """Acquiring reserves the cost; the credits left shrink by it."""
    permit = granted(await backend.acquire(10))
    assert permit.reserved == 10
    credits = backend.credits()
    assert (credits.reserved, credits.left, credits.left_when_settled) == (10, 90, 100)
    assert backend.lease_valid(permit)


async def test_credits_that_do_not_fit_are_refused(backend: LaneBackend) -> None:
    """A cost beyond what is left gets None, not a permit; what fits still does."""
    assert await backend.acquire(101) is None
    granted(await backend.acquire(60))
    assert await backend.acquire(41) is None
    granted(await backend.acquire(40))
    assert backend.credits().left == 0


async def test_the_floor_is_kept(make_backend: Callable[[], LaneBackend]) -> None:
    """Credits below the floor are never reserved."""
    backend = await opened(make_backend(), floor=30)
    assert backend.credits().left == 70
    assert await backend.acquire(71) is None
    granted(await backend.acquire(70))


async def test_the_cap_limits_spending(make_backend: Callable[[], LaneBackend]) -> None:
    """With a cap below what is spendable, the cap is the budget."""
    backend = await opened(make_backend(), cap=20)
    assert backend.credits().left == 20
    permit = granted(await backend.acquire(15))
    await backend.release(permit, committed=15, possibly_charged=0)
    assert await backend.acquire(6) is None
    assert backend.credits().left == 5


async def test_a_release_commits_frees_or_holds_in_doubt(backend: LaneBackend) -> None:
    """Success commits, an uncharged failure frees, a possibly charged one stays counted."""
    first, second, third = [granted(await backend.acquire(10)) for _ in range(3)]
    await backend.release(first, committed=10, possibly_charged=0)
    await backend.release(second, committed=0, possibly_charged=0)
    await backend.release(third, committed=0, possibly_charged=10)
    credits = backend.credits()
    assert (credits.reserved, credits.committed, credits.possibly_charged) == (0, 10, 10)
    assert credits.left == 80


async def test_extending_a_permit_reserves_more(backend: LaneBackend) -> None:
    """extend() adds to a held permit's reservation, or returns None if it cannot."""
    permit = granted(await backend.acquire(10))
    bigger = granted(await backend.extend(permit, 5))
    assert bigger.reserved == 15
    assert backend.credits().reserved == 15
    assert await backend.extend(bigger, 86) is None
    await backend.release(bigger, committed=15, possibly_charged=0)
    assert backend.credits().left == 85


# -- account checks ----------------------------------------------------------------------------


async def test_a_rebase_follows_the_servers_remain(backend: LaneBackend) -> None:
    """A reading re-bases the budget; what is in flight still counts against it."""
    granted(await backend.acquire(10))
    mark = await backend.mark()
    await backend.rebase(mark, spendable=50, current=0, lanes=1000)
    assert backend.credits().left == 40


async def test_commits_after_the_mark_still_count(backend: LaneBackend) -> None:
    """An item that finishes after the check was sent is not in its remain: still counted."""
    permit = granted(await backend.acquire(10))
    mark = await backend.mark()
    await backend.release(permit, committed=10, possibly_charged=0)
    await backend.rebase(mark, spendable=100, current=0, lanes=1000)
    assert backend.credits().left == 90
    mark = await backend.mark()
    await backend.rebase(mark, spendable=90, current=10, lanes=1000)
    assert backend.credits().left == 90


@pytest.mark.parametrize(
    ("committed", "consumed", "still_in_doubt"),
    [
        (5, 5, 0),  # the counters show exactly our spending: the doubt was not billed
        (5, 15, 10),  # they show 10 more: it may have been
        (5, 9, 4),  # 4 more: at most 4 of the 10 can have been billed
        (5, 0, 10),  # frozen: they do not even show our own spending, so nothing is freed
        (5, 3, 10),  # lagging behind our spending: nothing is freed
        (0, 0, 10),  # nothing of ours to compare with: no evidence, nothing is freed
    ],
)
async def test_a_check_frees_doubts_only_on_consistent_evidence(
    make_backend: Callable[[], LaneBackend], committed: int, consumed: int, still_in_doubt: int
) -> None:
    """Doubts are freed only by counters that show at least what the pool itself spent."""
    backend = await opened(make_backend(), cap=100)
    if committed:
        spent = granted(await backend.acquire(committed))
        await backend.release(spent, committed=committed, possibly_charged=0)
    permit = granted(await backend.acquire(10))
    await backend.release(permit, committed=0, possibly_charged=10)
    assert backend.credits().possibly_charged == 10
    mark = await backend.mark()
    await backend.rebase(mark, spendable=100 - consumed, current=consumed, lanes=1000)
    credits = backend.credits()
    assert credits.possibly_charged == still_in_doubt
    assert credits.left == 100 - committed - still_in_doubt


async def test_a_waiter_wakes_when_credits_are_freed(backend: LaneBackend) -> None:
    """wait_for_change() returns once another task gives credits back."""
    permit = granted(await backend.acquire(100))
    assert await backend.acquire(1) is None
    waiter = asyncio.ensure_future(backend.wait_for_change())
    await asyncio.sleep(0)
    await backend.release(permit, committed=0, possibly_charged=0)
    await asyncio.wait_for(waiter, 5)
    granted(await backend.acquire(1))


async def test_closing_twice_is_harmless(make_backend: Callable[[], LaneBackend]) -> None:
    """aclose() is idempotent."""
    backend = await opened(make_backend())
    await backend.aclose()
    await backend.aclose()


# -- the same rules, step by step --------------------------------------------------------------


async def random_walk(backend: LaneBackend, rng: random.Random, steps: int) -> list[Any]:
    """Apply a seeded sequence of operations; return the credit figures after each."""
    held: list[Permit] = []
    mark: Any = None  # one account check at a time, as a pool makes them
    spendable, current = 200, 0
    seen: list[Any] = []
    for _ in range(steps):
        action = rng.choice(["acquire", "acquire", "release", "release", "extend", "check"])
        if action == "acquire":
            permit = await backend.acquire(rng.randint(0, 12))
            if permit is not None:
                held.append(permit)
        elif action == "release" and held:
            permit = held.pop(rng.randrange(len(held)))
            outcome = rng.choice(["ok", "free", "doubt", "part"])
            committed = permit.reserved if outcome == "ok" else 0
            doubt = permit.reserved if outcome == "doubt" else 0
            if outcome == "part":
                committed = permit.reserved // 2
                doubt = permit.reserved - committed
            # the server's view: what was committed is spent; doubts are billed half the time
            charged = committed + (doubt if rng.random() < 0.5 else 0)
            spendable -= charged
            current += charged
            await backend.release(permit, committed=committed, possibly_charged=doubt)
        elif action == "extend" and held:
            index = rng.randrange(len(held))
            extended = await backend.extend(held[index], rng.randint(1, 5))
            if extended is not None:
                held[index] = extended
        elif action == "check":
            if mark is None:
                mark = await backend.mark()
            else:
                await backend.rebase(mark, spendable=spendable, current=current, lanes=1000)
                mark = None
        seen.append((action, backend.credits()))
    return seen


@pytest.mark.redis
@pytest.mark.parametrize("seed", range(6))
async def test_redis_keeps_the_in_process_ledgers_rules(
    redis_server: RedisServer, seed: int
) -> None:
    """The same random operations give the same credit figures on both backends."""
    from searchcans_async.redis import RedisBackend  # noqa: PLC0415  # imported where the test needs it

    local = await opened(LocalBackend(), spendable=200, cap=150 if seed % 2 else None)
    shared = await opened(
        RedisBackend.from_url(redis_server.url, account=new_account("walk")),
        spendable=200,
        cap=150 if seed % 2 else None,
    )
    try:
        expected = await random_walk(local, random.Random(seed), 120)
        actual = await random_walk(shared, random.Random(seed), 120)
    finally:
        await shared.aclose()
        await local.aclose()
    for step, (want, got) in enumerate(zip(expected, actual, strict=True)):
        assert want == got, f"step {step}"


# -- a whole pool on each backend --------------------------------------------------------------


async def test_a_pool_never_overspends_on_either_backend(
    make_backend: Callable[[], LaneBackend],
) -> None:
    """A batch on a tight budget stops at it, each item in one bucket, on both backends."""
    fake = FakeAccount(remain=1_000, concurrent=3)
    pool = LanePool(
        fake,
        budget=41,
        recheck_every=7,
        recheck_interval=None,
        settle_grace=0.0,
        clock=VirtualClock(),
        backend=make_backend(),
    )
    work: Callable[[Any], Awaitable[Any]] = fake.work(yields=2, cost=2)
    async with pool:
        report = await pool.run_batch(work, range(100), cost=2)
    assert report.stop_reason is StopReason.BUDGET
    assert fake.charged <= 41
    assert fake.charged == 2 * report.succeeded == report.credits_committed
    assert fake.peak_in_flight <= 3
    assert len(buckets(report)) == report.items_read


async def test_nested_lanes_run_in_the_held_lane_on_either_backend(
    make_backend: Callable[[], LaneBackend],
) -> None:
    """lane() nested in batch items, every lane held: no hang, credits counted once."""
    fake = FakeAccount(remain=1_000, concurrent=2)
    pool = LanePool(
        fake,
        budget=9,
        recheck_every=None,
        recheck_interval=None,
        settle_grace=0.0,
        clock=VirtualClock(),
        backend=make_backend(),
    )

    async def item(index: int) -> int:
        async with pool.lane(cost=2):  # one more than the item reserved: the lane grows
            await asyncio.sleep(0)
            fake.charge(2)
        return index

    async with pool, asyncio.timeout(10):  # a guard against the hang, not a timing test
        report = await pool.run_batch(item, range(10), cost=1)
        stats = pool.statistics()
    assert report.stop_reason is StopReason.BUDGET
    assert report.succeeded == 4
    assert report.credits_committed == 8 == fake.charged
    assert (stats.in_flight, stats.reserved) == (0, 0)


async def test_closing_a_pool_stops_its_batch_on_either_backend(
    make_backend: Callable[[], LaneBackend],
) -> None:
    """Closing the pool under a running batch: cancelled, every lane given back first."""
    fake = FakeAccount(remain=1_000, concurrent=2)
    gate = asyncio.Event()

    async def item(index: int) -> int:
        await gate.wait()
        return index

    pool = LanePool(
        fake,
        recheck_every=None,
        recheck_interval=None,
        clock=VirtualClock(),
        backend=make_backend(),
    )
    async with asyncio.timeout(10):  # a guard against the hang, not a timing test
        async with pool:
            running = asyncio.create_task(pool.run_batch(item, range(10)))
            for _ in range(200):
                if pool.statistics().in_flight == 2:
                    break
                await asyncio.sleep(0)
        report = await running
    assert report.stop_reason is StopReason.CANCELLED
    assert report.succeeded == 0
    assert (pool.statistics().in_flight, pool.statistics().reserved) == (0, 0)
