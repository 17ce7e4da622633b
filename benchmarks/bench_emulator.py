"""How many requests per second the emulator answers at zero latency.

Benchmarks of the client and the lane pool run against the emulator, so they need to know
whether the emulator or the client is the bottleneck. This drives it with a raw aiohttp
client (no project code) at several concurrencies, with the emulator in the same process
(sharing the client's event loop and core) and in a separate process (its own core).

    python benchmarks/bench_emulator.py            # ~15 s, writes benchmarks/results/emulator.json
    python benchmarks/bench_emulator.py --quick    # ~5 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from searchcans_async.testing import Emulator

CONCURRENCY = (8, 32, 64)
RESULTS = Path(__file__).resolve().parent / "results" / "emulator.json"
BODY = {"s": "emulator benchmark", "t": "google"}
CREDITS = 10**9


async def drive(base_url: str, key: str, concurrency: int, duration: float) -> dict[str, Any]:
    """Keep `concurrency` searches in flight for `duration` seconds; count the answers."""
    loop = asyncio.get_running_loop()
    url = f"{base_url}/api/v1/search"
    headers = {"Authorization": f"Bearer {key}"}
    counts = {"ok": 0, "other": 0}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(until: float) -> None:
            while loop.time() < until:
                async with session.post(url, json=BODY, headers=headers) as resp:
                    envelope = await resp.json()
                    counts["ok" if envelope["code"] == 0 else "other"] += 1

        # Warm up: open the connections before the clock starts.
        warmup_end = loop.time() + min(0.3, duration / 4)
        await asyncio.gather(*(worker(warmup_end) for _ in range(concurrency)))
        counts.update(ok=0, other=0)
        started = loop.time()
        await asyncio.gather(*(worker(started + duration) for _ in range(concurrency)))
        elapsed = loop.time() - started
    return {
        "concurrency": concurrency,
        "requests": counts["ok"],
        "refused": counts["other"],
        "seconds": round(elapsed, 3),
        "requests_per_second": round(counts["ok"] / elapsed, 1),
    }


async def in_process(duration: float) -> list[dict[str, Any]]:
    results = []
    for concurrency in CONCURRENCY:
        emulator = Emulator(credits=CREDITS, lanes=concurrency, latency=0, log_limit=1000)
        async with emulator:
            result = await drive(emulator.base_url, emulator.api_key, concurrency, duration)
            assert emulator.stats().peak_in_flight <= concurrency
        results.append({"mode": "in-process", **result})
    return results


async def separate_process(duration: float) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "searchcans_async.testing",
        "--port",
        "0",
        "--latency",
        "0",
        "--lanes",
        str(max(CONCURRENCY)),
        "--credits",
        str(CREDITS),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        announced: dict[str, str] = {}
        async with asyncio.timeout(20):
            while "SEARCHCANS_API_KEY" not in announced:
                name, _, value = (await process.stdout.readline()).decode().strip().partition("=")
                announced[name] = value
        base_url, key = announced["SEARCHCANS_BASE_URL"], announced["SEARCHCANS_API_KEY"]
        return [
            {"mode": "separate process", **await drive(base_url, key, concurrency, duration)}
            for concurrency in CONCURRENCY
        ]
    finally:
        process.send_signal(signal.SIGINT)
        await process.communicate()


async def run(duration: float = 2.0) -> dict[str, Any]:
    """Measure both modes; return the results document written to `RESULTS`."""
    results = await in_process(duration) + await separate_process(duration)
    return {
        "benchmark": "emulator throughput, zero latency, google search, raw aiohttp client",
        "seconds_per_cell": duration,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "platform": platform.platform(),
        },
        "results": results,
    }


def print_table(document: dict[str, Any]) -> None:
    print(f"{'mode':<18}{'concurrency':>12}{'requests':>10}{'req/s':>10}")
    for row in document["results"]:
        print(
            f"{row['mode']:<18}{row['concurrency']:>12}{row['requests']:>10}"
            f"{row['requests_per_second']:>10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s per cell instead of 2 s")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    options = parser.parse_args()
    document = asyncio.run(run(0.5 if options.quick else 2.0))
    print_table(document)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
