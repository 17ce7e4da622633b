"""Hangs and lost control: stops reach stalled inputs, nested lanes, top-ups, errors, closing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from lanes_support import FakeAccount, buckets

from searchcans_async import CreditsExhausted, LanePool, SearchCans, ServerError, StopReason
from searchcans_async._clock import VirtualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from searchcans_async.testing import Emulator

#: A guard against a hang, never a timing assertion: every test here ends in a few loop turns.
GUARD = 5


async def turns_until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds (a bounded number of turns)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def pool_for(fake: FakeAccount, **options: Any) -> LanePool:
    options.setdefault("recheck_every", None)
    options.setdefault("recheck_interval", None)
    options.setdefault("settle_grace", 0.0)
    return LanePool(fake, clock=options.pop("clock", VirtualClock()), **options)


class StallingInput:
    """An async input that yields ``ready`` items, then waits on an event that never fires."""

    def __init__(self, ready: int) -> None:
        self.ready = ready
        self.never = asyncio.Event()
        self.cancelled = False

    async def __aiter__(self) -> AsyncIterator[int]:
        for item in range(self.ready):
            yield item
        try:
            await self.never.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        yield self.ready  # pragma: no cover  # the event never fires


# -- item 5: a stop cancels a pending anext() -------------------------------------------------


async def test_leaving_the_loop_early_does_not_wait_for_a_stalled_input() -> None:
    """Breaking out of `async with pool.map(...)` while the input stalls ends the batch at once."""
    fake = FakeAccount(concurrent=2)
    source = StallingInput(ready=2)
    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        async with pool.map(fake.work(), source.__aiter__()) as outcomes:
            async for _outcome in outcomes:
                break
    report = outcomes.report
    assert source.cancelled
    assert report.stop_reason is StopReason.CANCELLED
    assert (report.items_read, report.unread_from, fake.charged) == (2, 2, 2)
    assert set(buckets(report)) == {0, 1}


@pytest.mark.parametrize("how", ["pool_stop", "batch_stop", "fail_fast"])
async def test_a_stop_cancels_the_pending_read_of_a_stalled_input(how: str) -> None:
    """pool.stop(), batch.stop() or fail_fast while the input stalls: the batch ends at once."""
    fake = FakeAccount(concurrent=3)
    source = StallingInput(ready=2)
    started: list[int] = []
    item_gate = asyncio.Event()

    async def work(item: int) -> int:
        started.append(item)
        await item_gate.wait()
        if how == "fail_fast":
            raise ServerError("unavailable", http_status=503)
        fake.charge(1)
        return item

    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        batch = pool.map(work, source.__aiter__(), fail_fast=how == "fail_fast")
        async with batch:
            await turns_until(lambda: len(started) == 2)  # a third worker waits on the input
            if how == "pool_stop":
                pool.stop()
            elif how == "batch_stop":
                batch.stop()
            item_gate.set()
            outcomes = [outcome async for outcome in batch]
    report = batch.report
    assert source.cancelled
    assert len(outcomes) == 2
    expected = StopReason.ERROR if how == "fail_fast" else StopReason.CANCELLED
    assert report.stop_reason is expected
    assert (report.items_read, report.unread_from) == (2, 2)
    assert started == [0, 1]


async def test_an_item_the_input_yields_after_a_stop_is_not_started() -> None:
    """An input that ignores the cancellation and yields anyway: that item does not run."""
    fake = FakeAccount(concurrent=2)
    gate = asyncio.Event()

    async def stubborn() -> AsyncIterator[int]:
        yield 0
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: a badly behaved input
            await gate.wait()
        yield 1
        yield 2

    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        async with pool.map(fake.work(), stubborn()) as batch:
            first = await anext(batch)
            batch.stop()
            rest = [outcome async for outcome in batch]
    report = batch.report
    assert (first.index, rest) == (0, [])
    assert report.stop_reason is StopReason.CANCELLED
    assert report.not_started == ((1, 1),)
    assert fake.charged == 1


# -- item 6: nested lanes -----------------------------------------------------------------


async def test_a_batch_item_that_calls_pool_run_runs_in_its_own_lane(emulator: Emulator) -> None:
    """run_batch whose fn calls pool.run (the agent pattern) with every lane held: no hang."""
    async with (
        SearchCans(emulator.api_key, base_url=emulator.base_url, clock=VirtualClock()) as client,
        client.lanes(recheck_every=None, recheck_interval=None) as pool,
        asyncio.timeout(GUARD),
    ):

        async def tool(query: str) -> str:
            result = await pool.run(client.search, query, cost=1)
            return result.query

        report = await pool.run_batch(tool, [f"nested {i}" for i in range(7)], cost=1)
        stats = pool.statistics()
    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 7
    # Each search counted once: committed once, charged once by the server.
    assert report.credits_committed == 7 == emulator.stats().charged
    assert stats.committed == 7
    assert stats.peak_in_flight <= 3
    assert emulator.stats().peak_in_flight <= 3
    assert (stats.in_flight, stats.reserved) == (0, 0)


async def test_nested_lane_blocks_in_many_tasks_do_not_deadlock(emulator: Emulator) -> None:
    """pool.lane() nested inside pool.lane() in more tasks than lanes: each runs in its lane."""
    async with (
        SearchCans(emulator.api_key, base_url=emulator.base_url, clock=VirtualClock()) as client,
        client.lanes(recheck_every=None, recheck_interval=None) as pool,
        asyncio.timeout(GUARD),
    ):

        async def agent(name: str) -> str:
            async with pool.lane(cost=1):
                await asyncio.sleep(0)
                async with pool.lane(cost=1):
                    result = await client.search(name)
            return result.query

        async with asyncio.TaskGroup() as tasks:
            runs = [tasks.create_task(agent(f"agent {i}")) for i in range(5)]
        stats = pool.statistics()
    assert [run.result() for run in runs] == [f"agent {i}" for i in range(5)]
    assert stats.committed == 5 == emulator.stats().charged
    assert stats.peak_in_flight == 3
    assert (stats.in_flight, stats.reserved) == (0, 0)


async def test_a_nested_block_without_client_calls_is_charged_its_cost() -> None:
    """A nested lane whose work is not metered counts its own cost, once."""
    fake = FakeAccount(remain=100, concurrent=1)
    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        async with pool.lane(cost=2):
            await pool.run(asyncio.sleep, 0, cost=3)
        stats = pool.statistics()
    assert (stats.committed, stats.reserved, stats.in_flight) == (3, 0, 0)


async def test_a_nested_lane_is_refused_when_the_budget_cannot_cover_it() -> None:
    """A nested lane draws on the held lane's reservation, then the budget; past it, refused."""
    fake = FakeAccount(remain=100, concurrent=1)
    async with pool_for(fake, budget=3) as pool, asyncio.timeout(GUARD):
        async with pool.lane(cost=2):
            await pool.run(asyncio.sleep, 0, cost=3)  # 2 held + 1 more from the budget
            with pytest.raises(CreditsExhausted):
                await pool.run(asyncio.sleep, 0, cost=1)  # nothing left
        stats = pool.statistics()
    assert (stats.committed, stats.reserved, stats.in_flight) == (3, 0, 0)


# -- item 7: a refusal rechecks the account once it is old enough ------------------------------


async def test_a_refused_pool_sees_a_top_up_after_the_recheck_interval(emulator: Emulator) -> None:
    """After CreditsExhausted, a later run re-reads the account (rate-limited) and runs."""
    clock = VirtualClock()
    emulator.drain(emulator.stats().remain - 2)
    async with (
        SearchCans(emulator.api_key, base_url=emulator.base_url, clock=clock) as client,
        client.lanes(recheck_every=None, recheck_interval=30) as pool,
    ):
        await pool.run(client.search, "first", pages=2, cost=2)
        with pytest.raises(CreditsExhausted):
            await pool.run(client.search, "refused", cost=1)
        emulator.add_credits(10)
        reads = emulator.stats().account_calls
        with pytest.raises(CreditsExhausted):  # the last reading is fresh: no new read
            await pool.run(client.search, "too soon", cost=1)
        assert emulator.stats().account_calls == reads
        clock.advance(30)
        result = await pool.run(client.search, "after the top-up", cost=1)
        assert emulator.stats().account_calls == reads + 1
    assert result.query == "after the top-up"
    assert emulator.stats().charged == 3


# -- item 8: failed items keep their errors without killing what the user still runs -------------


async def test_a_failed_item_does_not_finalize_the_users_dispatcher_task() -> None:
    """Errors handed back by a live dispatcher coroutine (set_exception): it keeps serving."""
    fake = FakeAccount(concurrent=2)
    requests: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()

    async def dispatcher() -> None:
        while True:
            waiter = await requests.get()
            try:
                raise ServerError("unavailable", http_status=503)
            except ServerError as error:
                waiter.set_exception(error)

    async def work(_item: int) -> int:
        waiter = asyncio.get_running_loop().create_future()
        await requests.put(waiter)
        return await waiter

    async with pool_for(fake) as pool, asyncio.TaskGroup() as tasks:
        serving = tasks.create_task(dispatcher())
        async with asyncio.timeout(GUARD):
            report = await pool.run_batch(work, range(6))
        assert not serving.done()
        serving.cancel()
    assert report.stop_reason is StopReason.COMPLETED
    assert [type(outcome.error) for outcome in report.failed] == [ServerError] * 6


async def test_a_failed_item_does_not_finalize_the_users_generator() -> None:
    """An error made inside a suspended user generator: the generator stays usable."""
    fake = FakeAccount(concurrent=2)

    def error_maker() -> Any:
        while True:
            try:
                raise ServerError("unavailable", http_status=503)
            except ServerError as error:
                yield error

    errors = error_maker()

    async def work(_item: int) -> int:
        raise next(errors)

    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        report = await pool.run_batch(work, range(4))
    assert [type(outcome.error) for outcome in report.failed] == [ServerError] * 4
    assert isinstance(next(errors), ServerError)  # still alive


async def test_a_failed_items_finished_frames_drop_their_locals() -> None:
    """The memory goal stays: the locals of frames the error left are freed."""
    fake = FakeAccount(concurrent=1)

    async def work(item: int) -> int:
        payload = bytearray(64 * 1024)  # noqa: F841  # a big local the report must not keep
        raise ServerError(f"item {item} failed", http_status=503)

    async with pool_for(fake) as pool:
        report = await pool.run_batch(work, range(3))
    for outcome in report.failed:
        tb = outcome.error.__traceback__ if outcome.error is not None else None
        frames = {}
        while tb is not None:
            frames[tb.tb_frame.f_code.co_name] = tb.tb_frame
            tb = tb.tb_next
        assert "payload" not in frames["work"].f_locals


# -- item 9: exceptions come out as raised, never as an ExceptionGroup -------------------------


class Abort(BaseException):
    """A BaseException of the user's own."""


async def test_an_error_in_the_consumers_own_loop_comes_out_unwrapped() -> None:
    """An OSError raised in the `async for` body is the exception the caller gets back."""
    fake = FakeAccount(concurrent=2)
    raised = OSError("disk full")
    async with pool_for(fake) as pool:
        batch = pool.map(fake.work(), range(10))

        async def consume() -> None:
            async with batch as outcomes:
                async for _outcome in outcomes:
                    raise raised

        with pytest.raises(OSError, match="disk full") as caught:
            await consume()
    assert caught.value is raised
    assert batch.report.stop_reason is StopReason.ERROR


@pytest.mark.parametrize("api", ["run_batch", "map"])
async def test_a_base_exception_from_fn_comes_out_unwrapped(api: str) -> None:
    """A BaseException raised by fn reaches the caller as itself, not in a group."""
    fake = FakeAccount(concurrent=2)

    async def work(item: int) -> int:
        await asyncio.sleep(0)
        if item == 3:
            raise Abort
        return item

    async def run(pool: LanePool) -> None:
        if api == "run_batch":
            await pool.run_batch(work, range(10))
            return
        async with pool.map(work, range(10)) as outcomes:
            async for _outcome in outcomes:
                await asyncio.sleep(0)

    async with pool_for(fake) as pool, asyncio.timeout(GUARD):
        with pytest.raises(Abort):
            await run(pool)
        stats = pool.statistics()
    assert (stats.in_flight, stats.reserved) == (0, 0)


# -- item 10: closing the pool stops its batches -----------------------------------------------


async def test_closing_the_pool_stops_a_batch_running_in_another_task() -> None:
    """Leaving `async with pool` while a batch runs elsewhere: that batch stops, cancelled."""
    fake = FakeAccount(concurrent=3)
    gate = asyncio.Event()

    async def work(item: int) -> int:
        await gate.wait()
        fake.charge(1)
        return item

    async with asyncio.timeout(GUARD):
        async with pool_for(fake) as pool:
            running = asyncio.create_task(pool.run_batch(work, range(10)))
            await turns_until(lambda: pool.statistics().in_flight == 3)
        gate.set()
        report = await running
    assert report.stop_reason is StopReason.CANCELLED
    assert fake.charged == 0
    assert report.succeeded == 0
    assert set(buckets(report)) == set(range(report.items_read))
    assert pool.statistics().in_flight == 0


async def test_closing_the_pool_from_inside_an_item_neither_hangs_nor_cancels_it() -> None:
    """An item that closes its own pool finishes; the batch stops, cancelled."""
    fake = FakeAccount(concurrent=2)
    pool = pool_for(fake)

    async def work(item: int) -> int:
        if item == 1:
            await pool.aclose()
        await asyncio.sleep(0)
        return item

    async with pool, asyncio.timeout(GUARD):
        report = await pool.run_batch(work, range(10))
    assert report.stop_reason is StopReason.CANCELLED
    assert 1 not in {outcome.index for outcome in report.failed}
    assert set(buckets(report)) == set(range(report.items_read))
    assert report.items_read < 10
