"""LanePool: every Parallel Lane busy, never one too many, and no credit spent past the budget.

Why one module: LanePool's lifecycle, seat API, rechecks and lane resizing share its state;
the batch, lane, ledger and backend it uses are modules of their own.

The pool knows nothing of HTTP. It depends on an *account source* (any async callable
returning an :class:`Account`), sizes its lanes from ``concurrent`` and its budget from
``spendable``, and re-reads the account beside the running work to follow the server.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from .._client import (
    AuthenticationError,
    CreditsExhausted,
    InsufficientCreditsError,
    NoLanesError,
    SearchCansError,
)
from .._clock import Clock, LoopClock
from .._events import BudgetRebased, Emitter, EventHook, ItemFinished, LanesResized
from .backend import CreditState, LaneBackend, LocalBackend, Permit
from .batch import Batch
from .lane import Lane, LaneContext
from .ledger import check_cost
from .limiter import LaneLimiter
from .report import BatchReport, PoolStatistics, StopReason

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable
    from types import TracebackType

    from .._client import Account, ApiKey

__all__ = ["LanePool"]

logger = logging.getLogger("searchcans_async")

T = TypeVar("T")
R = TypeVar("R")

AccountSource = Callable[[], Awaitable["Account"]]
Cost = int | Callable[[Any], int]

DEFAULT_SETTLE_GRACE: Final = 40.0
# Completions between two looks at the clock for time-based rechecks (reading the
# clock on every completion would cost more than the rest of the hot path).
_TIME_CHECK_STRIDE: Final = 8
# Seconds an account reading stays exact enough to start a batch on, if nothing ran since.
_FRESH_FOR: Final = 1.0


class LanePool:
    """Runs your coroutines in the account's Parallel Lanes, within a credit budget.

    Open it with ``async with`` (``SearchCans.lanes()`` builds one for a client). It reads
    the account once, then:

    * never holds more lanes than ``concurrent`` (or ``max_lanes``), and keeps them all
      busy while there is work;
    * reserves each item's cost before it starts, and starts nothing that the budget
      (``spendable - floor``, capped by ``budget``) cannot cover: zero overshoot;
    * re-reads the account every ``recheck_every`` finished items or
      ``recheck_interval`` seconds, beside the work, to re-base the budget and follow
      a changed lane count;
    * lowers its lanes for a while when the server says they are busy (1010), then
      grows them back.

    Args:
        account_source: Async callable returning the current :class:`Account`.
        budget: Most credits this pool may spend (default: everything spendable).
        floor: Credits to leave on the account.
        max_lanes: Use at most this many lanes (to share an account with other jobs).
        for_key: The spending key (id, name or masked key) when it is not the caller.
        recheck_every: Re-read the account after this many finished items (``None``: never).
        recheck_interval: ... or when this many seconds passed (``None``: never).
        settle_grace: Seconds after a possibly charged failure before an account check
            is trusted to show its charge.
        clock: Time source (a ``VirtualClock`` in tests).
        on_event: Event hook (see :mod:`searchcans_async.events`).
        backend: Where lanes and credits are counted (default: in this process; a shared
            backend lets several processes split one account).

    Example:
        >>> async with client.lanes(budget=1_000, floor=100) as pool:  # doctest: +SKIP
        ...     async with pool.map(client.read, urls, cost=2) as outcomes:
        ...         async for outcome in outcomes:
        ...             save(outcome.item, outcome.result)
        ...     print(outcomes.report)
    """

    def __init__(
        self,
        account_source: AccountSource,
        *,
        budget: int | None = None,
        floor: int = 0,
        max_lanes: int | None = None,
        for_key: str | ApiKey | None = None,
        recheck_every: int | None = 100,
        recheck_interval: float | None = 30.0,
        settle_grace: float = DEFAULT_SETTLE_GRACE,
        clock: Clock | None = None,
        on_event: EventHook | Emitter | None = None,
        backend: LaneBackend | None = None,
    ) -> None:
        for name, value in (("budget", budget), ("max_lanes", max_lanes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0 credits, got {budget}")
        if floor < 0:
            raise ValueError(f"floor must be >= 0 credits, got {floor}")
        if max_lanes is not None and max_lanes < 1:
            raise ValueError(f"max_lanes must be >= 1, got {max_lanes}")
        if recheck_every is not None and recheck_every < 1:
            raise ValueError(f"recheck_every must be >= 1 item or None, got {recheck_every}")
        if recheck_interval is not None and not recheck_interval > 0:
            raise ValueError(f"recheck_interval must be > 0 s or None, got {recheck_interval}")
        self._source = account_source
        self._budget = budget
        self._floor = floor
        self._max_lanes = max_lanes
        self._for_key = for_key
        self._recheck_every = recheck_every
        self._recheck_interval = recheck_interval
        self._settle_grace = settle_grace
        self.clock: Clock = clock or LoopClock()
        self.emit = on_event if isinstance(on_event, Emitter) else Emitter(on_event)
        self._emitting = bool(self.emit)  # read on the hot path: a plain attribute
        self._account: Account | None = None
        self._read_at: tuple[float, int] = (-math.inf, 0)  # when, after how many completions
        self._lanes = LaneLimiter(0)
        self._backend: LaneBackend = backend if backend is not None else LocalBackend()
        self._plan = 0
        self._halted: StopReason | None = None
        self._halt_error: SearchCansError | None = None
        self._batches: set[Batch[Any, Any]] = set()
        self._recheck_task: asyncio.Task[Account | BaseException] | None = None
        self._rechecks = 0
        self._completions = 0
        self._completions_at_recheck = 0
        self._next_recheck_at: float = math.inf
        self._next_recheck_time: float = math.inf
        self._grow_at = 0
        self._next_event: float = math.inf
        self._quiet_until = 0
        self._open = False

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Read the account and size lanes and budget (``async with`` does this).

        Raises:
            NoLanesError: The account has no lanes (``concurrent == 0``).
            AuthenticationError: The key is unknown or inactive.
            SearchCansError: The account could not be read.
        """
        if self._open:
            raise RuntimeError("this LanePool is already open")
        try:
            account = _with_lanes(await self._source())
            spendable = account.spendable(self._for_key)
            plan = self._plan_for(account)
            await self._backend.open(
                spendable=spendable,
                current=account.consumed,
                lanes=account.concurrent,
                cap=self._budget,
                floor=self._floor,
                grace=self._settle_grace,
                clock=self.clock,
            )
        except BaseException:
            await self._backend.aclose()  # the pool owns its backend, open or not
            raise
        self._account = account
        self._read_at = (self.clock.now(), self._completions)
        self._plan = plan
        self._lanes = LaneLimiter(self._plan)
        self._open = True
        self._schedule_next_recheck()
        logger.info(
            "lane pool open: %d lanes, %d credits spendable, budget left %d",
            self._plan,
            spendable,
            self._backend.credits().left,
        )

    async def aclose(self) -> None:
        """Stop taking work, stop the batches still running, close the backend. Idempotent.

        A batch still running in another task stops with reason ``cancelled``: its work in
        flight is cancelled (counted as possibly charged until settled) and nothing new
        starts; closing waits until its workers have given their lanes back.
        """
        if self._halted is None and self._open:
            self._halted = StopReason.CANCELLED
        self._open = False
        await self._stop_batches()
        task, self._recheck_task = self._recheck_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._backend.aclose()

    async def _stop_batches(self) -> None:
        """Cancel the batches still running and wait for their workers.

        Closed from inside one of a batch's own items, that item is neither cancelled
        nor waited for (it would wait for itself); the batch's other work is.
        """
        me = asyncio.current_task()
        waits = []
        for batch in list(self._batches):
            batch.stop()
            for task in list(batch._tasks):
                if task is not me:
                    task.cancel()
            if me not in batch._tasks:
                waits.append(batch.wait())
        if waits:
            await asyncio.gather(*waits)

    def stop(self, *, cancel: bool = False) -> None:
        """Stop every running batch: nothing new starts; in-flight work finishes.

        With ``cancel=True`` in-flight work is cancelled instead (its credits count as
        possibly charged until the next account check).
        """
        self._halt(StopReason.CANCELLED, None)
        for batch in list(self._batches):
            batch.stop(cancel=cancel)

    # -- introspection -----------------------------------------------------------------

    @property
    def lanes(self) -> int:
        """Lanes usable now."""
        return self._lanes.limit

    @property
    def account(self) -> Account:
        """The account as of the last check."""
        if self._account is None:
            raise RuntimeError("the pool is not open yet: use 'async with pool:' first")
        return self._account

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the pool stopped taking work (auth, billing, cancelled), else ``None``."""
        return self._halted

    @property
    def is_open(self) -> bool:
        """Whether the pool is open (entered and not closed yet).

        Example:
            >>> async with client.lanes() as pool:  # doctest: +SKIP
            ...     assert pool.is_open
        """
        return self._open

    def has_capacity(self, cost: int = 1) -> bool:
        """Whether work of ``cost`` credits could start right now without waiting."""
        lanes = self._lanes
        return (
            self._halted is None
            and lanes.in_use < lanes.limit
            and not lanes.waiting
            and cost <= self._backend.credits().left
        )

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of lanes and credits."""
        credits, lanes = self._backend.credits(), self._lanes
        return PoolStatistics(
            lanes=lanes.limit,
            plan_lanes=self._plan,
            in_flight=lanes.in_use,
            peak_in_flight=lanes.peak,
            waiting=lanes.waiting,
            reserved=credits.reserved,
            committed=credits.committed,
            possibly_charged=credits.possibly_charged,
            budget_left=credits.left,
            remain=self._account.remain if self._account is not None else 0,
            rechecks=self._rechecks,
            stop_reason=self._halted,
        )

    def __repr__(self) -> str:
        credits, lanes = self._backend.credits(), self._lanes
        stop = self._halted.value if self._halted is not None else None
        return (
            f"<LanePool lanes={lanes.limit} in_flight={lanes.in_use} waiting={lanes.waiting} "
            f"reserved={credits.reserved} committed={credits.committed} "
            f"possibly_charged={credits.possibly_charged} budget_left={credits.left} "
            f"stop={stop}>"
        )

    # -- running work ------------------------------------------------------------------

    def lane(self, cost: int = 1) -> LaneContext:
        """Hold one lane and ``cost`` reserved credits for the body of an ``async with``.

        Calls made through a :class:`SearchCans` client inside it are metered: their
        real charges are committed, and a call the reservation cannot cover is refused
        with :class:`CreditsExhausted` before it is sent.

        Raises:
            CreditsExhausted: The budget cannot cover ``cost``, now or after the work in
                flight settles.

        Example:
            >>> async with pool.lane(cost=2):  # doctest: +SKIP
            ...     page = await client.read(url)
        """
        check_cost(cost)
        return LaneContext(self, cost)

    async def run(
        self, fn: Callable[..., Awaitable[R]], /, *args: Any, cost: int = 1, **kwargs: Any
    ) -> R:
        """Run ``await fn(*args, **kwargs)`` in a lane with ``cost`` credits reserved.

        Raises:
            CreditsExhausted: The budget cannot cover ``cost``.

        Example:
            >>> page = await pool.run(client.read, url, cost=2)  # doctest: +SKIP
        """
        async with self.lane(cost):
            return await fn(*args, **kwargs)

    def map(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        cost: Cost = 1,
        fail_fast: bool = False,
        require_full: bool = False,
        buffer: int | None = None,
    ) -> Batch[T, R]:
        """Stream ``items`` through ``fn`` in the lanes; yield outcomes as they finish.

        ``items`` may be any iterable or async iterable; it is read lazily, one item per
        free lane, so memory stays O(lanes) even for millions of items.

        Args:
            fn: Async callable run once per item.
            items: The work.
            cost: Credits per item, or a function of the item returning them.
            fail_fast: Stop at the first failed item (reason ``error``) instead of
                recording it and going on.
            require_full: Refuse to start (:class:`CreditsExhausted`) unless the budget
                covers every item; needs an input of known size.
            buffer: Finished outcomes held for a slow consumer (default ``2 * lanes``, at
                least 64); workers pause when it is full.

        Returns:
            A :class:`Batch`: use it as ``async with pool.map(...) as outcomes:`` and
            iterate it; its ``report`` tells what ran, failed and did not start.
        """
        self._check_open()
        return Batch(
            self, fn, items, cost=cost, fail_fast=fail_fast, require_full=require_full,
            buffer=buffer,
        )  # fmt: skip

    async def run_batch(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        cost: Cost = 1,
        on_outcome: Callable[[Any], object] | None = None,
        fail_fast: bool = False,
        require_full: bool = False,
    ) -> BatchReport[T]:
        """Run a whole batch and return its :class:`BatchReport`.

        ``on_outcome(outcome)`` is called as each item finishes (e.g. to write a line of
        output), without any buffering; if it raises, the batch stops with reason
        ``error`` and that outcome is kept in ``report.unconsumed``.

        Example:
            >>> report = await pool.run_batch(client.search, words)  # doctest: +SKIP
            >>> report.stop_reason, report.succeeded, len(report.failed)  # doctest: +SKIP
        """
        self._check_open()
        batch = Batch(
            self, fn, items, cost=cost, fail_fast=fail_fast, require_full=require_full,
            sink=on_outcome or _discard,
        )  # fmt: skip
        async with batch:
            await batch.wait()
        return batch.report

    # -- the seat API: how every way of running work takes a lane and gives it back ------
    #
    # map(), run_batch(), run() and lane() all run work the same way: take a lane from
    # `limiter`, reserve the work's credits (`backend.reserve_nowait`, else `await
    # reserve`: the one place that waits for credits or refuses them), run it in a `Lane`
    # that meters its calls, then `lane.give_back` (settle the credits: commit, free or
    # doubt; free the lane). Each step that may wait has a synchronous `*_nowait` form,
    # which answers at once with the in-process backend, so a batch's hot path creates no
    # coroutine per item.

    @property
    def limiter(self) -> LaneLimiter:
        """The lanes this pool may hold at once: take one before reserving credits.

        Part of the seat API (docs/architecture.md) that ``map``, ``run_batch``, ``run``
        and ``lane()`` are built on; most code wants those instead.

        Example:
            >>> pool.limiter.in_use, pool.limiter.limit  # doctest: +SKIP
            (3, 8)
        """
        return self._lanes

    @property
    def backend(self) -> LaneBackend:
        """Where lanes and credits are counted (in this process, or shared on Redis).

        Part of the seat API; :meth:`statistics` is the usual way to read the figures.

        Example:
            >>> pool.backend.credits().left  # doctest: +SKIP
            940
        """
        return self._backend

    async def take(self, cost: int) -> Lane:
        """Wait for a lane, reserve ``cost`` credits in it, and return it (for ``lane()``).

        Part of the seat API. The lane is yours until ``await lane.give_back(error)``
        (``None``: the work succeeded, so its credits are committed). ``async with
        pool.lane(cost)`` does both, with the right ``error``: prefer it.

        Example:
            >>> lane = await pool.take(cost=2)  # doctest: +SKIP
            >>> page = await client.read(url)  # doctest: +SKIP
            >>> await lane.give_back(None)  # doctest: +SKIP

        Raises:
            CreditsExhausted: The budget cannot cover ``cost``.
            SearchCansError: The pool stopped taking work (a bad key, billing).
        """
        self._check_open()
        if self._halted is not None:
            raise self._halt_exception()
        limiter = self._lanes
        if not limiter.acquire_nowait():
            await limiter.acquire()
        try:
            permit = self._backend.reserve_nowait(cost) or await self.reserve(cost)
        except BaseException:
            limiter.release()
            raise
        lane = Lane(self)
        lane.start(permit, asyncio.current_task())
        return lane

    async def reserve(self, cost: int) -> Permit:
        """Reserve ``cost`` credits, waiting while work in flight could free enough of them.

        Part of the seat API: a reservation must be given back, which ``lane()``, ``map``
        and ``run_batch`` do for you.

        The one place that decides whether work that cannot start at once may start: try
        ``backend.reserve_nowait(cost)`` first (it answers at once when it can).

        Example:
            >>> permit = pool.backend.reserve_nowait(2) or await pool.reserve(2)  # doctest: +SKIP

        Raises:
            CreditsExhausted: Nothing in flight or a fresh account reading can make it fit.
            SearchCansError: The pool stopped taking work.
        """
        backend = self._backend
        while True:
            if self._halted is not None:
                raise self._halt_exception()
            permit = backend.reserve_nowait(cost) or await backend.acquire(cost)
            if permit is not None:
                return permit
            if self._halted is not None:
                raise self._halt_exception()
            credits = backend.credits()
            if cost > credits.left_when_settled:
                await self._last_chance(cost, credits)
                continue
            await backend.wait_for_change()

    async def fresh_account(self, max_age: float = _FRESH_FOR) -> Account:
        """The account as last read if nothing ran since and it is recent; else :meth:`recheck`.

        A batch reads the account when it starts (for its report's ``remain_before`` and to
        re-base the budget); right after the pool opened, that reading is still exact.
        """
        self._check_open()
        read_at, completions = self._read_at
        if (
            self._account is not None
            and completions == self._completions
            and self.clock.now() - read_at <= max_age
        ):
            return self._account
        return await self.recheck()

    async def recheck(self) -> Account:
        """Read the account now (or join the check already running) and re-base on it.

        Raises:
            SearchCansError: The account could not be read.
        """
        self._check_open()
        task = self._recheck_task or self._start_recheck()
        result = await asyncio.shield(task)
        if isinstance(result, BaseException):
            raise result
        return result

    # -- internals used by lanes and batches ---------------------------------------------

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError(
                "the LanePool is not open: use 'async with client.lanes() as pool:' "
                "(or 'await pool.open()') before running work"
            )

    def _halt_exception(self) -> SearchCansError:
        error = self._halt_error
        reason = self._halted.value if self._halted is not None else "closed"
        message = f"the lane pool stopped taking work ({reason})"
        if error is not None:
            message += f" after: {error.message}"
        cls: type[SearchCansError] = type(error) if error is not None else SearchCansError
        return cls(message, code=getattr(error, "code", None))

    async def _last_chance(self, cost: int, credits: CreditState) -> None:
        """Before refusing, read the account once: credits added, doubts settled.

        A reading is worth making if work finished since the last check, or if the last
        check started ``recheck_interval`` ago or more (so a long-lived pool sees a top-up);
        otherwise the refusal stands without a request, which rate-limits account reads.
        """
        stale = self.clock.now() >= self._next_recheck_time  # inf without an interval
        if self._completions == self._completions_at_recheck and self._rechecks and not stale:
            raise CreditsExhausted(needed=cost, available=credits.left)
        try:
            await self.recheck()
        except SearchCansError:
            raise CreditsExhausted(needed=cost, available=credits.left) from None
        credits = self._backend.credits()
        if cost > credits.left_when_settled:
            raise CreditsExhausted(needed=cost, available=credits.left)

    def _attach(self, batch: Batch[Any, Any]) -> None:
        """Follow a running batch: stop it with the pool, grow its workers with the lanes."""
        self._batches.add(batch)
        if self._halted is not None:
            batch._pool_halted(self._halted, self._halt_error)

    def _detach(self, batch: Batch[Any, Any]) -> None:
        self._batches.discard(batch)

    def _lane_ended(self, lane: Lane, error: BaseException | None) -> None:
        """A lane was given back (its credits settled): free it, count it, react."""
        self._lanes.release()
        if error is not None:
            self._observe(error)
        self._completions += 1  # the rare bookkeeping runs only when due
        if self._completions >= self._next_event:
            self._event_due()
        if self._emitting:
            self._item_finished(lane.committed, error)

    def _item_finished(self, committed: int, error: BaseException | None) -> None:
        if error is None:
            outcome = "succeeded"
        elif isinstance(error, asyncio.CancelledError):
            outcome = "cancelled"
        else:
            outcome = "failed"
        lanes = self._lanes
        self.emit(
            ItemFinished(
                outcome=outcome, credits=committed, in_flight=lanes.in_use, lanes=lanes.limit
            )
        )

    def _observe(self, error: BaseException) -> StopReason | None:
        """Halt the pool on errors that make all further work pointless."""
        if isinstance(error, AuthenticationError):
            self._halt(StopReason.AUTH, error)
            return StopReason.AUTH
        if isinstance(error, InsufficientCreditsError | NoLanesError):
            self._halt(StopReason.BILLING, error)
            return StopReason.BILLING
        return None

    def _halt(self, reason: StopReason, error: SearchCansError | None) -> None:
        if self._halted is not None:
            return
        self._halted = reason
        self._halt_error = error
        logger.warning("lane pool stopped: %s%s", reason.value, f" ({error})" if error else "")
        for batch in list(self._batches):
            batch._pool_halted(reason, error)

    def _event_due(self) -> None:
        done = self._completions
        if done >= self._grow_at and self._lanes.limit < self._plan:
            self._resize(self._lanes.limit + 1, "recovered")
        if self._recheck_task is None and (
            done >= self._next_recheck_at or self.clock.now() >= self._next_recheck_time
        ):
            self._start_recheck()
        self._plan_next_event()

    def _plan_next_event(self) -> None:
        """When ``_lane_ended`` must next look beyond its completions counter."""
        done = self._completions
        due = self._next_recheck_at if self._recheck_task is None else done + _TIME_CHECK_STRIDE
        if self._recheck_interval is not None:
            due = min(due, done + _TIME_CHECK_STRIDE)
        if self._lanes.limit < self._plan:
            due = min(due, self._grow_at)
        self._next_event = due

    def _lane_busy(self) -> None:
        """AIMD: halve the lanes on a 1010 (once per round of completions)."""
        if self._completions < self._quiet_until:
            return
        lanes = max(1, self._lanes.limit // 2)
        self._quiet_until = self._completions + lanes
        if lanes < self._lanes.limit:
            self._resize(lanes, "lane_busy")

    def _resize(self, lanes: int, reason: str) -> None:
        self._lanes.set_limit(lanes)
        # Grow back by one lane per round of completions at the new size.
        self._grow_at = self._completions + lanes
        self._plan_next_event()
        logger.info("lanes now %d (%s)", lanes, reason)
        if self.emit:
            self.emit(LanesResized(lanes=lanes, reason=reason))
        for batch in list(self._batches):
            batch._ensure_workers(lanes)

    # -- account checks -------------------------------------------------------------------

    def _plan_for(self, account: Account) -> int:
        lanes = account.concurrent
        return lanes if self._max_lanes is None else min(lanes, self._max_lanes)

    def _schedule_next_recheck(self) -> None:
        self._completions_at_recheck = self._completions
        every, interval = self._recheck_every, self._recheck_interval
        self._next_recheck_at = self._completions + every if every else math.inf
        self._next_recheck_time = self.clock.now() + interval if interval else math.inf
        self._plan_next_event()

    def _start_recheck(self) -> asyncio.Task[Account | BaseException]:
        self._schedule_next_recheck()
        task = asyncio.get_running_loop().create_task(self._recheck())
        self._recheck_task = task
        return task

    async def _recheck(self) -> Account | BaseException:
        try:
            mark = await self._backend.mark()  # before the account request is sent
            account = await self._source()
            await self._apply(account, mark)
        except SearchCansError as error:
            logger.warning("account check failed: %s", error)
            self._observe(error)
            return error
        except Exception as error:  # a broken account source must not kill the batch
            logger.exception("account check failed")
            return error
        finally:
            self._recheck_task = None
            self._rechecks += 1
            self._plan_next_event()
        return account

    async def _apply(self, account: Account, mark: Any) -> None:
        spendable = account.spendable(self._for_key)
        await self._backend.rebase(
            mark, spendable=spendable, current=account.consumed, lanes=account.concurrent
        )
        self._account = account
        self._read_at = (self.clock.now(), self._completions)
        if account.concurrent == 0:
            raise NoLanesError("the account's lanes dropped to 0 (concurrent=0)")
        plan = self._plan_for(account)
        if plan != self._plan:
            self._plan = plan
            self._resize(plan, "plan")
        left = self._backend.credits().left
        logger.debug(
            "account check: remain %d, spendable %d, %d lanes, budget left %d",
            account.remain,
            spendable,
            account.concurrent,
            left,
        )
        if self.emit:
            self.emit(
                BudgetRebased(
                    remain=account.remain, spendable=spendable, lanes=plan, budget_left=left
                )
            )


def _with_lanes(account: Account) -> Account:
    if account.concurrent == 0:
        raise NoLanesError(
            "the account has no Parallel Lanes (concurrent=0), so nothing can run; "
            "check the plan in the SearchCans dashboard"
        )
    return account


def _discard(_outcome: object) -> None:
    return None
