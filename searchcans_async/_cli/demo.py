"""``searchcans-async demo`` and ``searchcans-async emulator``: the offline SearchCans.

The demo is a real batch, not an animation: the embedded emulator serves on 127.0.0.1,
and the same code as ``searchcans-async batch`` runs its input through the real client
and ``LanePool``. The emulator's own records then prove the result.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import click
from rich.console import Console
from rich.text import Text

from .._client import Costs
from .._lanes import SearchCans
from ..testing import Emulator, Fault, Faults, Latency
from .batch import PROGRESS_CHOICES
from .errors import CliError, ExitCode
from .output import Scrub, scrubbed
from .progress import EventCounter
from .run import BatchRun, BatchSpec, Interrupts, run_batch
from .summary import print_report

__all__ = ["DemoOptions", "demo", "run_demo"]

_TOPICS: Final = (
    "asyncio", "aiohttp", "python", "rust", "postgres", "redis", "kubernetes", "llm agents",
    "web crawler", "vector search", "rate limits", "http/2", "tls", "json lines", "sqlite",
    "pandas", "numpy", "fastapi", "django", "typescript",
)  # fmt: skip
_ASPECTS: Final = (
    "tutorial", "best practices", "vs alternatives", "benchmarks", "pricing", "examples",
    "error handling", "release notes", "for beginners", "in production", "memory leak",
    "timeout", "retry", "semaphore", "connection pool", "testing", "deployment", "security",
    "migration", "internals",
)  # fmt: skip
_FAULT_RATES: Final = {
    Fault.lane_busy(): 0.01,
    Fault.rate_limited(retry_after=0.05): 0.004,
    Fault.server_error(503): 0.004,
    Fault.api_timeout(): 0.004,
}


@attrs.frozen(kw_only=True)
class DemoOptions:
    """The demo's knobs (its command-line options)."""

    items: int = 2000
    lanes: int = 5
    latency: float = 0.008
    seed: int = 7
    out: Path | None = None
    progress: Literal["auto", "live", "plain", "off"] = "auto"


@attrs.frozen
class _Plan:
    """The demo's input and the account sized so that the budget runs out at ~60 %."""

    lines: list[str]
    queries: list[str]
    no_results: frozenset[str]
    credits: int
    floor: int
    top_up: int


def _plan(options: DemoOptions) -> _Plan:
    rng = random.Random(options.seed)
    pairs = [(topic, aspect) for topic in _TOPICS for aspect in _ASPECTS]
    rng.shuffle(pairs)
    queries = [f"{topic} {aspect}" for topic, aspect in pairs]
    rounds = 1
    while len(queries) < options.items:  # more than 400 items: number the later rounds
        rounds += 1
        queries.extend(f"{topic} {aspect} {rounds}" for topic, aspect in pairs)
    queries = queries[: options.items]
    no_results = frozenset(queries[17::50])
    costs = Costs()
    lines: list[str] = []
    cost = 0
    for number, query in enumerate(queries):
        if number % 25 == 3:  # some items carry their own options
            item: Any = {"query": query, "engine": "bing"}
        elif number % 40 == 9:
            item = {"query": query, "pages": 2}
        else:
            item = query
        lines.append(json.dumps(item))
        if query not in no_results:
            cost += costs.search(item["pages"] if isinstance(item, dict) and "pages" in item else 1)
    floor = max(10, options.items // 20)
    credits = floor + math.ceil(cost * 0.6)
    top_up = math.ceil(cost * 0.5 / 100) * 100
    return _Plan(lines, queries, no_results, credits, floor, top_up)


def _console() -> Console:
    return Console(file=scrubbed(sys.stdout, Scrub(None)), highlight=False, soft_wrap=True)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; return its exit code (0 when the final check holds)."""
    console = _console()
    try:
        return asyncio.run(_demo(options, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise CliError("demo interrupted", ExitCode.CANCELLED) from None


def _paths(options: DemoOptions, workdir: Path) -> tuple[Path, Path]:
    """The demo's input (in ``workdir``, removed at the end) and its results file.

    The results go to ``--out`` when given (kept), else beside the input (removed too).
    """
    if options.out is None:
        return workdir / "queries.jsonl", workdir / "results.jsonl"
    if options.out.exists() and options.out.stat().st_size:
        raise CliError(f"{options.out} already exists; the demo writes a new results file")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    return workdir / "queries.jsonl", options.out


def _say(console: Console, text: str, style: str = "") -> None:
    console.print(Text(text, style=style))


async def _demo(options: DemoOptions, console: Console) -> int:
    plan = _plan(options)
    with tempfile.TemporaryDirectory(prefix="searchcans-demo-") as workdir:
        input_path, out = _paths(options, Path(workdir))
        input_path.write_text("\n".join(plan.lines) + "\n", encoding="utf-8")
        return await _run(options, plan, console, input_path, out)


async def _run(
    options: DemoOptions, plan: _Plan, console: Console, input_path: Path, out: Path
) -> int:
    emulator = Emulator(
        credits=plan.credits,
        lanes=options.lanes,
        latency=Latency.lognormal(options.latency, 0.6),
        faults=Faults(rates=_FAULT_RATES),
        seed=options.seed,
        no_results=plan.no_results,
    )
    events = EventCounter()
    interrupts = Interrupts(lambda message: _say(console, message, "yellow"))
    async with emulator:
        client = SearchCans(emulator.api_key, base_url=emulator.base_url, on_event=events)
        async with client:
            with interrupts.installed():
                return await _story(options, plan, emulator, client, console, events, interrupts,
                                    input_path, out)  # fmt: skip


async def _story(  # noqa: PLR0917  # the demo's cast, introduced once
    options: DemoOptions,
    plan: _Plan,
    emulator: Emulator,
    client: SearchCans,
    console: Console,
    events: EventCounter,
    interrupts: Interrupts,
    input_path: Path,
    out: Path,
) -> int:
    name, out_name = input_path.name, out.name
    console.rule("[bold]searchcans-async demo")
    _say(console, "Everything here runs offline: a SearchCans emulator serves in this process.")
    _say(
        console,
        f"  emulator  {emulator.base_url} · {options.lanes} Parallel Lanes · "
        f"{plan.credits} credits · answers in ~{options.latency * 1000:.0f} ms (log-normal)\n"
        "            seeded faults: 1010 lanes busy, 429 rate limited, 503, 1001 server timeout\n"
        f"  input     {input_path} ({options.items} queries; "
        f"{len(plan.no_results)} of them find nothing)\n"
        f"  output    {out}"
        + ("" if options.out is not None else "  (removed at the end: --out FILE keeps it)"),
    )
    spec = BatchSpec(
        kind="search", input=input_path, out=out, floor=plan.floor, progress=options.progress,
        title="search",
    )  # fmt: skip
    scrub = Scrub(emulator.api_key)

    async def step(spec: BatchSpec) -> BatchRun:
        run = await run_batch(
            client, spec, console=console, events=events, interrupts=interrupts, scrub=scrub,
            stdin=sys.stdin.buffer, stdout=sys.stdout,
        )  # fmt: skip
        print_report(console, run)
        _say(console, f"exit code {int(run.exit_code)} ({run.exit_code.name.lower()})", "bold")
        return run

    console.rule(f"1. Run it: the budget (all but a floor of {plan.floor} credits) is too small")
    _say(console, f"$ searchcans-async batch {name} --out {out_name} --floor {plan.floor}", "cyan")
    first = await step(spec)
    if first.exit_code is ExitCode.CANCELLED:
        return ExitCode.CANCELLED
    console.rule(f"2. Top up: {plan.top_up} more credits")
    emulator.add_credits(plan.top_up)
    _say(console, f"emulator.add_credits({plan.top_up}): the account now has "
         f"{emulator.stats().remain} credits")  # fmt: skip
    console.rule("3. Resume: what already succeeded is skipped, so nothing is paid twice")
    _say(
        console,
        f"$ searchcans-async batch {name} --out {out_name} --floor {plan.floor} --resume",
        "cyan",
    )
    second = await step(attrs.evolve(spec, resume=True))
    if second.exit_code is ExitCode.CANCELLED:
        return ExitCode.CANCELLED
    console.rule("Check")
    return _check(console, plan, emulator, out)


def _check(console: Console, plan: _Plan, emulator: Emulator, out: Path) -> int:
    """Prove from the emulator's records and the output that each item ran exactly once."""
    charges = emulator.charges_by_subject()
    expected = set(plan.queries) - plan.no_results
    twice = sorted(subject for subject, count in charges.items() if count > 1)
    missing = sorted(expected - set(charges))
    unexpected = sorted(set(charges) - expected)
    succeeded: Counter[int] = Counter()
    with out.open(encoding="utf-8") as stream:
        for raw in stream:
            record = json.loads(raw)
            if record["ok"]:
                succeeded[record["line"]] += 1
    lines_ok = set(succeeded) == set(range(1, len(plan.lines) + 1)) and all(
        count == 1 for count in succeeded.values()
    )
    if twice or missing or unexpected or not lines_ok:
        _say(
            console,
            f"check FAILED: charged twice {twice[:5]}, never charged {missing[:5]}, "
            f"unexpected {unexpected[:5]}, output lines complete: {lines_ok}",
            "bold red",
        )
        return ExitCode.ERROR
    _say(
        console,
        f"✔ The emulator's own records: {len(expected)} queries charged exactly once, "
        f"none twice, none missing ({len(plan.no_results)} found nothing and cost nothing).\n"
        f"✔ {out.name} holds each of the {len(plan.lines)} input lines exactly once as "
        "succeeded.",
        "bold green",
    )
    return ExitCode.OK


@click.command()
@click.option(
    "--items",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Queries in the batch.",
)
@click.option(
    "--lanes",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="The emulated account's Parallel Lanes.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0.0001),
    default=0.008,
    show_default=True,
    help="Median seconds per answer (log-normal).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed for latency and faults.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the results here (default: a new temporary directory).",
)
@click.option(
    "--progress",
    type=click.Choice(PROGRESS_CHOICES),
    default="auto",
    show_default=True,
    help="As for batch: live on a terminal, plain lines otherwise.",
)
def demo(
    *,
    items: int,
    lanes: int,
    latency: float,
    seed: int,
    out: Path | None,
    progress: Literal["auto", "live", "plain", "off"],
) -> int:
    """Run a batch against a built-in emulator: no key, no network, about 10 seconds.

    It shows the live progress, a clean stop when the credit budget runs out, a top-up,
    and a resume that finishes the job without paying for anything twice.
    """
    options = DemoOptions(
        items=items, lanes=lanes, latency=latency, seed=seed, out=out, progress=progress
    )
    return run_demo(options)
