"""The emulator as a separate process, configured by one JSON argument (benchmarks only).

``python -m benchmarks._emulator_process '{"lanes": 32, ...}' [CPU]`` prints the base URL
and key like ``python -m searchcans_async.testing`` does, serves until SIGINT, then prints
``STATS=<json>``: the server's own records. Unlike the emulator's command line it takes
fault parameters (a short ``Retry-After``) and a bounded log, which a soak needs.

Config keys: ``credits``, ``lanes``, ``seed``, ``latency`` (seconds, or
``["lognormal", median, sigma]`` / ``["uniform", low, high]``), ``faults`` (a list of
``[kind, rate, {parameters}]``) and ``log_limit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

import attrs

from searchcans_async.testing import Emulator, Fault, Faults, Latency


def latency_from(spec: Any) -> float | Latency:
    if isinstance(spec, int | float):
        return float(spec)
    kind, *params = spec
    factory = getattr(Latency, kind)
    latency: Latency = factory(*params)
    return latency


def faults_from(spec: list[list[Any]]) -> Faults | None:
    if not spec:
        return None
    rates: dict[Fault, float] = {}
    for kind, rate, *parameters in spec:
        fault = getattr(Fault, kind)(**(parameters[0] if parameters else {}))
        rates[fault] = rate
    return Faults(rates=rates)


def emulator_from(config: dict[str, Any]) -> Emulator:
    return Emulator(
        credits=config.get("credits", 10**9),
        lanes=config.get("lanes", 64),
        latency=latency_from(config.get("latency", 0.0)),
        faults=faults_from(config.get("faults", [])),
        seed=config.get("seed", 0),
        log_limit=config.get("log_limit", 1000),
    )


def stats_document(emulator: Emulator) -> dict[str, Any]:
    stats = attrs.asdict(emulator.stats())
    document = {
        name: {str(key): count for key, count in value.items()}
        if isinstance(value, Mapping)
        else value
        for name, value in stats.items()
    }
    charges = emulator.charges_by_subject()
    document["subjects_charged"] = len(charges)
    document["subjects_charged_more_than_once"] = sum(count > 1 for count in charges.values())
    return document


async def serve(config: dict[str, Any]) -> None:
    emulator = emulator_from(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        sys.stdout.write(
            f"SEARCHCANS_BASE_URL={emulator.base_url}\nSEARCHCANS_API_KEY={emulator.api_key}\n"
        )
        sys.stdout.flush()
        await stop.wait()
    sys.stdout.write("STATS=" + json.dumps(stats_document(emulator)) + "\n")
    sys.stdout.flush()


def main() -> None:
    config = json.loads(sys.argv[1])
    if len(sys.argv) > 2 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(sys.argv[2])})
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
