"""Measure 1: scheduling overhead per item with no-op work, by items and by lanes.

``async def noop(x): return x`` never suspends, so what is timed is each peer's own
machinery: creating coroutines or tasks, taking and giving back a lane, the ledger,
delivering the result. Peers run interleaved (each round starts with another peer), in
the same process, after a warm-up; the figure is the median of the rounds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from . import _harness
from .peers import LABELS, PEERS, Counter, noop, noop_account

FULL: Final = {
    # (items, lanes) cells: the items sweep at 8 lanes, the lanes sweep at 50k items (at
    # 100k it alone would take 2.5 minutes, mostly aiometer's: ~30 us an item).
    "items_sweep": [10_000, 50_000, 100_000, 1_000_000],
    "lanes_sweep": [1, 2, 4, 8, 16, 32, 64, 128, 256],
    "lanes_sweep_items": 50_000,
    "lanes": 8,
    "rounds": 3,
    "target_rounds": 7,
    # 1M items: the vendor recipe holds a million coroutines (~1 GB) and aiometer a million
    # tasks (~30 s); one round of the fast peers and the vendor recipe keeps `make bench`
    # under 10 minutes. The memory measure runs every peer on 1M items anyway.
    "million_peers": ["vendor", "workers", "lanepool_batch", "lanepool_map"],
    "million_rounds": 1,
}
QUICK: Final = {
    "items_sweep": [1_000, 5_000],
    "lanes_sweep": [1, 8, 64],
    "lanes_sweep_items": 2_000,
    "lanes": 8,
    "rounds": 1,
    "target_rounds": 1,
    "million_peers": [],
    "million_rounds": 0,
}
TARGET_ITEMS: Final = 100_000
TARGET_LANES: Final = 8
TARGET_US: Final = 3.0
TARGET_RATIO: Final = 6.0


async def time_peer(name: str, items: int, lanes: int) -> float:
    """Seconds one peer takes for ``items`` no-op items in ``lanes`` lanes."""
    peer = PEERS[name]
    sink = Counter()
    account = noop_account(lanes)
    _harness.settle()
    started = time.perf_counter()
    await peer(noop, range(items), lanes=lanes, sink=sink, account=account)
    seconds = time.perf_counter() - started
    assert sink.count == items, (name, sink.count, items)
    return seconds


async def measure_cell(items: int, lanes: int, peers: list[str], rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in peers}
    for round_number in range(rounds):
        for name in _harness.rotated(peers, round_number):
            seconds = await time_peer(name, items, lanes)
            samples[name].append(seconds / items * 1e6)
    return {
        "items": items,
        "lanes": lanes,
        "rounds": rounds,
        "us_per_item": {
            name: round(_harness.median(values), 4) for name, values in samples.items()
        },
        "samples_us_per_item": {
            name: [round(value, 4) for value in values] for name, values in samples.items()
        },
    }


async def measure(config: dict[str, Any]) -> list[dict[str, Any]]:
    peers = list(PEERS)
    # Warm-up: every code path once, so no first-call costs land in a timed round.
    for name in peers:
        await time_peer(name, 2_000, config["lanes"])
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for items in config["items_sweep"]:
        if items >= 1_000_000:
            if config["million_peers"]:
                cell = await measure_cell(
                    items, config["lanes"], config["million_peers"], config["million_rounds"]
                )
                cells[items, config["lanes"]] = cell
            continue
        rounds = config["target_rounds"] if items == TARGET_ITEMS else config["rounds"]
        cells[items, config["lanes"]] = await measure_cell(items, config["lanes"], peers, rounds)
    items = config["lanes_sweep_items"]
    for lanes in config["lanes_sweep"]:
        if (items, lanes) not in cells:
            cells[items, lanes] = await measure_cell(items, lanes, peers, config["rounds"])
    return sorted(cells.values(), key=lambda cell: (cell["items"], cell["lanes"]))


def targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cell = next(
        (c for c in cells if c["items"] == TARGET_ITEMS and c["lanes"] == TARGET_LANES), None
    )
    if cell is None:  # the quick run has no 100k cell: judge its largest at 8 lanes
        cell = max((c for c in cells if c["lanes"] == TARGET_LANES), key=lambda c: c["items"])
    us = cell["us_per_item"]
    size = f"{cell['items']:,} items, {cell['lanes']} lanes"
    lines = []
    for name in ("lanepool_batch", "lanepool_map"):
        lines.append(
            _harness.target(
                f"overhead {LABELS[name]} ({size})",
                f"<= {TARGET_US:g} us/item",
                f"{us[name]:.2f} us/item",
                passed=us[name] <= TARGET_US,
                ratio=round(us[name] / TARGET_US, 3),
            )
        )
        ratio = us["vendor"] / us[name]
        lines.append(
            _harness.target(
                f"vendor recipe / {LABELS[name]} ({size})",
                f">= {TARGET_RATIO:g}x less overhead",
                f"{ratio:.1f}x ({us['vendor']:.2f} vs {us[name]:.2f} us/item)",
                passed=ratio >= TARGET_RATIO,
                ratio=round(ratio, 2),
            )
        )
    return lines


def run(output: _harness.Output) -> dict[str, Any]:
    config = QUICK if output.quick else FULL
    result = _harness.document(
        "overhead",
        "Scheduling overhead per item, no-op work",
        quick=output.quick,
        config={**config, "peers": {name: LABELS[name] for name in PEERS}},
    )
    cells = asyncio.run(measure(config))
    result["cells"] = cells
    result["targets"] = targets(cells)
    output.write("overhead", result)
    return result
