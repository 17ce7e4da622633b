"""Seeded chaos: real batches through the client and LanePool against the emulator, faulted.

Each seed is one run (see chaos_support.py for what a seed decides and what is checked
after every run). The fixed list is seeds 0..999; ``--chaos-seeds N`` runs 0..N-1 instead.
A failure names its seed: ``pytest tests/test_chaos.py -k 'seed417]'`` replays it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from chaos_support import (
    AMBIGUOUS_FAULTS,
    CHANGE_KINDS,
    DEFAULT_SEEDS,
    LONG_DEADLINE,
    Item,
    Scenario,
    check_run,
    make_scenario,
    run_scenario,
)
from lanes_support import FakeAccount, buckets

from searchcans_async import LanePool, ServerError, StopReason
from searchcans_async._clock import VirtualClock
from searchcans_async.testing import FAULT_KINDS, Fault

if TYPE_CHECKING:
    import pytest
    from chaos_support import RunResult


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" in metafunc.fixturenames:
        count = metafunc.config.getoption("chaos_seeds") or DEFAULT_SEEDS
        metafunc.parametrize("chaos_seed", range(count), ids=lambda seed: f"seed{seed}")


async def test_a_seeded_run_keeps_every_contract(chaos_seed: int) -> None:
    """Faults, stops and live changes: buckets, retries, lanes and credits all hold."""
    check_run(await run_scenario(make_scenario(chaos_seed)))


def test_the_fixed_seeds_draw_from_the_whole_fault_matrix() -> None:
    """The fixed list covers every fault kind and variant, every live change, both policies."""
    scenarios = [make_scenario(seed) for seed in range(DEFAULT_SEEDS)]
    faults = [fault for sc in scenarios for fault in sc.script.values()]
    assert {fault.kind for fault in faults} == FAULT_KINDS
    retry_afters = {(f.retry_after, f.http_date) for f in faults if f.kind == "rate_limited"}
    assert {(1, False), (0.05, False), (1, True), ("soon", False), (None, False)} <= retry_afters
    assert {(f.code, f.html) for f in faults if f.kind == "server_error"} == {
        (status, html) for status in (500, 502, 503, 504) for html in (False, True)
    }
    assert {f.code for f in faults if f.kind == "throttled"} == {1002, 1003, 1004, 1005, 1006, 1009}
    assert {f.code for f in faults if f.kind == "api_timeout"} == {1001, -1001}
    assert {f.code for f in faults if f.kind == "no_results"} == {9999, -9999}
    assert {f.cut_connection for f in faults if f.kind == "truncated_json"} == {False, True}
    changes = Counter(change.kind for sc in scenarios for change in sc.changes)
    assert set(changes) == set(CHANGE_KINDS)
    assert min(changes.values()) >= 30
    assert any(c.kind == "lanes" and c.amount == 0 for sc in scenarios for c in sc.changes)
    opted_in = sum(sc.opt_in for sc in scenarios)
    assert 200 <= opted_in <= 400
    assert {sc.mode for sc in scenarios} == {"run_batch", "map", "map_break", "twin"}
    assert {sc.source for sc in scenarios} == {"list", "generator", "async"}
    assert {sc.declared for sc in scenarios} == {"honest", "understated", "overstated"}
    assert sum("account" in sc.fault_endpoints for sc in scenarios) >= 150
    stalls = Counter(sc.stall_stop for sc in scenarios if sc.stall_at is not None)
    assert set(stalls) == {"stop", "stop_cancel"}
    assert sum(stalls.values()) >= 40
    relays = Counter(sc.relay for sc in scenarios)
    assert min(relays["generator"], relays["dispatcher"]) >= 60
    counters = Counter(sc.counters for sc in scenarios)
    assert min(counters["combined"], counters["frozen"]) >= 100
    # Frozen counters with reset-after-charge faults: the case that used to free doubts.
    frozen_resets = [
        sc
        for sc in scenarios
        if sc.counters == "frozen"
        and any(f.kind == "reset_after_charge" for f in sc.script.values())
    ]
    assert len(frozen_resets) >= 20
    # Long server waits: some fit the deadline, some cannot (refused before sending).
    assert sum(sc.server_timeout == 20.0 for sc in scenarios) >= 50
    assert sum(sc.refuses_every_call for sc in scenarios) >= 100


def _scripted(*, opt_in: bool) -> Scenario:
    """One lane, one search per item, each ambiguous fault on its item's first attempt."""
    faults = [
        Fault.reset_before(),
        Fault.reset_after_charge(),
        Fault.truncated_json(keep=0.5),
        Fault.truncated_json(keep=0.5, cut_connection=True),
        Fault.huge_body(size=48 * 1024),
    ]
    items = tuple(Item(i, "search", f"scripted item {i}", 1) for i in range(len(faults) + 2))
    return dataclasses.replace(
        make_scenario(0),
        lanes=1,
        credits=1_000,
        permanent_credits=0,
        key_quota=None,
        budget=None,
        floor=0,
        max_lanes=None,
        items=items,
        declared="honest",
        # With one lane and two attempts, item i's first request is ordinal 2i + 1 when
        # every earlier item was retried once (opted in), or i + 1 when none was.
        script={(2 * i + 1 if opt_in else i + 1): fault for i, fault in enumerate(faults)},
        fault_endpoints=("search", "url"),
        changes=(),
        attempts=2,
        opt_in=opt_in,
        deadline=LONG_DEADLINE,
        recheck_every=None,
        recheck_interval=None,
        settle_grace=None,
        mode="run_batch",
        source="list",
        fail_fast=False,
        latency=0.0,
        stall_at=None,
        relay="none",
    )


def _requests_per_item(result: RunResult) -> list[int]:
    per_subject = Counter(record.subject for record in result.log if record.endpoint == "search")
    unrecorded = sum(1 for r in result.log if r.endpoint == "search" and r.subject is None)
    counts = [per_subject[item.subject] for item in result.scenario.items]
    counts[0] += unrecorded  # the first item's dropped request was never read
    return counts


async def test_the_opt_in_retries_every_possibly_charged_failure() -> None:
    """retry_possibly_charged=True: each ambiguous failure is sent again, and may bill twice."""
    result = await run_scenario(_scripted(opt_in=True))
    check_run(result)
    report = result.report
    assert report is not None
    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 7
    assert _requests_per_item(result) == [2, 2, 2, 2, 2, 1, 1]
    assert dict(result.stats.faults if result.stats else {}) == {
        "reset_before": 1,
        "reset_after_charge": 1,
        "truncated_json": 2,
        "huge_body": 1,
    }
    # The server charged every ambiguous delivery but the drop on arrival: paid twice.
    assert [result.charges[item.subject] for item in result.scenario.items] == [
        1, 2, 2, 2, 2, 1, 1,
    ]  # fmt: skip


async def test_without_the_opt_in_no_possibly_charged_failure_is_retried() -> None:
    """By default each ambiguous failure ends its item after one request, charged at most once."""
    result = await run_scenario(_scripted(opt_in=False))
    check_run(result)
    report = result.report
    assert report is not None
    assert _requests_per_item(result) == [1] * 7
    failed = {outcome.index: outcome.error for outcome in report.failed}
    assert sorted(failed) == [0, 1, 2, 3, 4]
    assert all(getattr(error, "charged", False) is None for error in failed.values())
    assert {type(error).__name__ for error in failed.values()} == {
        "TransportError",
        "ResponseFormatError",
    }
    assert max(result.charges.values()) == 1
    assert report.credits_committed == 2
    assert report.credits_possibly_charged == 5
    assert set(AMBIGUOUS_FAULTS) - {"slow_body"} == set(result.stats.faults if result.stats else {})


# -- regressions the chaos runs found --------------------------------------------------------


async def test_an_item_read_as_the_input_runs_out_still_runs() -> None:
    """An item waiting for credits while another worker reads the input's end still runs.

    Found by seed 20203: the item was handed back as not started under a "completed" report.
    """
    costs, fails, yields = [2, 2, 1, 1, 2], [True, True, True, False, False], [2, 1, 2, 0, 0]
    fake = FakeAccount(remain=10_000, concurrent=3)

    async def work(index: int) -> int:
        for _ in range(yields[index]):
            await asyncio.sleep(0)
        if fails[index]:
            raise ServerError("unavailable", http_status=503)
        fake.charge(costs[index])
        return index

    async with LanePool(
        fake, budget=3, recheck_every=None, recheck_interval=None, clock=VirtualClock()
    ) as pool:
        report = await pool.run_batch(work, range(5), cost=lambda index: costs[index])
    assert report.stop_reason is StopReason.COMPLETED
    assert report.not_started == ()
    assert report.succeeded == 2
    assert fake.charged == 3


async def test_in_memory_credit_races_never_drop_an_item_that_fits() -> None:
    """3000 seeded small batches racing for credits: an item is refused only if it cannot fit."""
    rng = random.Random(8810)
    for trial in range(3_000):
        count, lanes = rng.randint(3, 6), rng.randint(2, 3)
        costs = [rng.randint(1, 3) for _ in range(count)]
        fails = [rng.random() < 0.4 for _ in range(count)]  # uncharged: credits come back
        yields = [rng.randint(0, 2) for _ in range(count)]
        budget = rng.randint(1, sum(costs))
        fake = FakeAccount(remain=10_000, concurrent=lanes)

        async def work(
            index: int, fake: FakeAccount = fake, spec: Any = (costs, fails, yields)
        ) -> int:
            costs, fails, yields = spec
            for _ in range(yields[index]):
                await asyncio.sleep(0)
            if fails[index]:
                raise ServerError("unavailable", http_status=503)
            fake.charge(costs[index])
            return index

        async with LanePool(
            fake, budget=budget, recheck_every=None, recheck_interval=None, clock=VirtualClock()
        ) as pool:
            report = await pool.run_batch(work, range(count), cost=costs.__getitem__)
        where = f"trial {trial}: costs {costs} fails {fails} yields {yields} budget {budget}"
        assert set(buckets(report)) == set(range(report.items_read)), where
        assert fake.charged <= budget, where
        if report.not_started:
            assert report.stop_reason is StopReason.BUDGET, f"{where}: {report}"
            first = report.not_started[0][0]
            assert costs[first] > budget - fake.charged, f"{where}: item {first} fit: {report}"
