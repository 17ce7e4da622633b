"""LanePool: lanes, credits, rechecks, stops, against an in-memory account source."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import pytest
from lanes_support import FakeAccount, buckets, item_cost

from searchcans_async import (
    ApiKey,
    AuthenticationError,
    CreditsExhausted,
    LaneBusyError,
    LanePool,
    NoLanesError,
    ServerError,
    StopReason,
    TransportError,
)
from searchcans_async._client.meter import current_lane
from searchcans_async._clock import VirtualClock


def pool_for(fake: FakeAccount, **options: Any) -> LanePool:
    options.setdefault("recheck_every", None)
    options.setdefault("recheck_interval", None)
    options.setdefault("settle_grace", 0.0)
    return LanePool(fake, clock=options.pop("clock", VirtualClock()), **options)


# -- opening -----------------------------------------------------------------------------


async def test_lanes_come_from_concurrent_capped_by_max_lanes() -> None:
    """The pool sizes its lanes from `concurrent`, capped by `max_lanes`."""
    async with pool_for(FakeAccount(concurrent=7)) as pool:
        assert pool.lanes == 7
    async with pool_for(FakeAccount(concurrent=7), max_lanes=2) as pool:
        assert pool.lanes == 2
        assert pool.statistics().plan_lanes == 2


async def test_an_account_without_lanes_refuses_to_open() -> None:
    """`concurrent == 0` is a clear NoLanesError where lanes are sized, not a hang."""
    with pytest.raises(NoLanesError, match="concurrent=0"):
        async with pool_for(FakeAccount(concurrent=0)):
            pass


async def test_an_inactive_key_refuses_to_open() -> None:
    """A pool on an inactive key fails at once with AuthenticationError."""
    fake = FakeAccount(keys=(ApiKey(name="k", active=False),))
    with pytest.raises(AuthenticationError, match="inactive"):
        async with pool_for(fake):
            pass


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"budget": -1}, ValueError),
        ({"floor": -5}, ValueError),
        ({"max_lanes": 0}, ValueError),
        ({"budget": 1.5}, TypeError),
        ({"recheck_every": 0}, ValueError),
        ({"recheck_interval": 0}, ValueError),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], error: type) -> None:
    """Invalid pool options raise at construction, naming the option."""
    with pytest.raises(error, match=next(iter(options))):
        LanePool(FakeAccount(), **options)


async def test_work_before_open_is_a_clear_error() -> None:
    """Using a pool that is not open says how to open it."""
    pool = pool_for(FakeAccount())
    with pytest.raises(RuntimeError, match="async with"):
        pool.map(FakeAccount().work(), [1])


# -- lanes -------------------------------------------------------------------------------


async def test_map_keeps_every_lane_busy_and_never_more() -> None:
    """With enough items all lanes are used at once, and never more than the lanes."""
    fake = FakeAccount(remain=10_000, concurrent=4)
    async with pool_for(fake) as pool:
        report = await pool.run_batch(fake.work(yields=3), range(50))
        assert fake.peak_in_flight == 4
        assert pool.statistics().peak_in_flight == 4
    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 50
    assert report.credits_committed == 50 == fake.charged


async def test_map_streams_outcomes_and_reads_the_input_lazily() -> None:
    """Items are pulled one per free lane, not materialised; outcomes stream out."""
    fake = FakeAccount(remain=10_000, concurrent=3)
    pulled: list[int] = []

    def items() -> Any:
        for i in range(1_000):
            pulled.append(i)
            yield i

    async with pool_for(fake) as pool:
        async with pool.map(fake.work(), items(), buffer=4) as outcomes:
            first = await anext(outcomes)
            # Three lanes plus a four-outcome buffer: the input is far from exhausted.
            assert len(pulled) < 20
            rest = [outcome async for outcome in outcomes]
    assert first.ok
    assert sorted(o.index for o in [first, *rest]) == list(range(1_000))
    assert all(o.result == o.item for o in rest)
    assert outcomes.report.stop_reason is StopReason.COMPLETED


async def test_map_accepts_an_async_iterable() -> None:
    """An async generator works as input, read in order."""
    fake = FakeAccount(remain=100, concurrent=2)

    async def items() -> Any:
        for i in range(10):
            await asyncio.sleep(0)
            yield i

    async with pool_for(fake) as pool:
        async with pool.map(fake.work(), items()) as outcomes:
            got = sorted([o.item async for o in outcomes])
    assert got == list(range(10))
    assert outcomes.report.unread_from is None


async def test_iterating_without_async_with_is_a_clear_error() -> None:
    """`async for` over a Batch that was not entered explains the right usage."""
    fake = FakeAccount()
    async with pool_for(fake) as pool:
        batch = pool.map(fake.work(), [1])
        with pytest.raises(RuntimeError, match=r"async with pool\.map"):
            await anext(batch)


# -- credits -----------------------------------------------------------------------------


async def test_budget_stops_before_the_first_item_that_does_not_fit() -> None:
    """Budget 10 at 2 credits each: five succeed, the sixth is not started, zero overshoot."""
    fake = FakeAccount(remain=1_000)
    async with pool_for(fake, budget=10) as pool:
        report = await pool.run_batch(fake.work(cost=2), range(20), cost=2)
    assert report.stop_reason is StopReason.BUDGET
    assert report.succeeded == 5
    assert [index for index, _ in report.not_started] == [5]
    assert report.unread_from == 6
    assert fake.charged == 10
    assert isinstance(report.error, CreditsExhausted)
    assert set(buckets(report).values()) == {"succeeded", "not_started"}
    assert list(report.to_resume(range(20))) == list(range(5, 20))


async def test_floor_is_left_on_the_account() -> None:
    """`floor` credits stay untouched: the batch stops before reaching them."""
    fake = FakeAccount(remain=30)
    async with pool_for(fake, floor=21) as pool:
        report = await pool.run_batch(fake.work(cost=3), range(10), cost=3)
    assert report.succeeded == 3
    assert fake.remain == 21


async def test_cost_can_be_a_function_of_the_item() -> None:
    """A cost function prices each item; the budget stops at the first that does not fit."""
    fake = FakeAccount(remain=1_000)
    items = [("a", 3), ("b", 3), ("c", 5), ("d", 1)]
    async with pool_for(fake, budget=8) as pool:
        report = await pool.run_batch(fake.work(), items, cost=item_cost)
    assert report.succeeded == 2
    assert report.not_started == ((2, ("c", 5)),)
    assert fake.charged == 6


async def test_a_broken_cost_function_fails_that_item_only() -> None:
    """A cost function that raises, or returns a non-int, fails that item and goes on."""
    fake = FakeAccount()

    def cost(item: int) -> int:
        if item == 1:
            raise KeyError("no price")
        return "x" if item == 2 else 1  # type: ignore[return-value]  # deliberately not an int, to test the refusal

    async with pool_for(fake) as pool:
        report = await pool.run_batch(fake.work(), range(4), cost=cost)
    assert report.succeeded == 2
    assert sorted((o.index, type(o.error).__name__) for o in report.failed) == [
        (1, "KeyError"),
        (2, "TypeError"),
    ]


async def test_an_uncharged_failure_releases_its_reservation() -> None:
    """A failure the server did not bill gives its credits back to the budget."""
    fake = FakeAccount(remain=1_000)

    async def flaky(item: int) -> int:
        await asyncio.sleep(0)
        if item < 5:
            raise ServerError("boom", http_status=503)  # charged=False
        fake.charge(2)
        return item

    async with pool_for(fake, budget=10) as pool:
        report = await pool.run_batch(flaky, range(10), cost=2)
    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 5
    assert len(report.failed) == 5
    assert report.credits_committed == 10 == fake.charged


async def test_a_possibly_charged_failure_holds_credits_until_a_check_settles_them() -> None:
    """A possibly-charged failure keeps its credits until the next account check."""
    fake = FakeAccount(remain=1_000)

    async def timeout_once(item: int) -> int:
        await asyncio.sleep(0)
        if item == 0:
            raise TransportError("read timeout", charged=None)
        fake.charge(2)
        return item

    async with pool_for(fake, budget=6) as pool:
        async with pool.lane(cost=2):
            await timeout_once(1)
        with pytest.raises(TransportError):
            async with pool.lane(cost=2):
                await timeout_once(0)
        stats = pool.statistics()
        assert (stats.committed, stats.possibly_charged, stats.budget_left) == (2, 2, 2)
        await pool.recheck()  # the server shows the failed call was not billed
        stats = pool.statistics()
        assert (stats.possibly_charged, stats.budget_left) == (0, 4)


async def test_require_full_refuses_a_batch_the_budget_cannot_cover() -> None:
    """require_full=True estimates the whole batch and refuses it, naming both numbers."""
    fake = FakeAccount(remain=1_000)
    async with pool_for(fake, budget=9) as pool:
        with pytest.raises(CreditsExhausted, match="needs 10 credits but the budget has 9") as info:
            await pool.run_batch(fake.work(cost=2), list(range(5)), cost=2, require_full=True)
        assert (info.value.needed, info.value.available) == (10, 9)
        with pytest.raises(ValueError, match="known size"):
            await pool.run_batch(fake.work(), iter(range(5)), require_full=True)
        report = await pool.run_batch(fake.work(), [("a", 4), ("b", 5)], cost=item_cost,
                                      require_full=True)  # fmt: skip
    assert report.succeeded == 2
    assert fake.charged == 9


async def test_a_lane_waits_for_inflight_work_that_could_free_credits() -> None:
    """lane() waits while in-flight reservations might be released, then gets them."""
    fake = FakeAccount(remain=1_000)
    release = asyncio.Event()
    async with pool_for(fake, budget=4) as pool:

        async def holder() -> None:
            async with pool.lane(cost=4):
                await release.wait()
                raise ServerError("failed, not billed", http_status=500)

        task = asyncio.create_task(holder())
        await asyncio.sleep(0)
        waiter = asyncio.create_task(pool.run(asyncio.sleep, 0, cost=3))
        await asyncio.sleep(0)
        assert not waiter.done()
        release.set()
        with pytest.raises(ServerError):
            await task
        await waiter
        assert pool.statistics().committed == 3


async def test_a_lane_the_budget_can_never_cover_raises_credits_exhausted() -> None:
    """lane() raises CreditsExhausted when even settled work could not cover it."""
    fake = FakeAccount(remain=5)
    async with pool_for(fake) as pool:
        with pytest.raises(CreditsExhausted) as info:
            async with pool.lane(cost=6):
                pytest.fail("the body must not run")
        assert (info.value.needed, info.value.available) == (6, 5)
        assert pool.statistics().in_flight == 0
        assert pool.has_capacity(5)
        assert not pool.has_capacity(6)


async def test_a_call_inside_a_lane_cannot_spend_past_its_reservation() -> None:
    """A metered call beyond the lane's reservation takes more budget, or is refused."""
    fake = FakeAccount(remain=100)
    async with pool_for(fake, budget=5) as pool:
        async with pool.lane(cost=2):
            meter = current_lane.get()
            assert meter is not None
            await meter.cover(2)
            meter.settle(2, True)
            await meter.cover(3)  # beyond the reservation: extended from the budget
            meter.settle(3, True)
            with pytest.raises(CreditsExhausted):
                await meter.cover(1)
        stats = pool.statistics()
        assert (stats.committed, stats.reserved, stats.budget_left) == (5, 0, 0)


# -- stops -------------------------------------------------------------------------------


async def test_a_402_mid_batch_stops_it_and_nothing_else_starts() -> None:
    """The server's 402 stops the batch (billing); in-flight work ends, nothing new starts."""
    fake = FakeAccount(remain=7, concurrent=2)
    async with pool_for(fake) as pool:
        report = await pool.run_batch(fake.work(cost=2), range(10), cost=1)
        assert pool.stop_reason is StopReason.BILLING
        with pytest.raises(Exception, match="stopped taking work"):
            async with pool.lane(cost=1):
                pass
    assert report.stop_reason is StopReason.BILLING
    assert fake.charged == 6
    assert report.items_read <= 5
    assert len(report.failed) >= 1
    assert set(buckets(report)) == set(range(report.items_read))


async def test_an_auth_error_stops_the_batch() -> None:
    """A 401/403 from any item stops the batch with reason auth."""
    fake = FakeAccount()

    async def rejected(item: int) -> int:
        await asyncio.sleep(0)
        raise AuthenticationError("bad key", http_status=401, code=401)

    async with pool_for(fake) as pool:
        report = await pool.run_batch(rejected, range(100))
    assert report.stop_reason is StopReason.AUTH
    assert report.items_read <= 3
    assert isinstance(report.error, AuthenticationError)


async def test_errors_are_recorded_and_the_batch_goes_on_by_default() -> None:
    """Per-item errors are recorded and the batch continues; fail_fast stops it."""
    fake = FakeAccount(remain=1_000)

    async def bad_on_three(item: int) -> int:
        await asyncio.sleep(0)
        if item == 3:
            raise ValueError("bad item")
        return item

    async with pool_for(fake) as pool:
        report = await pool.run_batch(bad_on_three, range(10))
        assert (report.stop_reason, report.succeeded, len(report.failed)) == (
            StopReason.COMPLETED, 9, 1,
        )  # fmt: skip
        fast = await pool.run_batch(bad_on_three, range(100), fail_fast=True)
    assert fast.stop_reason is StopReason.ERROR
    assert isinstance(fast.error, ValueError)
    assert fast.items_read < 100
    assert set(buckets(fast)) == set(range(fast.items_read))


async def test_an_input_that_raises_stops_the_batch_with_error() -> None:
    """An input iterator that raises ends the batch (error) with the position reached."""
    fake = FakeAccount()

    def items() -> Any:
        yield 0
        yield 1
        raise OSError("disk gone")

    async with pool_for(fake) as pool:
        report = await pool.run_batch(fake.work(), items())
    assert report.stop_reason is StopReason.ERROR
    assert isinstance(report.error, OSError)
    assert (report.succeeded, report.unread_from) == (2, 2)


async def test_a_failing_sink_stops_the_batch_and_keeps_the_outcome() -> None:
    """If on_outcome raises, the batch stops and that outcome is kept in unconsumed."""
    fake = FakeAccount()
    seen: list[Any] = []

    def sink(outcome: Any) -> None:
        if outcome.index == 2:
            raise OSError("disk full")
        seen.append(outcome)

    async with pool_for(fake, max_lanes=1) as pool:
        report = await pool.run_batch(fake.work(), range(10), on_outcome=sink)
    assert report.stop_reason is StopReason.ERROR
    assert [o.index for o in report.unconsumed] == [2]
    assert len(seen) + len(report.unconsumed) == report.succeeded


async def test_leaving_the_loop_early_keeps_finished_outcomes() -> None:
    """Breaking out stops the batch; work in flight finishes into `unconsumed`."""
    fake = FakeAccount(remain=1_000, concurrent=3)
    async with pool_for(fake) as pool:
        async with pool.map(fake.work(yields=2), range(100)) as outcomes:
            async for outcome in outcomes:
                assert outcome.ok
                break
    report = outcomes.report
    assert report.stop_reason is StopReason.CANCELLED
    assert report.succeeded == 1 + len(report.unconsumed)
    assert report.succeeded == fake.charged
    assert set(buckets(report)) == set(range(report.items_read))


async def test_stop_lets_inflight_work_finish() -> None:
    """pool.stop() starts nothing new; the items in flight finish and are reported."""
    fake = FakeAccount(remain=1_000, concurrent=3)
    async with pool_for(fake) as pool:
        async with pool.map(fake.work(yields=3), range(100)) as outcomes:
            got = [await anext(outcomes)]
            pool.stop()
            got.extend([o async for o in outcomes])
    report = outcomes.report
    assert report.stop_reason is StopReason.CANCELLED
    assert report.succeeded == len(got) == fake.charged
    assert not report.failed


# -- rechecks ------------------------------------------------------------------------------


async def test_rechecks_run_every_n_items_beside_the_work() -> None:
    """The account is re-read every N completed items, without a barrier."""
    fake = FakeAccount(remain=10_000, concurrent=3)
    async with pool_for(fake, recheck_every=10) as pool:
        reads_before = fake.reads
        await pool.run_batch(fake.work(), range(100))
        # one read at batch start, one at the end, and about one per ten items
        assert 8 <= fake.reads - reads_before <= 13
        assert pool.statistics().remain == fake.remain


async def test_rechecks_also_run_every_t_seconds() -> None:
    """With a time interval, a check runs once that much (virtual) time has passed."""
    fake = FakeAccount(remain=10_000, concurrent=1)
    clock = VirtualClock()

    async def slow(item: int) -> int:
        clock.advance(7.0)
        await asyncio.sleep(0)
        return item

    async with pool_for(fake, recheck_interval=30.0, clock=clock) as pool:
        reads = fake.reads
        await pool.run_batch(slow, range(80))  # 560 virtual seconds
        assert fake.reads - reads >= 10


async def test_an_external_drain_makes_the_batch_stop_early_after_a_check() -> None:
    """Credits drained by another consumer are seen at the next check; the batch stops."""
    fake = FakeAccount(remain=200, concurrent=2)

    async def work(item: int) -> int:
        await asyncio.sleep(0)
        fake.charge(1)
        if item == 10:
            fake.drain(150)
        return item

    async with pool_for(fake, recheck_every=5) as pool:
        report = await pool.run_batch(work, range(200))
    assert report.stop_reason is StopReason.BUDGET
    assert fake.remain >= 0
    assert report.succeeded < 60
    assert fake.charged + 150 <= 200


async def test_lanes_follow_a_changed_plan() -> None:
    """When `concurrent` changes, a check resizes the lanes (and more run at once)."""
    fake = FakeAccount(remain=10_000, concurrent=2)

    async def work(item: int) -> int:
        if item == 20:
            fake.concurrent = 5
        return await fake.work(yields=3)(item)

    async with pool_for(fake, recheck_every=5) as pool:
        await pool.run_batch(work, range(200))
        assert pool.lanes == 5
    assert fake.peak_in_flight == 5


async def test_a_shrunk_plan_is_honoured_without_interrupting_work() -> None:
    """Fewer lanes after a check: running items finish, then at most the new count run."""
    fake = FakeAccount(remain=10_000, concurrent=4)
    peaks_after: list[int] = []

    async def work(item: int) -> int:
        if item == 8:
            fake.concurrent = 1
        if item > 60:
            peaks_after.append(fake.in_flight + 1)
        return await fake.work(yields=2)(item)

    async with pool_for(fake, recheck_every=4) as pool:
        report = await pool.run_batch(work, range(100))
        assert pool.lanes == 1
    assert report.succeeded == 100
    assert max(peaks_after) == 1


async def test_a_failed_check_keeps_the_batch_going() -> None:
    """An account check that fails is logged and ignored; the budget stays conservative."""
    fake = FakeAccount(remain=10_000)
    async with pool_for(fake, recheck_every=3) as pool:
        fake.fail_reads = ServerError("account endpoint down", http_status=503)
        report = await pool.run_batch(fake.work(), range(30))
        assert pool.statistics().rechecks >= 9  # every third item, each one failing
    assert report.succeeded == 30
    assert report.remain_before == 10_000  # the pool's opening reading, still exact
    assert report.remain_after is None  # the closing check failed too


async def test_a_batch_right_after_opening_reuses_the_opening_reading() -> None:
    """A batch started on a just-opened pool does not read the account again."""
    fake = FakeAccount(remain=500)
    async with pool_for(fake) as pool:
        assert fake.reads == 1
        first = await pool.run_batch(fake.work(), range(5))
        assert fake.reads == 2  # only the closing check
        second = await pool.run_batch(fake.work(), range(5))
        assert fake.reads == 3  # nothing ran since the last check: still fresh
    assert (first.remain_before, first.remain_after) == (500, 495)
    assert (second.remain_before, second.remain_after) == (495, 490)


async def test_a_check_that_finds_the_key_revoked_stops_with_auth() -> None:
    """A check answered 401 halts the pool with reason auth."""
    fake = FakeAccount(remain=10_000)

    async def work(item: int) -> int:
        if item == 5:
            fake.fail_reads = AuthenticationError("revoked", http_status=401)
        return await fake.work()(item)

    async with pool_for(fake, recheck_every=2) as pool:
        report = await pool.run_batch(work, range(1_000))
    assert report.stop_reason is StopReason.AUTH
    assert report.items_read < 1_000


async def test_lanes_that_drop_to_zero_stop_the_batch() -> None:
    """If a check finds `concurrent == 0`, the batch stops (billing) instead of hanging."""
    fake = FakeAccount(remain=10_000)

    async def work(item: int) -> int:
        if item == 5:
            fake.concurrent = 0
        return await fake.work()(item)

    async with pool_for(fake, recheck_every=2) as pool:
        report = await pool.run_batch(work, range(1_000))
    assert report.stop_reason is StopReason.BILLING
    assert report.items_read < 1_000


# -- adaptive lanes ------------------------------------------------------------------------


async def test_lane_busy_answers_shrink_the_lanes_then_they_grow_back() -> None:
    """AIMD: 1010s halve the usable lanes; successes grow them back to the plan."""
    fake = FakeAccount(remain=10_000, concurrent=8)
    sizes: list[int] = []

    async def work(item: int) -> int:
        if item in (10, 11, 12):
            meter = current_lane.get()
            assert meter is not None
            meter.lane_busy()
        sizes.append(pool.lanes)
        return await fake.work()(item)

    async with pool_for(fake) as pool:
        await pool.run_batch(work, range(400))
        assert pool.lanes == 8
    assert 1 <= min(sizes) <= 4
    assert max(sizes[-50:]) == 8


async def test_a_burst_of_lane_busy_answers_halves_the_lanes_once() -> None:
    """Simultaneous 1010s in one round of work halve the lanes once, not once each."""
    fake = FakeAccount(remain=10_000, concurrent=8)
    gate = asyncio.Event()
    async with pool_for(fake) as pool:

        async def busy() -> None:
            async with pool.lane(cost=1):
                meter = current_lane.get()
                assert meter is not None
                meter.lane_busy()
                await gate.wait()

        tasks = [asyncio.create_task(busy()) for _ in range(3)]
        await asyncio.sleep(0)
        assert pool.lanes == 4
        gate.set()
        await asyncio.gather(*tasks)
        for _ in range(40):
            await pool.run(asyncio.sleep, 0)
        assert pool.lanes == 8


# -- introspection ---------------------------------------------------------------------------


async def test_statistics_and_repr_show_live_state() -> None:
    """statistics() is a frozen snapshot; repr shows lanes, in flight and credits."""
    fake = FakeAccount(remain=50, concurrent=2)
    gate = asyncio.Event()
    async with pool_for(fake, budget=40) as pool:

        async def held() -> None:
            async with pool.lane(cost=3):
                await gate.wait()

        task = asyncio.create_task(held())
        await asyncio.sleep(0)
        stats = pool.statistics()
        assert (stats.in_flight, stats.reserved, stats.budget_left) == (1, 3, 37)
        assert "lanes=2 in_flight=1 waiting=0 reserved=3" in repr(pool)
        gate.set()
        await task
        with pytest.raises(AttributeError):
            stats.in_flight = 5  # type: ignore[misc]  # frozen: the test checks the assignment fails
    assert pool.statistics().committed == 3


async def test_lane_busy_error_in_a_lane_counts_as_uncharged() -> None:
    """A LaneBusyError escaping a lane releases its credits (never billed)."""
    fake = FakeAccount(remain=10)
    async with pool_for(fake) as pool:
        with pytest.raises(LaneBusyError):
            async with pool.lane(cost=4):
                raise LaneBusyError("busy", code=1010)
        assert pool.statistics().budget_left == 10


async def test_failed_items_keep_their_traceback_but_not_its_locals() -> None:
    """The report keeps each failure's traceback (it still prints) without frame locals."""
    fake = FakeAccount()

    async def fails(item: int) -> int:
        big = bytearray(100_000)  # a local the report must not keep alive
        await asyncio.sleep(0)
        raise ValueError(f"item {item} failed ({len(big)})")

    async with pool_for(fake) as pool:
        report = await pool.run_batch(fails, range(3))
    assert len(report.failed) == 3
    error = report.failed[0].error
    assert error is not None
    frames = traceback.extract_tb(error.__traceback__)
    assert any(frame.name == "fails" for frame in frames)
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "fails":
            assert "big" not in tb.tb_frame.f_locals
        tb = tb.tb_next
