"""Soak (issue 8): 100k items through the client and LanePool against a faulty emulator.

The emulator runs in its own process with seeded faults from the whole retryable and
charged matrix (1010, 429 with a short, an absent and a garbage ``Retry-After``, 5xx as
JSON and as HTML, 1001, 1002, 443, no results, resets before and after the charge,
truncated JSON, wrong types, a large body, a slow body, 400, an unknown code). This
process runs ONE ``run_batch`` with a short retry policy, so that backoff does not
dominate the run.

Phase 1, RSS: the first 10 % of the items are the warm-up; RSS is read then and after
every further 10 %, up to ``items``. tracemalloc is off (its own tables would be most of
the growth: +11 MB over 30k items in a trial, with +1.2 MB traced).

Phase 2, allocation sites: the same batch goes on for ``tail`` more items with
tracemalloc on (one frame), with a snapshot after every 10 % of them (the first tenth
is the traced warm-up). A site *grows steadily* when it grew in at least 7 of the 9
intervals and by more than 64 KiB in all.

Failed items are kept by contract (``BatchReport.failed`` holds each with its error), so
what they retain is reported beside the growth; in phase 2 the sink drops each failed
item's traceback (the report keeps the error) so that this known growth cannot mask
another.

    python -m benchmarks.soak            # 100k + 20k items (~1 min), prints a summary
    python -m benchmarks.soak --quick    # 3k + 600 items
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import itertools
import json
import linecache
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Final

from searchcans_async import RetryPolicy, SearchCans
from searchcans_async.events import RetryScheduled
from searchcans_async.testing import Emulator, Fault, Faults

from . import _harness

FULL_ITEMS: Final = 100_000
FULL_TAIL: Final = 20_000
QUICK_ITEMS: Final = 3_000
QUICK_TAIL: Final = 600
LANES: Final = 32
# A millisecond, so that requests overlap on the server and its lane check is exercised
# (at zero latency each request completes before the next is read).
LATENCY: Final = 0.001
SEED: Final = 8
CHECKPOINTS: Final = 10
TARGET_MB: Final = 5.0
STEADY_INTERVALS: Final = 7
STEADY_BYTES: Final = 64 * 1024
MB: Final = 1024 * 1024

# kind, rate, parameters: about 4 % of the requests get a fault, 0.2 % a lasting one.
FAULTS: Final[list[list[Any]]] = [
    ["lane_busy", 0.010],
    ["rate_limited", 0.004, {"retry_after": 0.01}],
    ["rate_limited", 0.002, {"retry_after": None}],
    ["rate_limited", 0.001, {"retry_after": "garbage"}],
    ["server_error", 0.005, {"status": 503}],
    ["server_error", 0.002, {"status": 500, "html": True}],
    ["api_timeout", 0.003],
    ["throttled", 0.002, {"code": 1002}],
    ["network_code", 0.001],
    ["no_results", 0.005],
    ["reset_before", 0.0005],
    ["reset_after_charge", 0.0005],
    ["truncated_json", 0.0005],
    ["wrong_types", 0.0002],
    ["huge_body", 0.0005, {"size": 128 * 1024}],
    ["slow_body", 0.0001, {"chunk_size": 1024, "chunk_delay": 0.01}],
    ["bad_request", 0.0002],
    ["unknown_code", 0.0001],
]
RETRY: Final = RetryPolicy(
    backoff_initial=0.005, backoff_max=0.05, lane_busy_delay=(0.005, 0.02), retry_after_max=0.05
)
_IGNORED: Final = (
    tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),
    tracemalloc.Filter(inclusive=False, filename_pattern=linecache.__file__),
    tracemalloc.Filter(inclusive=False, filename_pattern="<frozen importlib._bootstrap*>"),
    tracemalloc.Filter(inclusive=False, filename_pattern="<unknown>"),
)


def query(index: int) -> str:
    """One subject per item, so the server's records show whether any item was charged twice."""
    return f"soak query {index}"


def short_site(site: str) -> str:
    """``.../site-packages/aiohttp/client.py:12`` -> ``aiohttp/client.py:12`` (no machine paths)."""
    for marker in ("/site-packages/", "/lib/python3.", str(_harness.REPO) + "/"):
        _head, found, tail = site.rpartition(marker)
        if found:
            return tail.split("/", 1)[1] if marker == "/lib/python3." else tail
    return site


class Probe:
    """The sink: counts outcomes; reads RSS, then snapshots tracemalloc, at checkpoints."""

    def __init__(self, items: int, tail: int) -> None:
        self.items = items
        self.tail = tail
        self.rss_every = max(1, items // CHECKPOINTS)
        self.trace_every = max(1, tail // CHECKPOINTS)
        self.done = 0
        self.failed = 0
        self.no_results = 0
        self.rss_points: list[dict[str, Any]] = []
        self.trace_points: list[dict[str, Any]] = []
        self.snapshots: list[tracemalloc.Snapshot] = []
        self.started = time.perf_counter()

    def __call__(self, outcome: Any) -> None:
        self.done += 1
        done = self.done
        if outcome.error is not None:
            self.failed += 1
            if done > self.items:
                # The report keeps this error by contract; its traceback pins the frames
                # (and their locals) of the whole call. Dropped here, in the traced phase
                # only, so that what failures keep cannot hide a leak elsewhere.
                outcome.error.__traceback__ = None
        elif outcome.result.no_results:
            self.no_results += 1
        if done <= self.items:
            if done % self.rss_every == 0:
                self.rss_points.append(self._point())
            if done == self.items and self.tail:
                # The first snapshot comes a tenth of the tail later, once the working set
                # (what items in flight hold) is traced too; otherwise it shows as growth.
                tracemalloc.start(1)
        elif (done - self.items) % self.trace_every == 0:
            gc.collect()
            self._snapshot()

    def _point(self) -> dict[str, Any]:
        return {
            "items": self.done,
            "seconds": round(time.perf_counter() - self.started, 3),
            "rss_mb": round(_harness.rss_bytes() / MB, 3),
            "failed": self.failed,
        }

    def _snapshot(self) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORED)
        self.snapshots.append(snapshot)
        traced = sum(trace.size for trace in snapshot.traces)
        self.trace_points.append({**self._point(), "traced_mb": round(traced / MB, 3)})


def growth_sites(
    snapshots: list[tracemalloc.Snapshot],
) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """The sites that grew most over the traced phase, those that grew steadily, the totals."""
    totals = [sum(trace.size for trace in snapshot.traces) for snapshot in snapshots]
    if len(snapshots) < 2:
        return [], [], totals
    first, last = snapshots[0], snapshots[-1]
    top = [
        {
            "site": short_site(str(stat.traceback[0])),
            "growth_kib": round(stat.size_diff / 1024, 1),
            "size_kib": round(stat.size / 1024, 1),
            "count_growth": stat.count_diff,
        }
        for stat in last.compare_to(first, "lineno")[:10]
    ]
    sizes: dict[str, list[int]] = collections.defaultdict(lambda: [0] * len(snapshots))
    for position, snapshot in enumerate(snapshots):
        for stat in snapshot.statistics("lineno"):
            sizes[str(stat.traceback[0])][position] = stat.size
    needed = min(STEADY_INTERVALS, len(snapshots) - 1)
    steady = [
        short_site(site)
        for site, series in sizes.items()
        if series[-1] - series[0] > STEADY_BYTES
        and sum(later > earlier for earlier, later in itertools.pairwise(series)) >= needed
    ]
    return top, steady, totals


async def retention(items: int = 400) -> dict[str, Any]:
    """What a failed item keeps alive in a report, measured on a batch where all fail.

    An in-process emulator answers every request with a lasting fault (possibly charged
    or not retryable); tracemalloc compares the traced memory before the batch, with the
    report alive, and after dropping the errors' tracebacks.
    """
    faults = Faults(
        rates={
            Fault.reset_after_charge(): 0.25,
            Fault.truncated_json(): 0.25,
            Fault.wrong_types(): 0.25,
            Fault.bad_request(): 0.25,
        }
    )
    emulator = Emulator(credits=10**9, lanes=8, latency=0, faults=faults, seed=SEED, log_limit=10)
    async with emulator, SearchCans(emulator.api_key, base_url=emulator.base_url) as client:

        async def search(index: int) -> Any:
            return await client.search(query(index))

        async with client.lanes(max_lanes=8) as pool:
            await pool.run_batch(search, range(50))  # warm-up
            tracemalloc.start(1)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            report = await pool.run_batch(search, range(items))
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0]
            for outcome in report.failed:
                outcome.error.__traceback__ = None
            gc.collect()
            stripped = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
    failed = len(report.failed)
    return {
        "items": items,
        "failed": failed,
        "bytes_per_failed_item": round((kept - before) / max(1, failed)),
        "of_which_traceback": round((kept - stripped) / max(1, failed)),
        "by_error": dict(collections.Counter(type(o.error).__name__ for o in report.failed)),
    }


async def soak(items: int, tail: int) -> dict[str, Any]:
    retries: collections.Counter[str] = collections.Counter()

    def on_event(event: object) -> None:
        if isinstance(event, RetryScheduled):
            retries[event.reason] += 1

    emulator_config = {"lanes": LANES, "latency": LATENCY, "seed": SEED, "faults": FAULTS}
    client_cpu, server_cpu = _harness.split_cpus()
    probe = Probe(items, tail)
    emulator = _harness.EmulatorProcess(emulator_config, cpu=server_cpu)
    with _harness.pinned(client_cpu):
        async with emulator:
            client = SearchCans(
                emulator.api_key, base_url=emulator.base_url, retry=RETRY, on_event=on_event
            )

            async def search(index: int) -> Any:
                return await client.search(query(index))

            started = time.perf_counter()
            async with client, client.lanes(max_lanes=LANES) as pool:
                report = await pool.run_batch(search, range(items + tail), on_outcome=probe)
                statistics = pool.statistics()
            seconds = time.perf_counter() - started
    tracemalloc.stop()
    top, steady, traced_totals = growth_sites(probe.snapshots)
    kept = await retention()
    rss, traced = probe.rss_points, probe.trace_points
    failed_by_error = collections.Counter(type(o.error).__name__ for o in report.failed)
    server = emulator.stats
    return {
        "items": items,
        "tail": tail,
        "lanes": LANES,
        "seconds": round(seconds, 2),
        "rss_phase_items_per_second": round(items / rss[-1]["seconds"], 1),
        "stop_reason": report.stop_reason.value,
        "succeeded": report.succeeded,
        "failed": len(report.failed),
        "not_started": len(report.not_started),
        "no_results": probe.no_results,
        "failed_by_error": dict(failed_by_error),
        "retries_by_reason": dict(retries),
        "credits_committed": report.credits_committed,
        "credits_possibly_charged": report.credits_possibly_charged,
        "server_charged": server.get("charged"),
        "server_successes": server.get("successes"),
        "server_requests": server.get("requests"),
        "server_peak_in_flight": server.get("peak_in_flight"),
        "server_peak_offered": server.get("peak_offered"),
        "server_subjects_charged": server.get("subjects_charged"),
        "server_subjects_charged_more_than_once": server.get("subjects_charged_more_than_once"),
        "server_faults": server.get("faults", {}),
        "server_refusals": server.get("refusals", {}),
        "pool_peak_in_flight": statistics.peak_in_flight,
        "rechecks": statistics.rechecks,
        "rss_warmup_mb": rss[0]["rss_mb"],
        "rss_end_mb": rss[-1]["rss_mb"],
        "rss_growth_mb": round(rss[-1]["rss_mb"] - rss[0]["rss_mb"], 3),
        "failed_in_rss_phase": rss[-1]["failed"] - rss[0]["failed"],
        "traced_growth_mb": round((traced_totals[-1] - traced_totals[0]) / MB, 3)
        if traced_totals
        else None,
        "failed_in_traced_phase": traced[-1]["failed"] - traced[0]["failed"] if traced else None,
        "failed_item_retention": kept,
        "rss_points": rss,
        "trace_points": traced,
        "top_growth_sites": top,
        "steadily_growing_sites": steady,
    }


def targets(row: dict[str, Any]) -> list[dict[str, Any]]:
    size = f"{row['items']:,} items, faults on"
    return [
        _harness.target(
            f"soak RSS growth after warm-up ({size})",
            f"< {TARGET_MB:g} MB",
            f"{row['rss_growth_mb']:+.2f} MB",
            passed=row["rss_growth_mb"] < TARGET_MB,
            ratio=round(row["rss_growth_mb"] / TARGET_MB, 3),
        ),
        _harness.target(
            f"soak: allocation sites growing steadily ({row['tail']:,} more items, tracemalloc)",
            "none",
            ", ".join(row["steadily_growing_sites"]) or "none",
            passed=not row["steadily_growing_sites"],
        ),
        _harness.target(
            f"soak: items the server charged more than once ({size})",
            "0",
            f"{row['server_subjects_charged_more_than_once']} of "
            f"{row['server_subjects_charged']:,} charged",
            passed=row["server_subjects_charged_more_than_once"] == 0,
        ),
        _harness.target(
            f"soak: requests the server saw at once ({size})",
            f"<= {row['lanes']} lanes",
            f"peak in flight {row['server_peak_in_flight']}, offered {row['server_peak_offered']}",
            passed=(row["server_peak_offered"] or 0) <= row["lanes"],
        ),
    ]


def run(output: _harness.Output) -> dict[str, Any]:
    items, tail = (QUICK_ITEMS, QUICK_TAIL) if output.quick else (FULL_ITEMS, FULL_TAIL)
    result = _harness.document(
        "soak",
        "Soak: the client and LanePool against a faulty emulator",
        quick=output.quick,
        config={
            "items": items,
            "tail": tail,
            "lanes": LANES,
            "latency": LATENCY,
            "seed": SEED,
            "faults": FAULTS,
            "retry": repr(RETRY),
            "process": "a fresh process; the emulator in another one, each pinned to a CPU",
        },
    )
    row = _harness.run_child(
        "benchmarks.soak", "--items", str(items), "--tail", str(tail), "--json-line"
    )
    result["soak"] = row
    result["targets"] = targets(row)
    output.write("soak", result)
    return result


def summary(row: dict[str, Any]) -> str:
    kept = row["failed_item_retention"]
    top = "; ".join(
        f"{site['site']} {site['growth_kib']:+.0f} KiB" for site in row["top_growth_sites"][:5]
    )
    return "\n".join(
        [
            (
                f"soak: {row['items']:,} + {row['tail']:,} items in {row['seconds']} s,"
                f" stop {row['stop_reason']}"
            ),
            (
                f"  succeeded {row['succeeded']}, failed {row['failed']} {row['failed_by_error']},"
                f" no results {row['no_results']}"
            ),
            f"  retries {row['retries_by_reason']}",
            f"  server faults {row['server_faults']}",
            (
                f"  RSS {row['rss_warmup_mb']} MB after warm-up -> {row['rss_end_mb']} MB"
                f" ({row['rss_growth_mb']:+.2f} MB, {row['failed_in_rss_phase']} failed items kept)"
            ),
            (
                f"  traced {row['traced_growth_mb']:+.3f} MB over the tail"
                f" ({row['failed_in_traced_phase']} failed items, tracebacks dropped)"
            ),
            (
                f"  a failed item keeps ~{kept['bytes_per_failed_item']} bytes"
                f" (~{kept['of_which_traceback']} in its traceback)"
            ),
            f"  steadily growing sites: {row['steadily_growing_sites'] or 'none'}",
            f"  top growth: {top}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=None, help="items in the RSS phase")
    parser.add_argument("--tail", type=int, default=None, help="items in the traced phase")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ITEMS:,} + {QUICK_TAIL} items"
    )
    parser.add_argument("--json", type=Path, help="also write the row to this file")
    parser.add_argument("--json-line", action="store_true", help="print only the JSON row")
    options = parser.parse_args()
    items = options.items or (QUICK_ITEMS if options.quick else FULL_ITEMS)
    tail = (
        options.tail if options.tail is not None else (QUICK_TAIL if options.quick else FULL_TAIL)
    )
    row = asyncio.run(soak(items, tail))
    if options.json:
        options.json.write_text(json.dumps(row, indent=2) + "\n")
    if options.json_line:
        sys.stdout.write(json.dumps(row) + "\n")
        return
    print(summary(row))
    for line in targets(row):
        print(f"{'PASS' if line['passed'] else 'FAIL'}  {line['target']}: {line['measured']}")


if __name__ == "__main__":
    main()
