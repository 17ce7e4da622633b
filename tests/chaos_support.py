"""Seeded chaos: batches through the real client and LanePool against the emulator, checked.

A seed picks everything about a run (:func:`make_scenario`): the account (credits, bonus
credits, lanes, a key with its own quota), the pool's options (budget, floor, lane cap,
rechecks), the work (searches and Reader calls of various costs, declared honestly or
not), the retry policy (with or without ``retry_possibly_charged``), how the batch is
consumed, a fault script drawn from the whole fault matrix, and live changes made by an
item as it starts (another consumer draining credits, the key deactivated, the plan's
lanes changed, the batch stopped). :func:`run_scenario` runs it over 127.0.0.1 against a
fresh emulator and returns what both sides saw; :func:`check_run` asserts the contracts
from the emulator's own records and the BatchReport.

The fault script is drawn by the seed itself (never by the emulator's per-installation
generator), so a seed replays the same faults on the same request ordinals; with several
lanes the order in which concurrent requests arrive may still differ between runs.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import warnings
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lanes_support import buckets

from searchcans_async import (
    CreditsExhausted,
    DeadlineTooShortError,
    ReaderPage,
    ResponseFormatError,
    RetryPolicy,
    SearchCans,
    SearchCansError,
    SearchResult,
    StopReason,
    TransportError,
)
from searchcans_async._clock import VirtualClock
from searchcans_async.events import CallFinished, Stopped
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable

    from searchcans_async import BatchReport, LanePool, Outcome, PoolStatistics
    from searchcans_async.testing import EmulatorStats, RequestRecord

#: Seeds every CI run executes (``--chaos-seeds N`` runs seeds 0..N-1 instead).
DEFAULT_SEEDS = 1_000

#: Longest a run may take before it counts as hung (runs take well under a second).
GUARD_SECONDS = 60
#: The client refuses answers larger than this; huge bodies are three times larger.
MAX_BODY_BYTES = 16 * 1024
HUGE_BODY_BYTES = 48 * 1024
#: The retry policy's total deadline (on the virtual clock, so it only bounds each
#: attempt's real time): the default, or short enough to catch a dribbling body. A retry
#: starts only if the server's own wait plus 5 s still fits, so the short one allows none.
LONG_DEADLINE = 120.0
# Covers an account check (5 s: no server wait plus the margin), not one whole search or
# Reader attempt (15 s): every billable call must be refused before it is sent.
SHORT_DEADLINE = 10.0

#: Answers a client may retry: never charged (API.md's table).
RETRYABLE_CODES = frozenset(
    {1010, 429, 1001, -1001, 1002, 1003, 1004, 1005, 1006, 1009, 443, 10054}
)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Faults after which the client cannot know whether the server charged.
AMBIGUOUS_FAULTS = frozenset(
    {"reset_before", "reset_after_charge", "truncated_json", "huge_body", "slow_body"}
)
#: What a possibly charged failure looks like from the client's side.
AMBIGUOUS_OUTCOMES = frozenset({"TransportError", "ResponseFormatError"})
NO_RESULTS_CODES = frozenset({9999, -9999})
BILLABLE = frozenset({"search", "url"})

#: Fault kinds drawn for a scripted ordinal, with their weights (bursts of 1010 and the
#: dribbling body are placed separately).
FAULT_WEIGHTS: dict[str, int] = {
    "lane_busy": 2,
    "rate_limited": 4,
    "server_error": 4,
    "api_timeout": 2,
    "throttled": 3,
    "network_code": 1,
    "no_results": 2,
    "bad_request": 1,
    "unknown_code": 1,
    "reset_before": 2,
    "truncated_json": 3,
    "wrong_types": 2,
    "huge_body": 2,
    "reset_after_charge": 3,
}
CHANGE_KINDS = ("drain", "drain_all", "deactivate", "lanes", "stop", "stop_cancel")


@dataclass(frozen=True)
class Item:
    """One unit of work: a search (``size`` pages) or a Reader call (``size`` = proxy tier)."""

    index: int
    kind: str
    subject: str
    size: int

    @property
    def cost(self) -> int:
        """What the emulator charges for it (its default prices)."""
        if self.kind == "search":
            return self.size
        return 2 + (0, 2, 5, 10)[self.size]


@dataclass(frozen=True)
class Change:
    """A live change made when item ``at`` starts."""

    at: int
    kind: str
    amount: int = 0


@dataclass(frozen=True)
class Scenario:
    """Everything a seed decides about one run."""

    seed: int
    lanes: int
    credits: int
    permanent_credits: int
    key_quota: int | None
    budget: int | None
    floor: int
    max_lanes: int | None
    items: tuple[Item, ...]
    declared: str  # how items declare their cost: honest, understated, overstated
    script: dict[int, Fault]
    fault_endpoints: tuple[str, ...]
    changes: tuple[Change, ...]
    attempts: int
    opt_in: bool
    deadline: float
    recheck_every: int | None
    recheck_interval: float | None
    settle_grace: float | None
    mode: str  # run_batch, map, map_break, twin (two run_batch at once in one pool)
    source: str  # how the items come: list, generator, async (an async generator)
    break_after: int
    fail_fast: bool
    latency: float
    # An async input that stalls (waits forever) after this many items of each batch's
    # input, after asking for a stop (``stall_stop``: "stop", or "stop_cancel" with
    # cancel=True); None: it never stalls.
    stall_at: int | None = None
    stall_stop: str = "stop"
    # How item errors reach the pool: as raised, or relayed by a user-owned generator or
    # dispatcher task (each raises and catches the error, so its own suspended frame is in
    # the error's traceback: the pool must not finalize it).
    relay: str = "none"
    # How the account's consumption counters move (WireOptions.counters): a frozen counter
    # must never free a possibly charged credit.
    counters: str = "split"
    # The server-side wait each call asks for (``server_timeout``); None: the default 10 s.
    server_timeout: float | None = None

    @property
    def refuses_every_call(self) -> bool:
        """The deadline cannot cover one whole attempt (server wait + 5 s): nothing is sent."""
        return self.deadline < (self.server_timeout or 10.0) + 5.0

    @property
    def total_cost(self) -> int:
        return sum(item.cost for item in self.items)

    @property
    def max_cost(self) -> int:
        return max(item.cost for item in self.items)

    def inputs(self) -> tuple[tuple[Item, ...], ...]:
        """The items of each batch: one batch, or two sharing the pool (even and odd items)."""
        if self.mode == "twin":
            return (self.items[0::2], self.items[1::2])
        return (self.items,)

    def change_kinds(self) -> set[str]:
        kinds = {change.kind for change in self.changes}
        if self.stall_at is not None:
            kinds.add(self.stall_stop)
        return kinds

    def declared_cost(self, item: Item) -> int:
        if self.declared == "understated":
            return 1
        if self.declared == "overstated":
            return item.cost + 2
        return item.cost

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts,
            backoff_initial=0.002,
            backoff_max=0.02,
            lane_busy_delay=(0.001, 0.01),
            retry_after_max=0.03,
            deadline=self.deadline,
            retry_possibly_charged=self.opt_in,
        )

    def describe(self) -> str:
        faults = {ordinal: repr(fault) for ordinal, fault in sorted(self.script.items())}
        return (
            f"seed={self.seed} lanes={self.lanes} max_lanes={self.max_lanes} "
            f"credits={self.credits}+{self.permanent_credits} quota={self.key_quota} "
            f"budget={self.budget} floor={self.floor} items={len(self.items)} "
            f"(cost {self.total_cost}, declared {self.declared}) attempts={self.attempts} "
            f"opt_in={self.opt_in} deadline={self.deadline} recheck_every={self.recheck_every} "
            f"interval={self.recheck_interval} grace={self.settle_grace} mode={self.mode}"
            f"/{self.break_after} source={self.source} fail_fast={self.fail_fast} "
            f"latency={self.latency} stall_at={self.stall_at}/{self.stall_stop} "
            f"counters={self.counters} server_timeout={self.server_timeout} "
            f"relay={self.relay} "
            f"changes={list(self.changes)} endpoints={self.fault_endpoints} faults={faults}"
        )


def _draw_fault(rng: random.Random) -> Fault:
    kind = rng.choices(list(FAULT_WEIGHTS), weights=list(FAULT_WEIGHTS.values()))[0]
    if kind == "rate_limited":
        return rng.choice(
            [
                Fault.rate_limited(1),  # seconds
                Fault.rate_limited(0.05),  # fractional seconds
                Fault.rate_limited(1, http_date=True),
                Fault.rate_limited("soon"),  # garbage
                Fault.rate_limited("Mon, 32 Foo 2024 99:99:99 GMT"),  # a broken date
                Fault.rate_limited(None),  # absent
            ]
        )
    if kind == "server_error":
        return Fault.server_error(rng.choice([500, 502, 503, 504]), html=rng.random() < 0.5)
    if kind == "api_timeout":
        return Fault.api_timeout(rng.choice([1001, -1001]))
    if kind == "throttled":
        return Fault.throttled(rng.choice([1002, 1003, 1004, 1005, 1006, 1009]))
    if kind == "network_code":
        return Fault.network_code(rng.choice([443, 10054]))
    if kind == "no_results":
        return Fault.no_results(rng.choice([9999, -9999]))
    if kind == "unknown_code":
        return Fault.unknown_code(rng.choice([7777, 1, -3, 88888]))
    if kind == "truncated_json":
        return Fault.truncated_json(
            keep=round(rng.uniform(0.05, 0.95), 2), cut_connection=rng.random() < 0.5
        )
    if kind == "huge_body":
        return Fault.huge_body(size=HUGE_BODY_BYTES)
    return Fault.from_name(kind)


def _draw_items(rng: random.Random, seed: int) -> tuple[Item, ...]:
    items = []
    for index in range(rng.randint(5, 30)):
        if rng.random() < 0.7:
            pages = rng.choice([1, 1, 1, 2, 3])
            items.append(Item(index, "search", f"chaos {seed} item {index}", pages))
        else:
            proxy = rng.choice([0, 0, 1, 2, 3])
            items.append(Item(index, "read", f"https://chaos.invalid/{seed}/{index}", proxy))
    return tuple(items)


def _draw_script(rng: random.Random, n_items: int, *, slow: bool) -> dict[int, Fault]:
    script: dict[int, Fault] = {}
    ordinals = 2 * n_items + 10
    density = rng.choice([0.0, 0.05, 0.1, 0.2, 0.35, 0.5])
    for ordinal in range(1, ordinals + 1):
        if rng.random() < density:
            script[ordinal] = _draw_fault(rng)
    if rng.random() < 0.3:  # a burst of "lanes busy"
        start = rng.randint(1, ordinals)
        for ordinal in range(start, start + rng.randint(2, 6)):
            script[ordinal] = Fault.lane_busy()
    if slow:  # a slow body, for the call a short deadline must refuse before sending
        script[rng.randint(1, n_items)] = Fault.slow_body(chunk_size=16, chunk_delay=0.02)
    return script


def _draw_changes(rng: random.Random, items: tuple[Item, ...]) -> tuple[Change, ...]:
    n = len(items)
    total = sum(item.cost for item in items)
    changes = []
    if rng.random() < 0.2:
        changes.append(Change(rng.randrange(n), "drain", rng.randint(1, max(1, total))))
    if rng.random() < 0.08:
        changes.append(Change(rng.randrange(n), "drain_all"))
    if rng.random() < 0.08:
        changes.append(Change(rng.randrange(n), "deactivate"))
    if rng.random() < 0.14:
        lanes = 0 if rng.random() < 0.1 else rng.randint(1, 5)
        changes.append(Change(rng.randrange(n), "lanes", lanes))
    if rng.random() < 0.04:
        changes.append(Change(rng.randrange(n), "stop"))
    if rng.random() < 0.04:
        changes.append(Change(rng.randrange(n), "stop_cancel"))
    return tuple(changes)


def make_scenario(seed: int) -> Scenario:
    """The run a seed stands for (the same seed always gives the same scenario)."""
    rng = random.Random(seed)
    lanes = rng.randint(1, 4)
    items = _draw_items(rng, seed)
    total = sum(item.cost for item in items)
    slow = rng.random() < 0.07
    with_account_faults = rng.random() < 0.25
    script = _draw_script(rng, len(items), slow=slow)
    if with_account_faults:
        script.pop(1, None)  # the pool's opening read must succeed for there to be a batch
    mode = rng.choices(["run_batch", "map", "map_break", "twin"], weights=[40, 35, 15, 10])[0]
    scenario = Scenario(
        seed=seed,
        lanes=lanes,
        # About half the runs are limited by credits, a budget or a key's quota.
        credits=10_000 if rng.random() < 0.75 else rng.randint(0, total + 5),
        permanent_credits=rng.choice([0, 0, 0, rng.randint(1, 10)]),
        key_quota=rng.randint(0, total) if rng.random() < 0.1 else None,
        budget=rng.randint(0, total) if rng.random() < 0.25 else None,
        floor=rng.randint(1, 10) if rng.random() < 0.3 else 0,
        max_lanes=rng.randint(1, lanes) if rng.random() < 0.2 else None,
        items=items,
        declared=rng.choices(["honest", "understated", "overstated"], weights=[70, 15, 15])[0],
        script=script,
        fault_endpoints=("account", "search", "url") if with_account_faults else ("search", "url"),
        changes=_draw_changes(rng, items),
        attempts=rng.randint(1, 5),
        opt_in=rng.random() < 0.3,
        deadline=SHORT_DEADLINE if slow else LONG_DEADLINE,
        recheck_every=rng.choice([None, 1, 2, 3, 5, 10, 100]),
        recheck_interval=rng.choice([None, None, None, 0.01]),
        # A doubt may be settled at once only when no client-side timeout can leave the
        # server still working on a call the client gave up on.
        settle_grace=None if slow else rng.choice([0.0, None]),
        mode=mode,
        break_after=rng.randint(0, len(items)),
        source=rng.choices(["list", "generator", "async"], weights=[50, 25, 25])[0],
        fail_fast=rng.random() < 0.1,
        latency=0.0 if slow or rng.random() < 0.8 else 0.001,
    )
    control = random.Random(f"control {seed}")
    return replace(scenario, **_draw_control(control, len(items), scenario.source == "async"))


def _draw_control(rng: random.Random, n_items: int, async_source: bool) -> dict[str, Any]:
    """Stalling async inputs (then a stop) and errors relayed by user-owned code.

    Drawn from their own generator, so the rest of a seed's scenario is unchanged.
    """
    control: dict[str, Any] = {}
    if async_source and rng.random() < 0.25:
        control["stall_at"] = rng.randint(0, n_items)
        control["stall_stop"] = rng.choice(["stop", "stop", "stop_cancel"])
    control["relay"] = rng.choices(["none", "generator", "dispatcher"], weights=[80, 10, 10])[0]
    control["counters"] = rng.choices(["split", "combined", "frozen"], weights=[60, 15, 25])[0]
    control["server_timeout"] = rng.choices([None, 20.0, 130.0], weights=[80, 10, 10])[0]
    return control


@dataclass
class BatchRun:
    """One batch of a run: its input, its report and the outcomes handed to the consumer."""

    items: tuple[Item, ...]
    report: BatchReport[Item] | None = None
    delivered: list[Outcome[Item, Any]] = field(default_factory=list)
    stalled: bool = False  # its input reached the stall


@dataclass
class RunResult:
    """What the client, the pool and the emulator saw in one run."""

    scenario: Scenario
    batches: list[BatchRun] = field(default_factory=list)
    budget_at_open: int = 0
    pool_after: PoolStatistics | None = None
    pool_stop: StopReason | None = None
    events: list[Any] = field(default_factory=list)
    attempts: dict[str, list[CallFinished]] = field(default_factory=lambda: defaultdict(list))
    stats: EmulatorStats | None = None
    log: tuple[RequestRecord, ...] = ()
    charges: Counter[str] = field(default_factory=Counter)
    initial_remain: int = 0
    lanes_seen: set[int] = field(default_factory=set)
    applied: list[Change] = field(default_factory=list)
    relay_alive: bool | None = None  # the relaying generator or task, still alive after the run
    leftover_tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)

    @property
    def report(self) -> BatchReport[Item] | None:
        """The report of a run with a single batch."""
        return self.batches[0].report if len(self.batches) == 1 else None


_subject: ContextVar[str | None] = ContextVar("chaos_subject", default=None)


def _apply(change: Change, emu: Emulator, result: RunResult, pool: LanePool, batch: Any) -> None:
    if change.kind == "drain":
        emu.drain(change.amount)
    elif change.kind == "drain_all":
        emu.drain(emu.stats().remain)
    elif change.kind == "deactivate":
        emu.set_key_active(emu.api_key, active=False)
    elif change.kind == "lanes":
        emu.set_lanes(change.amount)
        result.lanes_seen.add(change.amount)
    elif change.kind == "stop":
        (batch or pool).stop()
    else:
        pool.stop(cancel=True)
    result.applied.append(change)


async def run_scenario(sc: Scenario) -> RunResult:
    """Run ``sc`` against a fresh emulator; everything is closed when this returns."""
    result = RunResult(sc, lanes_seen={sc.lanes})
    result.batches = [BatchRun(items) for items in sc.inputs()]
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    # "Task exception was never retrieved" and the like reach the loop's handler, not warnings.
    loop.set_exception_handler(lambda _loop, context: result.loop_errors.append(context["message"]))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with asyncio.timeout(GUARD_SECONDS):  # a run that hangs fails instead
                await _run(sc, result)
            result.leftover_tasks = asyncio.all_tasks() - {asyncio.current_task()}
    finally:
        loop.set_exception_handler(previous)
    result.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


async def _run(sc: Scenario, result: RunResult) -> None:
    spec = AccountSpec(
        credits=sc.credits,
        permanent_credits=sc.permanent_credits,
        lanes=sc.lanes,
        keys=[KeySpec(name="chaos", quota=sc.key_quota)],
    )
    result.initial_remain = sc.credits + sc.permanent_credits
    faults = Faults(script=sc.script, endpoints=sc.fault_endpoints) if sc.script else None

    def on_event(event: Any) -> None:
        result.events.append(event)
        if isinstance(event, CallFinished) and event.endpoint != "account":
            result.attempts[_subject.get() or "?"].append(event)

    changes: dict[int, list[Change]] = defaultdict(list)
    for change in sc.changes:
        changes[change.at].append(change)
    holder: list[Any] = []

    wire = WireOptions(counters=sc.counters)
    async with Emulator([spec], latency=sc.latency, faults=faults, seed=sc.seed, wire=wire) as emu:
        client = SearchCans(
            emu.api_key,
            base_url=emu.base_url,
            clock=VirtualClock(),
            retry=sc.retry_policy(),
            on_event=on_event,
            max_body_bytes=MAX_BODY_BYTES,
        )
        async with (
            client,
            client.lanes(
                budget=sc.budget,
                floor=sc.floor,
                max_lanes=sc.max_lanes,
                recheck_every=sc.recheck_every,
                recheck_interval=sc.recheck_interval,
                settle_grace=sc.settle_grace,
            ) as pool,
        ):
            result.budget_at_open = pool.statistics().budget_left

            relay = Relay(sc.relay)

            async def call(item: Item) -> SearchResult | ReaderPage:
                for change in changes.pop(item.index, ()):
                    _apply(change, emu, result, pool, holder[0] if holder else None)
                _subject.set(item.subject)
                wait = sc.server_timeout
                if item.kind == "search":
                    return await client.search(item.subject, pages=item.size, server_timeout=wait)
                return await client.read(item.subject, proxy=item.size, server_timeout=wait)  # type: ignore[arg-type]  # the chaos item's size is a valid proxy tier (0-3)

            async def work(item: Item) -> SearchResult | ReaderPage:
                try:
                    return await call(item)
                except Exception as error:  # relayed, then raised as it was
                    raise await relay.hand_back(error)  # noqa: B904  # the same error object

            relay.start()
            try:
                async with asyncio.TaskGroup() as batches:
                    for run in result.batches:
                        batches.create_task(_consume(sc, run, pool, work, holder, result))
                result.relay_alive = relay.alive()
            finally:
                await relay.stop()
            result.pool_after = pool.statistics()
            result.pool_stop = pool.stop_reason
    result.stats = emu.stats()
    result.log = emu.log
    result.charges = emu.charges_by_subject()


class Relay:
    """User-owned code that hands item errors back: a generator, or a dispatcher task.

    Each raises the error and catches it again in its own frame (so that frame, still
    suspended afterwards, is in the error's traceback), then hands it back unchanged.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._generator = self._relaying() if kind == "generator" else None
        if self._generator is not None:
            next(self._generator)
        self._queue: asyncio.Queue[tuple[Exception, asyncio.Future[Exception]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _relaying() -> Any:
        error = yield None
        while True:
            try:
                raise error
            except Exception as caught:  # caught to be handed back as it is
                error = yield caught

    async def _dispatch(self) -> None:
        while True:
            error, waiter = await self._queue.get()
            try:
                raise error
            except Exception as caught:  # handed back through the future
                if not waiter.done():  # its item may have been cancelled meanwhile
                    waiter.set_exception(caught)

    def start(self) -> None:
        if self.kind == "dispatcher":
            self._task = asyncio.get_running_loop().create_task(self._dispatch())

    async def hand_back(self, error: Exception) -> Exception:
        if self._generator is not None:
            relayed: Exception = self._generator.send(error)
            return relayed
        if self._task is not None:
            waiter: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
            await self._queue.put((error, waiter))
            try:
                await waiter
            except Exception as caught:  # the dispatcher answers with the error
                return caught
        return error

    def alive(self) -> bool | None:
        if self._generator is not None:
            return inspect.getgeneratorstate(self._generator) == inspect.GEN_SUSPENDED
        if self._task is not None:
            return not self._task.done()
        return None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._generator is not None:
            self._generator.close()


def _source(
    sc: Scenario, run: BatchRun, stop: Callable[[], None]
) -> Iterable[Item] | AsyncIterable[Item]:
    items = run.items
    if sc.source == "list":
        return items
    if sc.source == "generator":
        return (item for item in items)

    async def generate() -> AsyncIterator[Item]:
        for position, item in enumerate(items):
            if position == sc.stall_at:
                break
            await asyncio.sleep(0)
            yield item
        if sc.stall_at is None:
            return
        # Stall: ask for a stop (as a signal handler or another task would), then wait
        # for an item that never comes; the stop must cancel this wait.
        run.stalled = True
        asyncio.get_running_loop().call_soon(stop)
        await asyncio.Event().wait()

    return generate()


async def _consume(
    sc: Scenario,
    run: BatchRun,
    pool: LanePool,
    work: Callable[[Item], Awaitable[Any]],
    holder: list[Any],
    result: RunResult,
) -> None:
    def stop() -> None:
        kind = sc.stall_stop
        result.applied.append(Change(-1, kind))
        if kind == "stop" and holder:
            holder[0].stop()
        else:
            pool.stop(cancel=kind == "stop_cancel")

    source = _source(sc, run, stop)
    try:
        if sc.mode in ("run_batch", "twin"):
            run.report = await pool.run_batch(
                work,
                source,
                cost=sc.declared_cost,
                on_outcome=run.delivered.append,
                fail_fast=sc.fail_fast,
            )
            return
        batch = pool.map(work, source, cost=sc.declared_cost, fail_fast=sc.fail_fast)
        holder.append(batch)
        async with batch:
            async for outcome in batch:
                run.delivered.append(outcome)
                if sc.mode == "map_break" and len(run.delivered) >= sc.break_after:
                    break
        run.report = batch.report
    finally:
        if isinstance(source, AsyncGenerator):
            await source.aclose()  # ours to close when the batch stopped early


# -- the checks ------------------------------------------------------------------------------


def _retryable(record: RequestRecord) -> bool:
    """An answer the client may retry without any risk of paying twice."""
    return record.code in RETRYABLE_CODES or (
        record.http_status in RETRYABLE_STATUSES and record.code in (None, record.http_status)
    )


def check_run(result: RunResult) -> None:
    """Assert every contract of a finished run; the message names the seed and scenario."""
    try:
        _check(result)
    except AssertionError as error:
        raise AssertionError(f"{error}\n  scenario: {result.scenario.describe()}") from error


def _reports(result: RunResult) -> list[BatchReport[Item]]:
    reports = [run.report for run in result.batches]
    assert all(report is not None for report in reports), "a batch left no report"
    return [report for report in reports if report is not None]


def _check(result: RunResult) -> None:
    sc, stats = result.scenario, result.stats
    reports = _reports(result)
    assert stats is not None
    _check_hygiene(result)
    _check_control(result, reports)
    for run in result.batches:
        _check_buckets(sc, run)
    records = _records_by_subject(result)
    unrecorded = sum(
        _check_item(sc, run, position, records.get(item.subject, []), result)
        for run in result.batches
        for position, item in enumerate(run.items)
    )
    # The attempts without a record of their own are exactly the connections dropped on
    # arrival (whose body, hence subject, the server never read).
    anonymous = [r for r in result.log if r.endpoint in BILLABLE and r.subject is None]
    assert all(r.fault == "reset_before" for r in anonymous), anonymous
    cancelled = sum(
        isinstance(o.error, asyncio.CancelledError) for report in reports for o in report.failed
    )
    assert unrecorded <= len(anonymous) <= unrecorded + cancelled, (
        f"{unrecorded} attempts without a record, {len(anonymous)} anonymous records"
    )
    _check_credits(sc, reports, stats, result)
    _check_lanes(sc, stats, result)
    _check_stop(sc, reports, result)


def _check_control(result: RunResult, reports: list[BatchReport[Item]]) -> None:
    sc = result.scenario
    if sc.refuses_every_call:  # the deadline is too short for one whole attempt
        assert not [r for r in result.log if r.endpoint in BILLABLE], "sent past the deadline"
        for report in reports:
            errors = {type(o.error) for o in report.failed} - {asyncio.CancelledError}
            assert errors <= {DeadlineTooShortError}, f"short deadline: {report!r}"
    if sc.relay != "none":
        assert result.relay_alive, f"the user's {sc.relay} relaying errors was finalized"
    if sc.stall_at is not None:
        for run, report in zip(result.batches, reports, strict=True):
            assert report.items_read <= sc.stall_at, f"read past the stall: {report!r}"
            if run.stalled:  # the input never ended: a stop, not its end, stopped the batch
                assert report.stop_reason is not StopReason.COMPLETED, f"stalled: {report!r}"


def _check_hygiene(result: RunResult) -> None:
    assert not result.leftover_tasks, f"tasks left running: {result.leftover_tasks}"
    assert not result.warnings, f"warnings: {result.warnings}"
    assert not result.loop_errors, f"errors reported to the event loop: {result.loop_errors}"


def _check_buckets(sc: Scenario, run: BatchRun) -> None:
    report, items = run.report, run.items
    assert report is not None
    n = len(items)
    try:
        seen = buckets(report)
    except AssertionError as error:
        message = f"an item is in two buckets, or one is counted twice: {report!r}"
        raise AssertionError(message) from error
    assert set(seen) == set(range(report.items_read)), "an item read is in no bucket"
    assert report.items_read <= n, f"read {report.items_read} of {n} items"
    assert report.total == (n if sc.source == "list" else None), f"total: {report!r}"
    assert report.succeeded + len(report.failed) + len(report.not_started) == report.items_read, (
        f"buckets do not add up to the {report.items_read} items read: {report!r}"
    )
    if report.unread_from is None:
        assert report.items_read == n, "the input was not read to its end"
    else:
        assert report.unread_from == report.items_read, f"unread_from: {report!r}"
    for outcome in report.failed:
        assert outcome.item == items[outcome.index], f"failed with the wrong item: {outcome}"
    for index, item in report.not_started:
        assert item == items[index], f"not started with the wrong item: {index} {item}"
    # Every outcome handed over once: to the consumer, or kept as unconsumed.
    handed = [o.index for o in run.delivered] + [o.index for o in report.unconsumed]
    assert len(handed) == len(set(handed)), "an outcome was handed over twice"
    succeeded = {i for i, bucket in seen.items() if bucket == "succeeded"}
    failed = {o.index for o in report.failed if isinstance(o.error, Exception)}
    assert set(handed) == succeeded | failed, "outcomes handed over differ from the report"
    for outcome in [*run.delivered, *report.unconsumed]:
        assert outcome.item == items[outcome.index], f"outcome of the wrong item: {outcome}"
        if outcome.ok:
            assert isinstance(outcome.result, SearchResult | ReaderPage)
            subject = getattr(outcome.result, "query", None) or getattr(outcome.result, "url", None)
            assert subject == outcome.item.subject, f"the result of another item: {outcome}"


def _records_by_subject(result: RunResult) -> dict[str, list[RequestRecord]]:
    grouped: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in sorted(result.log, key=lambda r: r.ordinal):
        if record.endpoint in BILLABLE and record.subject is not None:
            grouped[record.subject].append(record)
    return grouped


def _compatible(attempt: CallFinished, record: RequestRecord) -> bool:
    """Whether the client's attempt and the server's record can be the same request."""
    if attempt.http_status is not None:
        return record.http_status == attempt.http_status and (
            attempt.code is None or record.code is None or attempt.code == record.code
        )
    # No status: the connection broke before the headers (a drop), or the client's own
    # deadline fired before any answer's headers arrived (a loaded machine, a short deadline).
    return attempt.outcome == "TransportError"


def _align(
    attempts: list[CallFinished], records: list[RequestRecord], *, cancelled: bool
) -> tuple[list[tuple[CallFinished | None, RequestRecord | None]], int] | None:
    """Pair the client's attempts at one subject with the server's records of it.

    A connection dropped on arrival leaves a record without a subject (the server never
    read the body), so some attempts that ended with a broken connection and no status
    have no record here: they are paired with ``None``. A cancelled item may have sent a
    last request it never heard back from: that record comes last, paired with ``None``.
    Returns the steps and how many attempts had no record, or ``None`` if no pairing fits.
    """
    droppable = [
        i for i, a in enumerate(attempts) if a.outcome == "TransportError" and a.http_status is None
    ]
    for extra in (0, 1) if cancelled else (0,):
        recorded = records[: len(records) - extra]
        unrecorded = len(attempts) - len(recorded)
        if not 0 <= unrecorded <= len(droppable):
            continue
        for skipped in itertools.combinations(droppable, unrecorded):
            steps: list[tuple[CallFinished | None, RequestRecord | None]] = []
            remaining = iter(recorded)
            for i, attempt in enumerate(attempts):
                if i in skipped:
                    steps.append((attempt, None))
                    continue
                record = next(remaining)
                if not _compatible(attempt, record):
                    break
                steps.append((attempt, record))
            else:
                steps.extend((None, record) for record in records[len(recorded) :])
                return steps, unrecorded
    return None


def _check_item(
    sc: Scenario, run: BatchRun, position: int, records: list[RequestRecord], result: RunResult
) -> int:
    """Check one item against the server's records; return its unrecorded attempts."""
    report, item = run.report, run.items[position]
    assert report is not None
    where = f"item {item.index} ({item.subject})"
    attempts = result.attempts.get(item.subject, [])
    failed = {o.index: o.error for o in report.failed}
    started = position < report.items_read and position not in dict(report.not_started)
    if not started:
        assert not records, f"{where} did not start, yet the server saw it: {records}"
        assert not attempts, f"{where} did not start, yet the client tried it"
        return 0
    error = failed.get(position)
    cancelled = isinstance(error, asyncio.CancelledError)
    assert len(attempts) <= sc.attempts, f"{where}: {len(attempts)} attempts > {sc.attempts}"
    # Every attempt the client finished is one request the server saw, in order; a
    # cancelled item may have sent one more that it never heard back from.
    aligned = _align(attempts, records, cancelled=cancelled)
    assert aligned is not None, (
        f"{where}: client attempts {attempts} do not match the server's records {records}"
    )
    steps, unrecorded = aligned
    assert len(steps) <= sc.attempts, f"{where}: {len(steps)} requests > {sc.attempts}"
    ambiguous_retries = 0
    for step, (attempt, record) in enumerate(steps):
        if attempt is not None and record is not None:
            if attempt.credits:
                assert record.credits_charged == attempt.credits, f"{where}: {attempt} {record}"
            elif record.credits_charged:
                assert attempt.outcome in AMBIGUOUS_OUTCOMES, (
                    f"{where}: charged {record.credits_charged}, the client saw {attempt.outcome}"
                )
        if step == len(steps) - 1:
            break
        # Retried: only after an answer never charged, or (opted in) an ambiguous one.
        if record is not None and _retryable(record):
            continue
        outcome = attempt.outcome if attempt is not None else "?"
        # Possibly charged as the client saw it: a broken connection or its own timeout, or
        # an unreadable success (never an ill-typed one, which the server surely charged).
        ambiguous = outcome == "TransportError" or (
            outcome == "ResponseFormatError"
            and record is not None
            and record.fault != "wrong_types"
        )
        retried = f"{where}: retried after {record} (client saw {outcome})"
        assert sc.opt_in, f"{retried} without retry_possibly_charged"
        assert ambiguous, f"{retried}, which was neither retryable nor ambiguous"
        assert outcome in AMBIGUOUS_OUTCOMES, f"{retried}, not a possibly charged failure"
        ambiguous_retries += 1
    charged_requests = sum(1 for record in records if record.credits_charged)
    assert result.charges[item.subject] == charged_requests, f"{where}: emulator books differ"
    if error is not None and charged_requests:  # to_resume must never pay for it again
        assert position in report.possibly_charged, f"{where}: billed, yet to be resumed"
    assert charged_requests <= 1 + ambiguous_retries, f"{where} charged {charged_requests} times"
    if error is None:  # succeeded: the last answer was a success (or "no results")
        last = records[-1]
        assert last.fault in (None, "no_results"), f"{where} succeeded on {last}"
        if last.code in NO_RESULTS_CODES:
            assert last.credits_charged == 0, f"{where}: no results, yet charged: {last}"
        else:
            assert (last.code, last.credits_charged) == (0, item.cost), f"{where}: {last}"
        return unrecorded
    if cancelled or not steps:
        return unrecorded
    last = steps[-1][1]
    if (
        last is not None
        and isinstance(error, SearchCansError)
        and not isinstance(error, CreditsExhausted)
    ):
        if error.http_status is not None:
            assert error.http_status == last.http_status, f"{where}: {error!r} vs {last}"
        if error.code is not None and last.code is not None:
            assert error.code == last.code, f"{where}: {error!r} vs {last}"
    # With the opt-in, a possibly charged failure is retried while attempts remain.
    possibly = isinstance(error, TransportError | ResponseFormatError) and error.charged is None
    if sc.opt_in and possibly and sc.deadline == LONG_DEADLINE:
        assert len(steps) == sc.attempts, (
            f"{where} failed possibly charged after {len(steps)} of {sc.attempts} "
            f"attempts, although retry_possibly_charged=True: {error!r}"
        )
    return unrecorded


def _check_credits(
    sc: Scenario, reports: list[BatchReport[Item]], stats: EmulatorStats, result: RunResult
) -> None:
    kinds = result.scenario.change_kinds() & {c.kind for c in result.applied}
    drained = bool(kinds & {"drain", "drain_all"})
    charged = stats.charged
    assert charged == sum(r.credits_charged for r in result.log), "emulator books differ"
    lanes = _lane_bound(sc, result)
    if drained:
        assert charged <= result.budget_at_open + lanes * sc.max_cost, (
            f"charged {charged} > budget {result.budget_at_open} + {lanes} lanes x {sc.max_cost}"
        )
    else:
        assert charged <= result.budget_at_open, (
            f"sole consumer charged {charged} > budget {result.budget_at_open}"
        )
        assert 402 not in stats.refusals, "a sole consumer within its budget got a 402"
    committed = sum(
        attempt.credits for attempts in result.attempts.values() for attempt in attempts
    )
    reported = sum(report.credits_committed for report in reports)
    possibly = sum(report.credits_possibly_charged for report in reports)
    assert reported == committed, f"committed {reported}, the client's calls say {committed}"
    assert reported <= charged, "committed more than the server charged"
    assert charged <= reported + possibly, (
        f"server charged {charged} > committed {reported} + possibly {possibly}"
    )
    alone = len(reports) == 1
    for report in reports:
        if report.remain_before is not None:  # a twin may start after the other spent some
            assert report.remain_before <= result.initial_remain, f"remain before: {report!r}"
            if alone:
                assert report.remain_before == result.initial_remain, f"before: {report!r}"
        if report.remain_after is not None:
            # A twin may end before the other; a cancelled call may be charged after the check.
            assert report.remain_after >= stats.remain, f"remain after: {report!r}"
            # A call the client gave up on (cancelled, or past a short deadline) may be
            # charged after the check.
            if alone and "stop_cancel" not in kinds and sc.deadline == LONG_DEADLINE:
                assert report.remain_after == stats.remain, (
                    f"remain after {report.remain_after}, server {stats.remain}"
                )
    pool = result.pool_after
    assert pool is not None
    assert (pool.in_flight, pool.reserved, pool.waiting) == (0, 0, 0), pool


def _lane_bound(sc: Scenario, result: RunResult) -> int:
    most = max(result.lanes_seen)
    return most if sc.max_lanes is None else min(most, sc.max_lanes)


def _check_lanes(sc: Scenario, stats: EmulatorStats, result: RunResult) -> None:
    bound = _lane_bound(sc, result)
    assert stats.peak_in_flight <= bound, f"server saw {stats.peak_in_flight} > {bound} lanes"
    pool = result.pool_after
    assert pool is not None
    assert pool.peak_in_flight <= bound, f"the pool held {pool.peak_in_flight} > {bound} lanes"
    if result.lanes_seen == {sc.lanes}:
        own = stats.refusals.get(1010, 0) - stats.faults.get("lane_busy", 0)
        assert own == 0, f"{own} lane-busy answers caused by the client itself"
        assert stats.peak_offered <= sc.lanes, f"offered {stats.peak_offered} > {sc.lanes}"


def _check_stop(sc: Scenario, reports: list[BatchReport[Item]], result: RunResult) -> None:
    stopped = sorted(event.reason for event in result.events if isinstance(event, Stopped))
    reasons = sorted(report.stop_reason.value for report in reports)
    assert stopped == reasons, f"Stopped events {stopped}, reports {reasons}"
    for report in reports:
        if report.stop_reason is StopReason.COMPLETED:
            assert report.unread_from is None, f"completed, yet items unread: {report!r}"
            assert not report.not_started, f"completed, yet items not started: {report!r}"
    # After an auth or billing refusal nothing new starts: at most one per busy lane.
    bound = _lane_bound(sc, result)
    for status in (401, 403, 402):
        refused = sum(1 for r in result.log if r.endpoint in BILLABLE and r.http_status == status)
        assert refused <= bound, f"{refused} answers {status} > {bound} lanes"
        if refused:
            assert result.pool_stop is not None, f"a {status} did not stop the pool"
    if result.stats and result.stats.refusals.get(403) and result.pool_stop is not None:
        assert result.pool_stop in (StopReason.AUTH, StopReason.BILLING, StopReason.CANCELLED)
