"""What sharing an account through Redis costs: calls/s across processes, overhead per call.

Two measures, each against a redis-server this script starts (127.0.0.1, no persistence):

* **Shared lanes.** 1, 2 and 4 worker processes share one account of 5 and of 50 lanes
  on the emulator (its own process, 20 ms per call), each running a batch through a
  pool with a RedisBackend for the same duration. Reported: calls/s overall, against
  the ideal ``lanes / latency``, the server's peak in flight and lane errors (1010),
  and the EVALSHA calls per API call. Beside it, the alternative without Redis: the
  same processes with in-process backends and the lanes split statically
  (``max_lanes = lanes // processes``).
* **Overhead per call.** One process, no HTTP: a pool runs no-op items one at a time
  (1 lane) and on 5 lanes, with the in-process backend and with Redis. The difference
  per item is what the shared backend adds; the round trips per item are counted by
  Redis itself (``INFO commandstats``), with its own time per script.

    python benchmarks/bench_redis.py            # ~1 min, writes benchmarks/results/redis.json
    python benchmarks/bench_redis.py --quick    # ~20 s, writes benchmarks/results/tmp/redis.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
LATENCY = 0.02
LANES = (5, 50)
PROCESSES = (1, 2, 4)


# -- a redis-server of our own -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench_redis needs redis-server (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log: IO[bytes] = (directory / "redis.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while True:
            try:
                self.command("PING")
                break
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.05)

    def command(self, *args: Any) -> Any:
        import redis  # noqa: PLC0415  # only this benchmark needs it

        with redis.Redis(port=self.port, socket_timeout=5) as client:
            return client.execute_command(*args)

    def script_stats(self) -> tuple[int, float]:
        """EVALSHA calls since the last reset, and the server's microseconds per call."""
        stats = self.command("INFO", "commandstats")
        evalsha = stats.get("cmdstat_evalsha", {})
        return int(evalsha.get("calls", 0)), float(evalsha.get("usec_per_call", 0.0))

    def version(self) -> str:
        return str(self.command("INFO", "server")["redis_version"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


# -- the emulator, in its own process ------------------------------------------------------------


class EmulatorProcess:
    def __init__(self, lanes: int) -> None:
        config = {"lanes": lanes, "credits": 10**9, "latency": LATENCY, "log_limit": 10}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._emulator_process", json.dumps(config)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        found: dict[str, str] = {}
        while len(found) < 2:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the emulator process ended early")
            name, _, value = line.strip().partition("=")
            found[name] = value
        self.base_url = found["SEARCHCANS_BASE_URL"]
        self.key = found["SEARCHCANS_API_KEY"]

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        for line in out.splitlines():
            if line.startswith("STATS="):
                stats: dict[str, Any] = json.loads(line[len("STATS=") :])
                return stats
        raise RuntimeError("the emulator process gave no stats")


# -- one worker process ----------------------------------------------------------------------------


async def work(config: dict[str, Any]) -> dict[str, Any]:
    from searchcans_async import SearchCans  # noqa: PLC0415  # worker process: before its timer
    from searchcans_async.redis import RedisBackend  # noqa: PLC0415  # before any timer starts

    backend = None
    if config["redis"]:
        backend = RedisBackend.from_url(
            config["redis"], account=config["account"], request_timeout=5.0, lease=15.0
        )
    async with (
        SearchCans(config["key"], base_url=config["base_url"], timeout=5.0) as client,
        client.lanes(max_lanes=config["max_lanes"], backend=backend) as pool,
    ):
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.readline)
        started = time.monotonic()
        asyncio.get_running_loop().call_later(config["duration"], pool.stop)
        report = await pool.run_batch(client.search, (f"q{i}" for i in itertools.count()))
        ended = time.monotonic()
    return {
        "calls": report.succeeded,
        "failed": len(report.failed),
        "started": started,
        "ended": ended,
    }


def worker_main(config: dict[str, Any]) -> None:
    result = asyncio.run(work(config))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_workers(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    workers = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--worker", json.dumps(config)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "READY":
                raise RuntimeError("a worker did not start")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=120)
            line = next(line for line in out.splitlines() if line.startswith("RESULT "))
            results.append(json.loads(line[len("RESULT ") :]))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.communicate(timeout=10)


def shared_cell(
    server: RedisServer, lanes: int, processes: int, duration: float, *, shared: bool
) -> dict[str, Any]:
    emulator = EmulatorProcess(lanes)
    try:
        account = f"bench-{lanes}-{processes}-{os.getpid()}-{time.monotonic_ns()}"
        split = max(1, lanes // processes)
        config = {
            "redis": server.url if shared else None,
            "account": account,
            "base_url": emulator.base_url,
            "key": emulator.key,
            "max_lanes": None if shared else split,
            "duration": duration,
        }
        server.command("CONFIG", "RESETSTAT")
        results = run_workers([config] * processes)
        scripts, usec = server.script_stats()
    finally:
        stats = emulator.stop()
    calls = sum(result["calls"] for result in results)
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    ideal = lanes / LATENCY
    cell: dict[str, Any] = {
        "backend": "redis" if shared else "local, lanes split",
        "processes": processes,
        "lanes": lanes,
        "lanes_used": lanes if shared else split * processes,
        "calls": calls,
        "failed": sum(result["failed"] for result in results),
        "seconds": round(seconds, 3),
        "calls_per_s": round(calls / seconds, 1),
        "ideal_calls_per_s": round(ideal, 1),
        "utilization": round(calls / seconds / ideal, 3),
        "per_process": [result["calls"] for result in results],
        "server_peak_in_flight": stats["peak_in_flight"],
        "server_lane_errors": int(stats["refusals"].get("1010", 0)),
    }
    if shared:
        cell["evalsha_per_call"] = round(scripts / max(1, calls), 3)
        cell["redis_usec_per_script"] = usec
    return cell


# -- overhead per call, one process, no HTTP ------------------------------------------------


async def overhead(server: RedisServer, items: int) -> dict[str, Any]:
    from searchcans_async import Account, LanePool  # noqa: PLC0415  # before any timer starts
    from searchcans_async.redis import RedisBackend  # noqa: PLC0415  # before any timer starts

    async def source() -> Account:
        return Account(remain=10**9, concurrent=5, current=0)

    async def nothing(item: int) -> int:
        return item

    async def per_item(lanes: int, shared: bool) -> tuple[float, int]:
        backend = None
        if shared:
            backend = RedisBackend.from_url(
                server.url, account=f"overhead-{lanes}-{time.monotonic_ns()}", lease=15.0,
                request_timeout=5.0,
            )  # fmt: skip
        pool = LanePool(source, max_lanes=lanes, backend=backend)
        async with pool:
            await pool.run_batch(nothing, range(200))  # warm up: connections, scripts
            server.command("CONFIG", "RESETSTAT")
            started = time.perf_counter()
            await pool.run_batch(nothing, range(items))
            elapsed = time.perf_counter() - started
        scripts, _ = server.script_stats()
        return elapsed / items, scripts

    rows = []
    for lanes in (1, 5):
        local, _ = await per_item(lanes, False)
        shared, scripts = await per_item(lanes, True)
        _, usec = server.script_stats()
        rows.append(
            {
                "lanes": lanes,
                "items": items,
                "local_us_per_item": round(local * 1e6, 1),
                "redis_us_per_item": round(shared * 1e6, 1),
                "overhead_ms_per_item": round((shared - local) * 1e3, 3),
                "round_trips_per_item": round(scripts / items, 3),
                "redis_usec_per_script": usec,
            }
        )
    return {"rows": rows, "ping_rtt_us": round(await ping_rtt(server) * 1e6, 1)}


async def ping_rtt(server: RedisServer) -> float:
    import redis.asyncio as aioredis  # noqa: PLC0415  # only this probe needs it, untimed

    client = aioredis.Redis.from_url(server.url)
    try:
        await client.ping()
        samples = []
        for _ in range(500):
            started = time.perf_counter()
            await client.ping()
            samples.append(time.perf_counter() - started)
    finally:
        await client.aclose()
    return statistics.median(samples)


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cells, to check the script")
    parser.add_argument("--output", type=Path, help="where to write the JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    duration = 1.0 if args.quick else 4.0
    items = 500 if args.quick else 5000
    output = args.output or (
        RESULTS / "tmp" / "redis.json" if args.quick else RESULTS / "redis.json"
    )
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        try:
            cost = asyncio.run(overhead(server, items))
            cells = []
            for lanes in LANES:
                for processes in PROCESSES:
                    for shared in (True, False):
                        cell = shared_cell(server, lanes, processes, duration, shared=shared)
                        cells.append(cell)
                        print(json.dumps(cell), flush=True)
            version = server.version()
        finally:
            server.stop()
    document = {
        "benchmark": "RedisBackend: calls/s of processes sharing one account; overhead per call",
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "redis_server": version,
        },
        "emulator_latency_s": LATENCY,
        "seconds_per_cell": duration,
        "shared_lanes": cells,
        "overhead": cost,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(cost, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
