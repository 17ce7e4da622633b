"""Measure 2: peak RSS growth while 1M no-op items go through each peer.

Each peer runs in its own fresh process (``python -m benchmarks.memory --child PEER``),
so one peer's heap never inflates the next one's figure. The child imports everything,
warms the peer up on a few thousand items, collects garbage, reads its RSS, resets the
kernel's peak-RSS mark (``/proc/self/clear_refs``), runs the items and reads the peak.

Inputs are streamed where the peer can stream: a generator for LanePool, the worker
pool and the chunked recipe (whose results go to a counting sink); ``aiometer.amap``
needs a sized sequence, so it gets a ``range`` (lazy too); the vendor recipe gets the
generator but ``gather`` turns it into a million coroutines anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, Final

from . import _harness
from .peers import LABELS, PEERS, Counter, noop, noop_account

FULL_ITEMS: Final = 1_000_000
QUICK_ITEMS: Final = 20_000
LANES: Final = 8
WARMUP_ITEMS: Final = 5_000
TARGET_MB: Final = 10.0
MB: Final = 1024 * 1024


def streamed(items: int, name: str) -> Any:
    if name == "aiometer":
        return range(items)
    return (item for item in range(items))


async def child(name: str, items: int) -> dict[str, Any]:
    peer = PEERS[name]
    account = noop_account(LANES)
    await peer(noop, streamed(WARMUP_ITEMS, name), lanes=LANES, sink=Counter(), account=account)
    _harness.settle()
    before = _harness.rss_bytes()
    exact = _harness.reset_peak_rss()
    sink = Counter()
    started = time.perf_counter()
    await peer(noop, streamed(items, name), lanes=LANES, sink=sink, account=account)
    seconds = time.perf_counter() - started
    peak = _harness.peak_rss_bytes()
    assert sink.count == items, (name, sink.count)
    return {
        "peer": name,
        "items": items,
        "lanes": LANES,
        "rss_before_mb": round(before / MB, 2),
        "peak_rss_mb": round(peak / MB, 2),
        "growth_mb": round((peak - before) / MB, 2),
        "peak_reset": exact,
        "seconds": round(seconds, 3),
        "us_per_item": round(seconds / items * 1e6, 3),
    }


def run(output: _harness.Output) -> dict[str, Any]:
    items = QUICK_ITEMS if output.quick else FULL_ITEMS
    result = _harness.document(
        "memory",
        "Peak RSS growth, no-op items streamed through each peer",
        quick=output.quick,
        config={
            "items": items,
            "lanes": LANES,
            "warmup_items": WARMUP_ITEMS,
            "process": "one fresh process per peer",
            "peers": {name: LABELS[name] for name in PEERS},
        },
    )
    rows = [
        _harness.run_child("benchmarks.memory", "--child", name, "--items", str(items))
        for name in PEERS
    ]
    result["rows"] = rows
    size = f"{items:,} streamed items"
    result["targets"] = [
        _harness.target(
            f"peak RSS growth, {LABELS[row['peer']]} ({size})",
            f"<= +{TARGET_MB:g} MB",
            f"+{row['growth_mb']:.1f} MB",
            passed=row["growth_mb"] <= TARGET_MB,
            ratio=round(row["growth_mb"] / TARGET_MB, 3),
        )
        for row in rows
        if row["peer"] in ("lanepool_batch", "lanepool_map")
    ]
    output.write("memory", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="one peer's memory run (a child process)")
    parser.add_argument("--child", choices=sorted(PEERS), required=True)
    parser.add_argument("--items", type=int, default=FULL_ITEMS)
    options = parser.parse_args()
    row = asyncio.run(child(options.child, options.items))
    sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
