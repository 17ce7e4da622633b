"""Measure 4: end-to-end throughput through the client and LanePool vs a raw aiohttp loop.

The server runs in its own process, pinned to one CPU while this process is pinned to
the other (when two are available). Two cases, each against its own server process:

* **zero latency** (client CPU-bound): the server answers at once, so the client side's
  CPU is the bottleneck and every microsecond of per-request work shows in the rate. The
  emulator cannot serve this case: on one core it needs about as much CPU per request as
  the client (its ceiling, measured here, is below the raw loop's rate), so both cores
  would saturate and the rate would measure the server too. The emulator's own answers
  (one search page, one account) are recorded at start and replayed by a bare HTTP server
  (``benchmarks/_replay_server.py``), whose core stays mostly idle;
* **lane-bound**: the emulator takes a lognormal time (median 10 ms, sigma 0.3), as real
  requests take time, so throughput is bound by lanes / mean latency and what the client
  does per request matters only as far as it delays a lane's next request.

Peers, at the same lane count:

* ``raw``: N worker tasks posting with a plain ``aiohttp.ClientSession`` and
  ``await response.json()``; no models, no retries, no ledger (the goal's baseline);
* ``client_workers``: N worker tasks calling ``SearchCans.search`` (no pool), which
  separates what the client costs from what the pool costs;
* ``client_pool_batch`` / ``client_pool_map``: ``client.lanes(max_lanes=N)`` with
  ``run_batch`` (a sink) or ``map`` (``async for``).

Every timed run opens its own session or client (and pool), as a job would. The
ceilings of the emulator and of the replay server come from
``benchmarks/bench_emulator.py``'s own raw driver, run against each (at zero latency) for a
fixed time at several concurrencies, with how busy the server's core was.
"""

from __future__ import annotations

import asyncio
import math
import time
import timeit
from typing import Any, Final

import aiohttp
import httpx

from searchcans_async import SearchCans
from searchcans_async._client import client as client_module
from searchcans_async._client.convert import parse_search

from . import _harness
from .bench_emulator import drive

FULL: Final = {
    "items": 3000,
    "rounds": 7,
    "lanes": [8, 32],
    "ceiling_seconds": 2.0,
    # Runs of lanes x cycles_per_lane searches (800 and 3,200), about 1.2 s each: the case
    # adds about 50 s to the measure. A run's fixed costs count: in a trial the pool's runs
    # took 40-75 ms longer than the no-pool workers' at 8 lanes (3-6 % of a run here), and
    # were within 1 % of them at 400 searches per lane.
    "lane_bound": {"cycles_per_lane": 100, "rounds": 5},
}
QUICK: Final = {
    "items": 150,
    "rounds": 1,
    "lanes": [8],
    "ceiling_seconds": 0.3,
    "lane_bound": {"cycles_per_lane": 10, "rounds": 1},
}
CEILING_CONCURRENCY: Final = (8, 32, 64)
EMULATOR_LANES: Final = 64
REPLAY_SERVER: Final = "benchmarks._replay_server"
DISTINCT_QUERIES: Final = 500
# Zero latency (issue 18): at least as fast as a raw aiohttp loop, typed results kept.
TARGET: Final = 1.0
# Lane-bound: within 10 % of the raw loop while lanes, not CPU, bound the rate.
LANE_BOUND_TARGET: Final = 0.9
# The lane-bound case's server latency: lognormal, (median, sigma) in seconds, for searches
# and account reads alike.
# Why 10 ms rather than 5: the ideal rate is lanes / mean latency, and at 32 lanes and 5 ms
# that is 6,400 req/s, more than one core drives through the client even at zero latency
# (about 170 us of CPU a request, under 6,000 req/s); in a trial at 5 ms the client's core
# was 0.87 busy at 32 lanes, CPU-bound again. At 10 ms the ideal (about 3,060 req/s) needs
# about half the client's core at 32 lanes and an eighth at 8.
# Why lognormal rather than fixed: with a fixed latency the answers of all lanes come due in
# the same millisecond, both processes work in a burst and then idle, and the lanes stay
# locked in that phase; in a trial at a fixed 10 ms that artifact put the raw loop 14 %
# *behind* the client at 32 lanes. Sigma 0.3 spreads the answers, as a real server's spread,
# so that the lanes drift apart.
LANE_BOUND_LATENCY: Final = (0.010, 0.3)
# At zero latency, a run where neither side's CPU was this busy was starved by another
# process: it runs again (at most `rounds` times per cell) rather than keep a figure about
# someone else's load. Lane-bound runs leave both cores mostly idle by design, so the test
# cannot tell starvation from waiting there: they are never discarded. The median of the
# rounds drops a stray run, not a disturbance that lasts a whole cell: in one rerun on a
# busy machine the pool's 8-lane figure fell from about 0.95x raw to 0.90x.
CONTENDED_BELOW: Final = 0.8
PEER_NAMES: Final = (
    "raw",
    "vendor_httpx",
    "client_workers",
    "client_pool_batch",
    "client_pool_map",
)
LABELS: Final = {
    "raw": "raw aiohttp loop (N worker tasks)",
    "vendor_httpx": "vendor pattern: httpx.AsyncClient, post(json=...).json()",
    "client_workers": "SearchCans.search, N worker tasks, no pool",
    "client_pool_batch": "SearchCans + LanePool.run_batch",
    "client_pool_map": "SearchCans + LanePool.map",
}


def query(index: int) -> str:
    return f"benchmark query {index % DISTINCT_QUERIES}"


async def raw(base_url: str, key: str, lanes: int, items: int) -> int:
    url = f"{base_url}/api/v1/search"
    headers = {"Authorization": f"Bearer {key}"}
    iterator = iter(range(items))
    ok = 0
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal ok
            for index in iterator:
                body = {"s": query(index), "t": "google"}
                async with session.post(url, json=body, headers=headers) as response:
                    envelope = await response.json()
                    ok += envelope["code"] == 0

        async with asyncio.TaskGroup() as group:
            for _ in range(lanes):
                group.create_task(worker())
    return ok


async def vendor_httpx(base_url: str, key: str, lanes: int, items: int) -> int:
    """The vendor's published async client, as users write it: httpx posting JSON."""
    url = f"{base_url}/api/v1/search"
    iterator = iter(range(items))
    ok = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=35.0) as session:

        async def worker() -> None:
            nonlocal ok
            for index in iterator:
                response = await session.post(url, json={"s": query(index), "t": "google"})
                ok += response.json()["code"] == 0

        async with asyncio.TaskGroup() as group:
            for _ in range(lanes):
                group.create_task(worker())
    return ok


async def client_workers(base_url: str, key: str, lanes: int, items: int) -> int:
    iterator = iter(range(items))
    ok = 0
    async with SearchCans(key, base_url=base_url) as client:

        async def worker() -> None:
            nonlocal ok
            for index in iterator:
                result = await client.search(query(index))
                ok += not result.no_results

        async with asyncio.TaskGroup() as group:
            for _ in range(lanes):
                group.create_task(worker())
    return ok


async def client_pool_batch(base_url: str, key: str, lanes: int, items: int) -> int:
    ok = 0

    def sink(outcome: Any) -> None:
        nonlocal ok
        ok += outcome.ok

    async with SearchCans(key, base_url=base_url) as client:

        async def search(index: int) -> Any:
            return await client.search(query(index))

        async with client.lanes(max_lanes=lanes) as pool:
            await pool.run_batch(search, range(items), on_outcome=sink)
    return ok


async def client_pool_map(base_url: str, key: str, lanes: int, items: int) -> int:
    ok = 0
    async with SearchCans(key, base_url=base_url) as client:

        async def search(index: int) -> Any:
            return await client.search(query(index))

        async with (
            client.lanes(max_lanes=lanes) as pool,
            pool.map(search, range(items)) as outcomes,
        ):
            async for outcome in outcomes:
                ok += outcome.ok
    return ok


PEERS: Final = {
    "raw": raw,
    "vendor_httpx": vendor_httpx,
    "client_workers": client_workers,
    "client_pool_batch": client_pool_batch,
    "client_pool_map": client_pool_map,
}


async def one_run(
    emulator: _harness.EmulatorProcess, name: str, lanes: int, items: int
) -> tuple[float, float, float | None]:
    """Requests per second, and how busy the client's and the server's CPU were."""
    _harness.settle()
    server_before = emulator.cpu_seconds()
    cpu_before = time.process_time()
    started = time.perf_counter()
    ok = await PEERS[name](emulator.base_url, emulator.api_key, lanes, items)
    seconds = time.perf_counter() - started
    client = (time.process_time() - cpu_before) / seconds
    server_after = emulator.cpu_seconds()
    server = (
        None
        if server_before is None or server_after is None
        else (server_after - server_before) / seconds
    )
    assert ok == items, (name, ok)
    return items / seconds, client, server


def mean_latency(median_seconds: float, sigma: float) -> float:
    """The mean of a lognormal latency: what lanes / latency must use (Little's law)."""
    return median_seconds * math.exp(sigma * sigma / 2)


async def warm_up(emulator: _harness.EmulatorProcess) -> None:
    for name in PEER_NAMES:  # every code path once
        await PEERS[name](emulator.base_url, emulator.api_key, 8, 100)


async def measure_cell(
    emulator: _harness.EmulatorProcess,
    lanes: int,
    items: int,
    rounds: int,
    *,
    judge_contention: bool,
) -> dict[str, Any]:
    """One lane count: interleaved rounds of every peer, medians and every sample."""
    samples: dict[str, list[float]] = {name: [] for name in PEER_NAMES}
    client_cpu: dict[str, list[float]] = {name: [] for name in PEER_NAMES}
    cpu_per_request: dict[str, list[float]] = {name: [] for name in PEER_NAMES}
    server_cpu: dict[str, list[float]] = {name: [] for name in PEER_NAMES}
    discarded: dict[str, int] = dict.fromkeys(PEER_NAMES, 0)
    kept_contended = 0
    retries_left = rounds if judge_contention else 0  # per cell, to bound a busy machine's run
    for round_number in range(rounds):
        for name in _harness.rotated(PEER_NAMES, round_number):
            while True:
                rate, client, server = await one_run(emulator, name, lanes, items)
                # At zero latency one side's core must be saturated; when neither is,
                # another process held the cores and the sample says nothing about us.
                contended = (
                    judge_contention
                    and server is not None
                    and max(client, server) < CONTENDED_BELOW
                )
                if not contended or not retries_left:
                    break
                retries_left -= 1
                discarded[name] += 1
                await asyncio.sleep(0.5)  # let the other process's burst pass
            kept_contended += contended
            samples[name].append(rate)
            client_cpu[name].append(client)
            cpu_per_request[name].append(client / rate * 1e6)
            if server is not None:
                server_cpu[name].append(server)
    medians = {name: _harness.median(values) for name, values in samples.items()}
    # The least CPU a request took over the rounds: another process's load (on this shared
    # machine, medians of the same cell move by 15 % between runs) only ever adds to it.
    cpu_us = {name: min(values) for name, values in cpu_per_request.items()}
    return {
        "lanes": lanes,
        "items": items,
        "rounds": rounds,
        "requests_per_second": {name: round(value, 1) for name, value in medians.items()},
        "ratio_to_raw": {name: round(value / medians["raw"], 3) for name, value in medians.items()},
        # Busy fraction of each side's CPU during the runs: the side near 1.0 is the
        # bottleneck.
        "client_cpu_busy": {
            name: round(_harness.median(values), 3) for name, values in client_cpu.items()
        },
        "server_cpu_busy": {
            name: round(_harness.median(values), 3) if values else None
            for name, values in server_cpu.items()
        },
        # This process's CPU time per request, the least over the rounds: what throughput
        # is when the client is the bottleneck, and what the zero-latency target judges.
        "client_cpu_us_per_request": {name: round(value, 1) for name, value in cpu_us.items()},
        "client_cpu_us_per_request_median": {
            name: round(_harness.median(values), 1) for name, values in cpu_per_request.items()
        },
        "cpu_ratio_to_raw": {
            name: round(cpu_us["raw"] / value, 3) for name, value in cpu_us.items()
        },
        "contention_judged": judge_contention,
        "discarded_contended_samples": discarded,
        "kept_contended_samples": kept_contended,
        "samples": rounds * len(PEER_NAMES),
        "samples_requests_per_second": {
            name: [round(value, 1) for value in values] for name, values in samples.items()
        },
    }


async def zero_latency(config: dict[str, Any], replay: _harness.EmulatorProcess) -> dict[str, Any]:
    await warm_up(replay)
    cells = [
        await measure_cell(replay, lanes, config["items"], config["rounds"], judge_contention=True)
        for lanes in config["lanes"]
    ]
    return {
        "cells": cells,
        "replay_ceiling": await ceiling(config, replay),
        "model_cost": await model_cost(replay),
        "untyped_results": await untyped_results(config, replay),
    }


async def ceiling(config: dict[str, Any], server: _harness.EmulatorProcess) -> list[dict[str, Any]]:
    """What the raw driver gets out of ``server``, and how busy the server's core was."""
    rows = []
    for concurrency in CEILING_CONCURRENCY:
        before, started = server.cpu_seconds(), time.perf_counter()
        row = await drive(server.base_url, server.api_key, concurrency, config["ceiling_seconds"])
        after, seconds = server.cpu_seconds(), time.perf_counter() - started
        # Over the whole call, the driver's warm-up included (its rate leaves it out).
        row["server_cpu_busy"] = (
            None if before is None or after is None else round((after - before) / seconds, 3)
        )
        rows.append(row)
    return rows


async def untyped_results(
    config: dict[str, Any], emulator: _harness.EmulatorProcess
) -> dict[str, Any]:
    """Diagnostic: the pool's CPU per request when no typed result is built.

    ``client_pool_batch`` runs twice per round beside the raw loop: as users run it, and
    with the client's page parser replaced by one that hands back a result built once.
    The difference is what building typed results costs at this rate; what remains is
    the client and the pool themselves. Not a way to use the client: only a measure.
    """
    real = client_module.parse_search
    built: dict[str, Any] = {}

    def reuse(data: Any, **fields: Any) -> Any:
        if "result" not in built:
            built["result"] = real(data, **fields)
        return built["result"]

    cells = []
    for lanes in config["lanes"]:
        cpu: dict[str, list[float]] = {"raw": [], "typed": [], "untyped": []}
        for round_number in range(config["rounds"]):
            for name in _harness.rotated(list(cpu), round_number):
                samples = cpu[name]
                peer = "raw" if name == "raw" else "client_pool_batch"
                if name == "untyped":
                    client_module.parse_search = reuse
                try:
                    rate, client, _server = await one_run(emulator, peer, lanes, config["items"])
                finally:
                    client_module.parse_search = real
                samples.append(client / rate * 1e6)
        # The least CPU a request took over the rounds: another process's load only adds
        # to it, and the differences of a few microseconds sought here drown in medians
        # that move by 15 % between runs on a shared machine.
        us = {name: round(min(values), 1) for name, values in cpu.items()}
        cells.append({"lanes": lanes, "client_cpu_us_per_request": us})
    return {
        "cells": cells,
        "how": f"least of {config['rounds']} interleaved runs of {config['items']} searches",
    }


async def lane_bound(config: dict[str, Any], emulator: _harness.EmulatorProcess) -> dict[str, Any]:
    case = config["lane_bound"]
    mean = mean_latency(*LANE_BOUND_LATENCY)
    await warm_up(emulator)
    cells = []
    for lanes in config["lanes"]:
        # The same round trips per lane at every lane count, so that a run's fixed costs
        # (opening the client, the pool's account read on entry, the tail where lanes run
        # dry) weigh the same in both cells.
        items = lanes * case["cycles_per_lane"]
        cell = await measure_cell(emulator, lanes, items, case["rounds"], judge_contention=False)
        ideal = lanes / mean
        cell["ideal_requests_per_second"] = round(ideal, 1)
        cell["fraction_of_ideal"] = {
            name: round(rate / ideal, 3) for name, rate in cell["requests_per_second"].items()
        }
        cells.append(cell)
    return {"cells": cells}


async def model_cost(emulator: _harness.EmulatorProcess) -> dict[str, Any]:
    """CPU time to build the typed result of one search page, apart from any run.

    One of the things the client does per request that the raw loop does not (with option
    validation, retries and the ledger): the page is the emulator's answer to a search.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emulator.base_url}/api/v1/search",
            json={"s": query(0), "t": "google"},
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        ) as response,
    ):
        data = (await response.json())["data"]

    def build() -> Any:
        return parse_search(data, query=query(0), engine="google", credits=1, request_id=None)

    number = 2000
    _harness.settle()
    best = min(timeit.repeat(build, number=number, repeat=5))
    return {
        "organic_results": len(data.get("organic", [])),
        "us_per_page": round(best / number * 1e6, 1),
        "how": f"timeit, best of 5 x {number} calls of the client's own parser",
    }


def _emulator_config(latency: Any) -> dict[str, Any]:
    return {"lanes": EMULATOR_LANES, "latency": latency, "credits": 10**12, "log_limit": 100}


def _pinning(client_cpu: int | None, server_cpu: int | None) -> str:
    return "the server in a separate process" + (
        f", pinned to CPU {server_cpu}; the client pinned to CPU {client_cpu}"
        if server_cpu is not None
        else " (CPU pinning unavailable)"
    )


async def measure_with_emulator(config: dict[str, Any]) -> dict[str, Any]:
    client_cpu, server_cpu = _harness.split_cpus()
    median, sigma = LANE_BOUND_LATENCY
    with _harness.pinned(client_cpu):
        async with _harness.EmulatorProcess(_emulator_config(0.0), cpu=server_cpu) as emulator:
            emulator_ceiling = await ceiling(config, emulator)
        async with _harness.EmulatorProcess({}, cpu=server_cpu, module=REPLAY_SERVER) as replay:
            result = await zero_latency(config, replay)
        spec = ["lognormal", median, sigma]
        async with _harness.EmulatorProcess(_emulator_config(spec), cpu=server_cpu) as slow:
            bound = await lane_bound(config, slow)
    result["ceiling"] = emulator_ceiling
    result["server"] = replay.stats
    result["setup"] = (
        f"{_pinning(client_cpu, server_cpu)}: the emulator's answers replayed by a bare HTTP "
        "server (the emulator itself saturates its core first, see its ceiling below); zero "
        "latency; HTTP/1.1 keep-alive on 127.0.0.1"
    )
    mean = mean_latency(median, sigma)
    bound["latency"] = {
        "distribution": "lognormal",
        "median_ms": median * 1000,
        "sigma": sigma,
        "mean_ms": round(mean * 1000, 2),
    }
    bound["server"] = slow.stats
    bound["setup"] = (
        f"the emulator in its own process, same pinning; lognormal latency, median "
        f"{median * 1000:g} ms, sigma {sigma:g} (mean {mean * 1000:.2f} ms), on searches and "
        f"account reads; {EMULATOR_LANES} server lanes"
    )
    result["lane_bound"] = bound
    return result


def lane_bound_name(document: dict[str, Any]) -> str:
    """``10 ms median latency``: how the lane-bound case's rows name it."""
    return f"{document['lane_bound']['latency']['median_ms']:g} ms median latency"


def e2e_target(cell: dict[str, Any], name: str) -> dict[str, Any]:
    """At zero latency: judged on client CPU per request, the least over the rounds.

    The client is the bottleneck there, so its rate is one over its CPU per request; the
    least of the rounds is that figure with the least of other processes' load in it.
    Medians of the rates, shown beside, move by up to 15 % between runs on this machine
    (one run put the raw loop at 119 us a request, the next at 178).
    """
    label = (
        f"e2e client CPU per request (zero latency, client CPU-bound), {LABELS[name]} vs raw "
        f"aiohttp ({cell['lanes']} lanes)"
    )
    rate, raw_rate = cell["requests_per_second"][name], cell["requests_per_second"]["raw"]
    cpu, raw_cpu = (
        cell["client_cpu_us_per_request"][name],
        cell["client_cpu_us_per_request"]["raw"],
    )
    ratio = cell["cpu_ratio_to_raw"][name]
    measured = (
        f"{ratio:.2f}x ({cpu:.0f} vs {raw_cpu:.0f} us, least of {cell['rounds']}); median "
        f"rates {cell['ratio_to_raw'][name]:.2f}x ({rate:.0f} vs {raw_rate:.0f} req/s)"
    )
    return _harness.target(
        label, f">= {TARGET:g}x raw", measured, passed=ratio >= TARGET, ratio=ratio
    )


def lane_bound_target(document: dict[str, Any], cell: dict[str, Any], name: str) -> dict[str, Any]:
    """Judged on throughput only: the CPU per request is not what bounds this case."""
    label = (
        f"e2e throughput at {lane_bound_name(document)} (lane-bound), {LABELS[name]} vs raw "
        f"aiohttp ({cell['lanes']} lanes)"
    )
    rate, raw_rate = cell["requests_per_second"][name], cell["requests_per_second"]["raw"]
    ratio = cell["ratio_to_raw"][name]
    fraction, raw_fraction = cell["fraction_of_ideal"][name], cell["fraction_of_ideal"]["raw"]
    measured = (
        f"{ratio:.2f}x ({rate:.0f} vs {raw_rate:.0f} req/s); {fraction:.2f} vs {raw_fraction:.2f} "
        f"of the lanes / mean latency ideal ({cell['ideal_requests_per_second']:.0f} req/s)"
    )
    return _harness.target(
        label,
        f">= {LANE_BOUND_TARGET:g}x raw",
        measured,
        passed=ratio >= LANE_BOUND_TARGET,
        ratio=ratio,
    )


JUDGED: Final = ("client_pool_batch", "client_pool_map")


def run(output: _harness.Output) -> dict[str, Any]:
    config = QUICK if output.quick else FULL
    median, sigma = LANE_BOUND_LATENCY
    result = _harness.document(
        "e2e",
        "End-to-end throughput against loopback servers",
        quick=output.quick,
        config={
            **config,
            "peers": LABELS,
            "ceiling_concurrency": list(CEILING_CONCURRENCY),
            "lane_bound_latency": {"distribution": "lognormal", "median": median, "sigma": sigma},
        },
    )
    result.update(asyncio.run(measure_with_emulator(config)))
    result["targets"] = [e2e_target(cell, name) for cell in result["cells"] for name in JUDGED] + [
        lane_bound_target(result, cell, name)
        for cell in result["lane_bound"]["cells"]
        for name in JUDGED
    ]
    output.write("e2e", result)
    return result
