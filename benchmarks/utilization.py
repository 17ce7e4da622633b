"""Measure 3: lane utilization under lognormal latency, with account rechecks.

Each item sleeps a lognormal time (median 20 ms, sigma 0.6; the same seeded draws for
every peer in a round). Every 50 items the account is re-read, and a read takes 5 ms.
The chunked recipe stops at each chunk boundary for that read (and waits for the
slowest item of the chunk first); LanePool reads it beside the running work. The worker
pool does no rechecks at all: it is the ceiling any design with rechecks can reach.

utilization = busy lane-seconds / (lanes x makespan), where busy lane-seconds sums each
item's own measured sleep and the makespan is the whole call, from entering the peer
to its return (so LanePool's account reads before and after a batch count against it).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any, Final

from searchcans_async import Account

from . import _harness
from .peers import LABELS, PEERS

FULL: Final = {"items": 1000, "rounds": 3, "median_s": 0.020, "recheck_s": 0.005}
QUICK: Final = {"items": 100, "rounds": 1, "median_s": 0.002, "recheck_s": 0.0005}
LANES: Final = 5
SIGMA: Final = 0.6
RECHECK_EVERY: Final = 50
PEER_NAMES: Final = ("chunked", "lanepool_batch", "lanepool_map", "workers")
TARGET: Final = 0.97


def draws(items: int, median_s: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median_s * math.exp(rng.gauss(0.0, SIGMA)) for _ in range(items)]


async def run_peer(name: str, durations: list[float], recheck_s: float) -> dict[str, Any]:
    spans: list[tuple[float, float]] = []
    rechecks: list[tuple[float, float]] = []
    account = Account(remain=10**9, concurrent=LANES, current=0)

    async def read_account() -> Account:
        started = time.perf_counter()
        await asyncio.sleep(recheck_s)
        rechecks.append((started, time.perf_counter()))
        return account

    async def work(duration: float) -> None:
        started = time.perf_counter()
        await asyncio.sleep(duration)
        spans.append((started, time.perf_counter()))

    counter = 0

    def sink(_result: object) -> None:
        nonlocal counter
        counter += 1

    _harness.settle()
    started = time.perf_counter()
    await PEERS[name](
        work,
        durations,
        lanes=LANES,
        sink=sink,
        account=read_account,
        chunk=RECHECK_EVERY,
        recheck_every=RECHECK_EVERY,
    )
    finished = time.perf_counter()
    assert counter == len(durations), (name, counter)
    busy = sum(end - start for start, end in spans)
    makespan = finished - started
    return {
        "peer": name,
        "utilization": busy / (LANES * makespan),
        "utilization_items_window": busy
        / (LANES * (max(e for _, e in spans) - min(s for s, _ in spans))),
        "makespan_s": makespan,
        "busy_lane_s": busy,
        "account_reads": len(rechecks),
        "timeline": {
            "spans": [(round(s - started, 5), round(e - started, 5)) for s, e in spans],
            "rechecks": [(round(s - started, 5), round(e - started, 5)) for s, e in rechecks],
        },
    }


async def measure(config: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in PEER_NAMES}
    for round_number in range(config["rounds"]):
        durations = draws(config["items"], config["median_s"], seed=round_number)
        for name in _harness.rotated(PEER_NAMES, round_number):
            samples[name].append(await run_peer(name, durations, config["recheck_s"]))
    rows = []
    timelines = {}
    for name, runs in samples.items():
        ordered = sorted(runs, key=lambda run: run["utilization"])
        middle = ordered[len(ordered) // 2]
        timelines[name] = middle["timeline"]
        rows.append(
            {
                "peer": name,
                "utilization": round(middle["utilization"], 4),
                "utilization_items_window": round(
                    _harness.median([run["utilization_items_window"] for run in runs]), 4
                ),
                "makespan_s": round(_harness.median([run["makespan_s"] for run in runs]), 4),
                "account_reads": middle["account_reads"],
                "samples": [round(run["utilization"], 4) for run in runs],
            }
        )
    return {"rows": rows, "timelines": timelines}


def run(output: _harness.Output) -> dict[str, Any]:
    config = QUICK if output.quick else FULL
    result = _harness.document(
        "utilization",
        "Lane utilization, lognormal latency, account rechecks",
        quick=output.quick,
        config={
            **config,
            "lanes": LANES,
            "sigma": SIGMA,
            "recheck_every": RECHECK_EVERY,
            "peers": {name: LABELS[name] for name in PEER_NAMES},
        },
    )
    result.update(asyncio.run(measure(config)))
    result["targets"] = [
        _harness.target(
            f"lane utilization, {LABELS[row['peer']]}",
            f">= {TARGET:g}",
            f"{row['utilization']:.3f}",
            passed=row["utilization"] >= TARGET,
            ratio=round(row["utilization"] / TARGET, 3),
        )
        for row in result["rows"]
        if row["peer"].startswith("lanepool")
    ]
    output.write("utilization", result)
    return result
