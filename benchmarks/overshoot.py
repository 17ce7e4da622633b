"""Measure 5: credit overshoot near the budget, random costs, with and without an external drain.

One emulated account holds ``CREDITS``; the job must leave ``FLOOR`` on it, so its budget
is ``CREDITS - FLOOR``. The items are searches of 1-12 pages (``pages=N`` costs N
credits), seeded, whose total cost is about twice the budget, so every peer meets the
budget. Overshoot is how far the account ended below the floor: ``max(0, FLOOR -
remain_at_end)`` (as sole consumer, what the job spent past its budget). With ``drain``
another task spends credits on the same account (``Emulator.drain``) while the job runs;
a job cannot prevent that spending, only notice it and stop.

Peers (8 lanes, the emulator in this process with a seeded 2-10 ms latency):

* ``vendor``: the published recipe, gather + Semaphore; it never looks at credits.
* ``vendor_counter``: the recipe plus the obvious guard: read the account once, then
  before each call check ``spent + cost <= remain - floor``, adding to ``spent`` after a
  success (calls in flight are invisible to the check).
* ``chunked``: chunks of 8 items; before each, re-read the account and stop unless
  ``remain - floor`` covers the whole chunk's cost.
* ``lanepool``: ``client.lanes(floor=FLOOR)`` with its defaults (a recheck every 100
  items or 30 s), ``run_batch`` with ``cost=`` the item's pages.
* ``lanepool_recheck8``: the same with ``recheck_every=8`` (as often as ``chunked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from searchcans_async import SearchCans
from searchcans_async.testing import Emulator, Latency

from . import _harness

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

CREDITS: Final = 3_000
FLOOR: Final = 2_000
BUDGET: Final = CREDITS - FLOOR
ITEMS: Final = 300
MAX_COST: Final = 12
LANES: Final = 8
DRAIN_STEP: Final = 3  # credits ...
DRAIN_EVERY: Final = 0.002  # ... every this many seconds while the job runs
FULL: Final = {"seeds": 7}
QUICK: Final = {"seeds": 1}
PEER_NAMES: Final = ("vendor", "vendor_counter", "chunked", "lanepool", "lanepool_recheck8")
LABELS: Final = {
    "vendor": "vendor recipe (never checks credits)",
    "vendor_counter": "vendor recipe + preflight + spent counter",
    "chunked": "chunks of 8 + remain check before each",
    "lanepool": "LanePool (defaults: recheck every 100 items)",
    "lanepool_recheck8": "LanePool, recheck_every=8",
}

SHORT_LABELS: Final = {
    "vendor": "vendor recipe",
    "vendor_counter": "vendor recipe\n+ spent counter",
    "chunked": "chunks of 8\n+ remain check",
    "lanepool": "LanePool\n(defaults)",
    "lanepool_recheck8": "LanePool\nrecheck_every=8",
}


class Item(NamedTuple):
    index: int
    cost: int


def make_items(seed: int) -> list[Item]:
    rng = random.Random(seed)
    return [Item(index, rng.randint(1, MAX_COST)) for index in range(ITEMS)]


async def search(client: SearchCans, item: Item) -> Any:
    return await client.search(f"overshoot {item.index}", pages=item.cost)


async def vendor(client: SearchCans, items: list[Item]) -> None:
    semaphore = asyncio.Semaphore(LANES)

    async def guarded(item: Item) -> Any:
        async with semaphore:
            return await search(client, item)

    await asyncio.gather(*(guarded(item) for item in items), return_exceptions=True)


async def vendor_counter(client: SearchCans, items: list[Item]) -> None:
    semaphore = asyncio.Semaphore(LANES)
    budget = (await client.account()).remain - FLOOR
    spent = 0
    stopped = False

    async def guarded(item: Item) -> Any:
        nonlocal spent, stopped
        async with semaphore:
            if stopped or spent + item.cost > budget:
                stopped = True
                return None
            result = await search(client, item)
            spent += item.cost
            return result

    await asyncio.gather(*(guarded(item) for item in items), return_exceptions=True)


async def chunked(client: SearchCans, items: list[Item]) -> None:
    semaphore = asyncio.Semaphore(LANES)

    async def guarded(item: Item) -> Any:
        async with semaphore:
            return await search(client, item)

    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, LANES)):
        account = await client.account()
        if account.remain - FLOOR < sum(item.cost for item in chunk):
            break
        await asyncio.gather(*(guarded(item) for item in chunk), return_exceptions=True)


def lanepool_peer(recheck_every: int) -> Callable[[SearchCans, list[Item]], Awaitable[None]]:
    async def lanepool(client: SearchCans, items: list[Item]) -> None:
        async with client.lanes(floor=FLOOR, recheck_every=recheck_every) as pool:

            async def run(item: Item) -> Any:
                return await search(client, item)

            await pool.run_batch(run, items, cost=lambda item: item.cost)

    return lanepool


PEERS: Final[dict[str, Callable[[SearchCans, list[Item]], Awaitable[None]]]] = {
    "vendor": vendor,
    "vendor_counter": vendor_counter,
    "chunked": chunked,
    "lanepool": lanepool_peer(100),
    "lanepool_recheck8": lanepool_peer(LANES),
}


async def one_run(name: str, seed: int, *, drain: bool) -> dict[str, Any]:
    items = make_items(seed)
    emulator = Emulator(
        credits=CREDITS, lanes=LANES, latency=Latency.uniform(0.002, 0.010), seed=seed,
        log_limit=10,
    )  # fmt: skip
    async with emulator, SearchCans(emulator.api_key, base_url=emulator.base_url) as client:

        async def drainer() -> None:
            while True:
                await asyncio.sleep(DRAIN_EVERY)
                emulator.drain(DRAIN_STEP)

        async with asyncio.TaskGroup() as group:
            drain_task = group.create_task(drainer()) if drain else None
            await PEERS[name](client, items)
            if drain_task is not None:
                drain_task.cancel()
        stats = emulator.stats()
    with contextlib.suppress(KeyError):
        assert stats.peak_in_flight <= LANES
    return {
        "peer": name,
        "seed": seed,
        "drain": drain,
        "charged": stats.charged,
        "drained": stats.external_drain,
        "remain_end": stats.remain,
        "overshoot": max(0, FLOOR - stats.remain),
        "unspent": max(0, stats.remain - FLOOR),
        "succeeded": stats.successes,
        "refused_402": stats.refusals.get(402, 0),
    }


async def measure(config: dict[str, Any]) -> list[dict[str, Any]]:
    runs = [
        await one_run(name, seed, drain=drain)
        for seed in range(config["seeds"])
        for drain in (False, True)
        for name in _harness.rotated(PEER_NAMES, seed)
    ]
    rows = []
    for drain in (False, True):
        for name in PEER_NAMES:
            mine = [run for run in runs if run["peer"] == name and run["drain"] == drain]
            rows.append(
                {
                    "peer": name,
                    "drain": drain,
                    "runs": len(mine),
                    "overshoot_max": max(run["overshoot"] for run in mine),
                    "overshoot_median": _harness.median([run["overshoot"] for run in mine]),
                    "charged_median": _harness.median([run["charged"] for run in mine]),
                    "drained_median": _harness.median([run["drained"] for run in mine]),
                    "unspent_median": _harness.median([run["unspent"] for run in mine]),
                    "refused_402": sum(run["refused_402"] for run in mine),
                    "overshoots": [run["overshoot"] for run in mine],
                }
            )
    return rows


def run(output: _harness.Output) -> dict[str, Any]:
    config = QUICK if output.quick else FULL
    result = _harness.document(
        "overshoot",
        "Credit overshoot near the budget (random costs 1-12, optional external drain)",
        quick=output.quick,
        config={
            **config,
            "credits": CREDITS,
            "floor": FLOOR,
            "budget": BUDGET,
            "items": ITEMS,
            "max_cost": MAX_COST,
            "lanes": LANES,
            "drain": f"{DRAIN_STEP} credits every {DRAIN_EVERY * 1000:g} ms",
            "peers": LABELS,
        },
    )
    rows = asyncio.run(measure(config))
    result["rows"] = rows
    bound = LANES * MAX_COST
    by_key = {(row["peer"], row["drain"]): row for row in rows}
    result["targets"] = [
        _harness.target(
            f"overshoot as sole consumer, {LABELS[name]}",
            "0 credits",
            f"max {by_key[name, False]['overshoot_max']} over {by_key[name, False]['runs']} runs",
            passed=by_key[name, False]["overshoot_max"] == 0,
        )
        for name in ("lanepool", "lanepool_recheck8")
    ] + [
        # Issue 5's bound assumes a recheck sees the drain: with the defaults (a recheck
        # every 100 items) a batch of ~130 items checks about once, so what is drained
        # after that check adds to the overshoot; that row is reported, not judged.
        _harness.target(
            f"overshoot with an external drain, {LABELS['lanepool_recheck8']}",
            f"<= lanes x max cost = {bound}",
            f"max {by_key['lanepool_recheck8', True]['overshoot_max']} over "
            f"{by_key['lanepool_recheck8', True]['runs']} runs",
            passed=by_key["lanepool_recheck8", True]["overshoot_max"] <= bound,
            ratio=round(by_key["lanepool_recheck8", True]["overshoot_max"] / bound, 3),
        )
    ]
    output.write("overshoot", result)
    return result
