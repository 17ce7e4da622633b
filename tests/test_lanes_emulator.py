"""The client and the lane pool together, against the emulator over 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from searchcans_async import Costs, CreditsExhausted, SearchCans, StopReason
from searchcans_async._clock import VirtualClock
from searchcans_async.events import BudgetRebased, ItemFinished, LanesResized, Stopped
from searchcans_async.testing import (
    AccountSpec,
    Emulator,
    EmulatorCosts,
    Fault,
    Faults,
    Latency,
    WireOptions,
)


def client_for(emu: Emulator, **options: Any) -> SearchCans:
    return SearchCans(emu.api_key, base_url=emu.base_url, clock=VirtualClock(), **options)


async def test_a_batch_uses_every_lane_and_the_server_sees_no_more() -> None:
    """The server's own records: peak in flight equals the lanes, never more, no 1010."""
    async with Emulator(credits=10_000, lanes=4, latency=0.002) as emu:
        async with client_for(emu) as client, client.lanes() as pool:
            urls = [f"https://example.com/page/{i}" for i in range(60)]
            report = await pool.run_batch(client.read, urls, cost=2)
        stats = emu.stats()
    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 60
    assert stats.peak_in_flight == 4
    assert 1010 not in stats.refusals
    assert stats.charged == 120 == report.credits_committed
    assert set(emu.charges_by_subject().values()) == {1}


async def test_the_budget_holds_on_the_servers_own_books() -> None:
    """A budget of 101 at 2 credits a read: the server charges 100, the batch stops there."""
    async with Emulator(credits=10_000, lanes=3, latency=0.001) as emu:
        async with client_for(emu) as client, client.lanes(budget=101) as pool:
            urls = [f"https://example.com/{i}" for i in range(100)]
            report = await pool.run_batch(client.read, urls, cost=2)
        stats = emu.stats()
    assert report.stop_reason is StopReason.BUDGET
    assert stats.charged == 100
    assert report.succeeded == 50
    assert report.remain_after == 10_000 - 100


async def test_an_understated_cost_is_caught_before_the_call_is_sent() -> None:
    """Items declared at 1 credit but costing 4 (proxy 1) still never overspend the budget."""
    async with Emulator(credits=10_000, lanes=3, latency=0.001) as emu:
        async with client_for(emu) as client, client.lanes(budget=30) as pool:

            async def read(url: str) -> Any:
                return await client.read(url, proxy=1)

            report = await pool.run_batch(read, [f"https://e.com/{i}" for i in range(40)], cost=1)
        stats = emu.stats()
    assert stats.charged <= 30
    assert stats.charged == 4 * report.succeeded
    assert report.stop_reason is StopReason.BUDGET
    # The refused call never reached the server.
    assert stats.requests == report.succeeded


async def test_a_lane_refuses_a_call_the_budget_cannot_cover() -> None:
    """Inside a lane, a call beyond the reservation and budget raises before sending."""
    async with Emulator(credits=10_000, lanes=2, latency=0.001) as emu:
        async with client_for(emu) as client, client.lanes(budget=5) as pool:
            async with pool.lane(cost=2):
                await client.read("https://e.com/a")
                try:
                    await client.read("https://e.com/b", proxy=3)  # 12 credits
                except CreditsExhausted as error:
                    refused = error
            stats = pool.statistics()
        server = emu.stats()
    assert refused.needed == 12
    assert server.requests == 1
    assert (stats.committed, stats.reserved) == (2, 0)


async def test_lane_busy_answers_shrink_the_pool_and_the_calls_still_succeed() -> None:
    """Scripted 1010s: the client retries them and the pool halves its lanes for a while."""
    events: list[Any] = []
    faults = Faults(script={3: Fault.lane_busy(), 4: Fault.lane_busy()})
    async with Emulator(credits=10_000, lanes=6, latency=0.002, faults=faults) as emu:
        async with client_for(emu, on_event=events.append) as client, client.lanes() as pool:
            report = await pool.run_batch(client.search, [f"q{i}" for i in range(200)])
            lanes_after = pool.lanes
        stats = emu.stats()
    resized = [e for e in events if isinstance(e, LanesResized)]
    assert report.succeeded == 200
    assert stats.refusals.get(1010) == 2
    assert resized[0].reason == "lane_busy"
    assert resized[0].lanes == 3
    assert lanes_after == 6
    assert set(emu.charges_by_subject().values()) == {1}


async def test_a_402_from_the_server_stops_the_batch_as_billing() -> None:
    """With credits drained by someone else, the server's 402 stops the batch (billing)."""
    async with Emulator(credits=60, lanes=2, latency=0.001) as emu:
        async with client_for(emu) as client, client.lanes(recheck_every=None) as pool:

            async def read(url: str) -> Any:
                if url.endswith("/5"):
                    emu.drain(40)
                return await client.read(url)

            report = await pool.run_batch(read, [f"https://e.com/{i}" for i in range(100)], cost=2)
        stats = emu.stats()
    assert report.stop_reason is StopReason.BILLING
    assert stats.remain >= 0
    assert stats.charged + stats.external_drain <= 60
    assert 402 in stats.refusals


async def test_rechecks_follow_the_servers_plan_and_remain() -> None:
    """Live changes on the server (more lanes, a drain) are followed by the pool's checks."""
    events: list[Any] = []
    async with Emulator(credits=1_000, lanes=2, latency=0.002) as emu:
        async with client_for(emu, on_event=events.append) as client:
            async with client.lanes(recheck_every=10) as pool:

                async def search(query: str) -> Any:
                    if query == "q30":
                        emu.set_lanes(5)
                    if query == "q60":
                        emu.drain(800)
                    return await client.search(query)

                report = await pool.run_batch(search, [f"q{i}" for i in range(400)])
                lanes = pool.lanes
        stats = emu.stats()
    assert lanes == 5
    assert stats.peak_in_flight == 5
    assert any(isinstance(e, BudgetRebased) for e in events)
    assert report.stop_reason in (StopReason.BUDGET, StopReason.BILLING)
    assert stats.charged + stats.external_drain <= 1_000


@pytest.mark.parametrize(
    ("fault", "billed", "still_doubtful"),
    [(Fault.reset_after_charge(), 3, 1), (Fault.reset_before(), 2, 0)],
)
async def test_possibly_charged_resets_are_settled_by_the_next_check(
    fault: Fault, billed: int, still_doubtful: int
) -> None:
    """A dropped call is possibly charged; the next check clears it only if nothing was billed."""
    faults = Faults(script={2: fault})
    async with Emulator(credits=100, lanes=1, latency=Latency.fixed(0.001), faults=faults) as emu:
        async with (
            client_for(emu) as client,
            client.lanes(recheck_every=None, recheck_interval=None, settle_grace=0) as pool,
        ):
            report = await pool.run_batch(client.search, ["a", "b", "c"])
            stats = pool.statistics()
    assert [type(o.error).__name__ for o in report.failed] == ["TransportError"]
    assert report.succeeded == 2
    assert report.remain_after == 100 - billed
    assert stats.possibly_charged == still_doubtful
    assert emu.stats().charged == billed


@pytest.mark.parametrize(
    ("spec", "wire"),
    [
        pytest.param(AccountSpec(credits=10_000), WireOptions(counters="frozen"), id="frozen"),
        pytest.param(AccountSpec(credits=0, permanent_credits=10_000), None, id="bonus"),
    ],
)
async def test_doubts_stay_charged_when_current_does_not_show_the_spending(
    spec: AccountSpec, wire: WireOptions | None
) -> None:
    """Budget 30, every 4th search reset after its charge, `current` standing still.

    Either the counters are frozen, or every credit spent is a bonus credit (counted in
    `permanentCurrent`, not `current`). The growth of `current` cannot show what was
    billed, so no check may free a doubt: the server bills at most the budget.
    """
    faults = Faults(script={n: Fault.reset_after_charge() for n in range(4, 400, 4)})
    async with Emulator(accounts=[spec], latency=0.001, faults=faults, wire=wire) as emu:
        async with (
            client_for(emu) as client,
            client.lanes(budget=30, recheck_every=2, recheck_interval=None, settle_grace=0) as pool,
        ):
            report = await pool.run_batch(client.search, [f"q{i}" for i in range(100)])
        stats = emu.stats()
    resets = sum(type(o.error).__name__ == "TransportError" for o in report.failed)
    assert resets >= 5
    assert stats.charged <= 30
    assert report.credits_possibly_charged == resets
    assert report.credits_committed + report.credits_possibly_charged == stats.charged


async def test_to_resume_never_runs_a_possibly_charged_item_again() -> None:
    """q1 is reset after its charge, q3 refused (400, free), the budget stops before q6.

    Resuming runs only what cannot have been billed; q1 is offered separately.
    """
    faults = Faults(script={2: Fault.reset_after_charge(), 4: Fault.bad_request()})
    items = [f"q{i}" for i in range(8)]
    async with Emulator(credits=100, lanes=1, latency=0.001, faults=faults) as emu:
        async with (
            client_for(emu) as client,
            client.lanes(budget=5, recheck_every=None, recheck_interval=None) as pool,
        ):
            report = await pool.run_batch(client.search, items)
        charged = emu.charges_by_subject()
    assert report.stop_reason is StopReason.BUDGET
    assert [o.item for o in report.failed] == ["q1", "q3"]
    assert charged["q1"] == 1  # the reset came after the charge
    assert list(report.to_resume(items)) == ["q3", "q6", "q7"]
    assert list(report.possibly_charged_items(items)) == ["q1"]
    assert report.possibly_charged == (1,)


async def test_a_billed_no_results_answer_is_counted_when_configured() -> None:
    """Costs(no_results_charged=True): each 9999 answer is committed, so the budget holds."""
    queries = [f"q{i}" for i in range(20)]
    async with Emulator(
        credits=1000,
        lanes=2,
        latency=0.001,
        costs=EmulatorCosts(no_results_charged=True),
        no_results=queries[::2],
    ) as emu:
        client = client_for(emu, costs=Costs(no_results_charged=True))
        async with client, client.lanes(budget=15, recheck_every=None) as pool:
            report = await pool.run_batch(client.search, queries)
        stats = emu.stats()
    assert report.stop_reason is StopReason.BUDGET
    assert stats.charged == report.credits_committed == 15


async def test_every_item_and_rebase_is_reported_through_on_event() -> None:
    """on_event sees one ItemFinished per item (with its outcome) and the budget rebases."""
    events: list[Any] = []
    faults = Faults(script={3: Fault.bad_request()})
    async with Emulator(credits=1_000, lanes=2, latency=0.001, faults=faults) as emu:
        async with client_for(emu, on_event=events.append) as client, client.lanes() as pool:
            await pool.run_batch(client.search, [f"q{i}" for i in range(10)])
    finished = [e for e in events if isinstance(e, ItemFinished)]
    assert len(finished) == 10
    assert sorted(e.outcome for e in finished).count("failed") == 1
    assert sum(e.credits for e in finished) == 9
    assert all(0 <= e.in_flight < e.lanes == 2 for e in finished)
    assert any(isinstance(e, BudgetRebased) for e in events)
    assert any(isinstance(e, Stopped) and e.reason == "completed" for e in events)
