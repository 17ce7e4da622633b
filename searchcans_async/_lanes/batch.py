"""Batches: a stream of items through a LanePool, with outcomes and an exact report.

Why one module: a batch is one state machine (workers, input, outcome buffer, stop, report)
whose parts share its state; the report type lives in report.py.

One worker task per usable lane pulls the next item (lazily, in input order), reserves
its cost, runs it, and hands its outcome on; so every lane stays busy and memory stays
O(lanes) whatever the input's size. What a batch reports is in ``report.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dis
import enum
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, Self, TypeVar

from .._client import CreditsExhausted, SearchCansError, current_lane
from .._events import Stopped
from .lane import Lane, LaneOwner
from .ledger import check_cost
from .report import BatchReport, Outcome, StopReason

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import FrameType, TracebackType

    from .._client import Account
    from .._clock import Clock
    from .._events import Emitter
    from .backend import Permit
    from .limiter import LaneLimiter
    from .report import PoolStatistics

__all__ = ["Batch", "BatchPool"]

logger = logging.getLogger("searchcans_async")

T = TypeVar("T")
R = TypeVar("R")

_END: Final[Any] = object()  # the input has no next item
_new_tuple: Final = tuple.__new__


class _Wait(enum.Enum):
    WAIT = "the next item or its credits must be waited for"


_WAIT: Final = _Wait.WAIT
# Code flags of frames that a generator or coroutine owns (and may resume later).
_RESUMABLE: Final = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)
_YIELD_VALUE: Final = dis.opmap["YIELD_VALUE"]


class BatchPool(LaneOwner, Protocol):
    """What a batch needs from the pool it runs in (the :class:`LanePool` is one).

    Declared here, below the pool, so that this module needs nothing from above it.
    """

    clock: Clock
    emit: Emitter

    @property
    def limiter(self) -> LaneLimiter:
        """The lanes a worker takes before its next item."""
        ...

    @property
    def lanes(self) -> int:
        """Lanes usable now: how many workers a batch starts."""
        ...

    @property
    def is_open(self) -> bool:
        """Whether the pool is open."""
        ...

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the pool stopped taking work, if it did."""
        ...

    def statistics(self) -> PoolStatistics:
        """A snapshot of lanes and credits."""
        ...

    async def fresh_account(self, max_age: float = ...) -> Account:
        """The account, read again unless the last reading is still exact."""
        ...

    async def recheck(self) -> Account:
        """Read the account now and re-base the budget on it."""
        ...

    async def reserve(self, cost: int) -> Permit:
        """Wait for ``cost`` credits, or refuse them."""
        ...

    def _attach(self, batch: Batch[Any, Any]) -> None:
        """Follow a running batch (stop it with the pool, resize its workers)."""
        ...

    def _detach(self, batch: Batch[Any, Any]) -> None:
        """Stop following a batch that ended."""
        ...


class Batch(Generic[T, R]):
    """A running batch: iterate it for outcomes, read ``report`` when it is over.

    Made by :meth:`LanePool.map`; use it as ``async with pool.map(...) as outcomes:``.
    Leaving the block early stops the batch gracefully: nothing new starts, work in
    flight finishes, and its outcomes land in ``report.unconsumed``. An exception or a
    cancellation in the block cancels the work in flight instead.
    """

    def __init__(  # noqa: PLR0915  # one statement per piece of batch state, all in one place
        self,
        pool: BatchPool,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        cost: int | Callable[[T], int],
        fail_fast: bool = False,
        require_full: bool = False,
        buffer: int | None = None,
        sink: Callable[[Outcome[T, R]], object] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be an async callable, not {type(fn).__name__}")
        if callable(cost):
            self._cost_fn: Callable[[T], int] | None = cost
            self._cost = 0
        else:
            check_cost(cost)
            self._cost_fn = None
            self._cost = cost
        self._aiterator: AsyncIterator[T] | None
        self._iterator: Iterator[T] | None
        if isinstance(items, AsyncIterable):
            self._aiterator = aiter(items)
            self._iterator = None
        elif isinstance(items, Iterable):
            self._iterator = iter(items)
            self._aiterator = None
        else:
            raise TypeError(
                f"items must be an iterable or async iterable, not {type(items).__name__}"
            )
        self._items = items
        self._total = len(items) if isinstance(items, Sized) else None
        self._pool = pool
        self._backend = pool.backend
        self._fn = fn
        self._fail_fast = fail_fast
        self._require_full = require_full
        self._sink = sink
        self._buffer_size = buffer or 64  # set from the lanes when the batch starts
        self._buffer_option = buffer
        self._buffer: collections.deque[Outcome[T, R]] = collections.deque()
        self._ready: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._pull_lock = asyncio.Lock()
        # The worker waiting on the async input's anext(), and whether a stop cancelled it.
        self._pulling: asyncio.Task[Any] | None = None
        self._pull_cancelled = False
        # An item read by _seat_nowait whose credits must be waited for, handed to _seat
        # (same worker, no pause between: it keeps its place at the head of the input).
        self._held: tuple[int, T, int] | None = None
        self._seating = 0  # workers waiting for the input or for credits, in input order
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers = 0
        self._running = True
        self._exhausted = False
        self._consumer_gone = False
        self._read = 0
        self._succeeded = 0
        self._committed = 0
        self._possibly_charged = 0
        self._failed: list[Outcome[T, Any]] = []
        self._possibly_charged_items: list[int] = []
        self._not_started: list[tuple[int, T]] = []
        self._unconsumed: list[Outcome[T, R]] = []
        self._stop_reason: StopReason | None = None
        self._stop_error: BaseException | None = None
        self._remain_before: int | None = None
        self._started = 0.0
        self._report: BatchReport[T] | None = None
        self._entered = False

    # -- public ------------------------------------------------------------------------

    @property
    def report(self) -> BatchReport[T]:
        """The batch's :class:`BatchReport` (once the ``async with`` block has ended)."""
        if self._report is None:
            raise RuntimeError("the report is ready when the 'async with' block has ended")
        return self._report

    @property
    def succeeded(self) -> int:
        """Items that succeeded so far."""
        return self._succeeded

    @property
    def failed(self) -> int:
        """Items that failed so far."""
        return len(self._failed)

    def stop(self, *, cancel: bool = False) -> None:
        """Start nothing new; finish the work in flight (or cancel it with ``cancel=True``)."""
        self._stop(StopReason.CANCELLED, None)
        if cancel:
            for task in list(self._tasks):
                task.cancel()

    async def wait(self) -> None:
        """Wait until every worker has finished (for batches run with a sink)."""
        if self._done is not None and self._workers:
            await asyncio.shield(self._done)

    # -- async context and iteration -----------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Batch runs once: call pool.map(...) again for a new one")
        self._entered = True
        pool = self._pool
        try:
            try:
                self._remain_before = (await pool.fresh_account()).remain
            except SearchCansError as error:
                logger.warning("could not read the account before the batch: %s", error)
            self._preflight()
        except BaseException as error:  # nothing started: still leave a report behind
            if isinstance(error, Exception):
                self._stop(StopReason.ERROR, error)
            else:
                self._stop(StopReason.CANCELLED, None)
            self._build_report(None)
            raise
        self._started = pool.clock.now()
        self._done = asyncio.get_running_loop().create_future()
        if self._buffer_option is None:
            self._buffer_size = max(256, 4 * pool.statistics().plan_lanes)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        pool._attach(self)
        self._ensure_workers(pool.lanes)
        if not self._workers:
            self._all_done()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            if self._workers or self._buffer:
                self._consumer_gone = True  # left the loop early
                self._unconsumed.extend(self._buffer)
                self._buffer.clear()
                self._stop(StopReason.CANCELLED, None)
                self._wake_space()
        elif isinstance(exc, Exception):
            self._stop(StopReason.ERROR, exc)
        else:
            self._stop(StopReason.CANCELLED, None)
        tg, self._tg = self._tg, None
        escaped: BaseException | None = None
        try:
            if tg is not None:
                try:
                    await tg.__aexit__(exc_type, exc, traceback)
                except BaseExceptionGroup as group:  # our TaskGroup's wrapping, not the user's
                    escaped = _unwrap(group, exc)
        finally:
            self._pool._detach(self)
            await self._finish(cancelled=exc is not None or escaped is not None)
        if escaped is not None:
            # The caller gets exactly what was raised (in the block, or a BaseException
            # from fn), as asyncio.timeout and aiometer do: the group is our TaskGroup's.
            raise escaped

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Outcome[T, R]:
        if self._tg is None and not self._buffer:
            if not self._entered:
                raise RuntimeError("use 'async with pool.map(...) as outcomes:' to run a batch")
            raise StopAsyncIteration
        while True:
            buffer = self._buffer
            if buffer:
                outcome = buffer.popleft()
                if self._space is not None:
                    self._wake_space()
                return outcome
            if not self._workers:
                raise StopAsyncIteration
            ready = self._ready = asyncio.get_running_loop().create_future()
            try:
                await ready
            finally:
                self._ready = None

    # -- workers ---------------------------------------------------------------------------

    def _ensure_workers(self, lanes: int) -> None:
        tg = self._tg
        while tg is not None and self._running and self._workers < lanes:
            self._workers += 1
            tg.create_task(self._worker())

    async def _worker(self) -> None:
        # Cancellable by stop(cancel=True) only once running: a task cancelled before its
        # first step never runs this coroutine, so its `finally` would never count it out
        # (and the batch would wait for it forever). One not started yet finds the batch
        # stopped when it starts, and ends at once.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._work()
        except Exception as error:  # a bug here must end this batch, not the caller's task
            logger.exception("batch worker failed")
            self._stop(StopReason.ERROR, error)
        finally:
            self._tasks.discard(task)
            self._workers -= 1
            if not self._workers:
                self._all_done()

    async def _work(self) -> None:
        """One worker: take a lane, then the next item and its credits; run it; repeat."""
        pool, fn = self._pool, self._fn
        limiter = pool.limiter
        # One meter per worker, reused for each item it runs: calls made by `fn` through
        # a client find it in this task's context.
        lane = Lane(pool)
        current_lane.set(lane)
        task = asyncio.current_task()
        while self._running:
            if not limiter.acquire_nowait():
                await limiter.acquire()
            try:
                seat = self._seat_nowait()
                if seat is _WAIT:
                    seat = await self._seat()
            except BaseException:  # cancelled (or failed) while waiting for input or credits
                limiter.release()
                raise
            if seat is None:  # nothing starts: the input ended, the batch stopped, or refused
                limiter.release()
                continue
            index, item, permit = seat
            # lane.start(permit, task), inlined: 0.08 us of 1.7 an item. lane() / run()
            # nested in fn run in this lane.
            lane.permit, lane.holder = permit, task
            lane.calls = lane.covered = lane.committed = lane.possibly_charged = 0
            try:
                result = await fn(item)
            except BaseException as error:
                lane.holder = None
                await lane.give_back(error)
                self._committed += lane.committed
                self._possibly_charged += lane.possibly_charged
                self._item_failed(index, item, error, lane)
                if not isinstance(error, Exception):
                    raise
                continue
            lane.holder = None
            if not lane.give_back_nowait(None):
                await lane.give_back(None)
            self._committed += lane.committed
            self._possibly_charged += lane.possibly_charged
            self._succeeded += 1
            # tuple.__new__: Outcome's own __new__ is a Python-level call (0.2 us an item).
            self._deliver_nowait(_new_tuple(Outcome, (index, item, result, None)))
            if self._sink is None and len(self._buffer) >= self._buffer_size:
                await self._wait_for_space()

    def _seat_nowait(self) -> tuple[int, T, Permit] | _Wait | None:
        """The next item with its credits reserved, if neither needs a wait; else ``_WAIT``.

        Only a plain iterable is read here, and only while no other worker waits for the
        input or for credits, so items start in input order. ``None``: nothing starts (the
        input ended, the batch stopped, the item's cost was unusable).
        """
        if not self._running:
            return None
        iterator = self._iterator
        if iterator is None or self._seating:
            return _WAIT
        try:
            item = next(iterator, _END)
        except Exception as error:  # noqa: BLE001  # the input's failure stops the batch, reported
            self._input_failed(error)
            item = _END
        if item is _END:
            self._input_ended()
            return None
        index = self._read
        self._read = index + 1
        cost = self._cost if self._cost_fn is None else self._cost_of(index, item)
        if cost is None:
            return None
        permit = self._backend.reserve_nowait(cost)
        if permit is None:  # credits to wait for: _seat takes it on
            self._held = (index, item, cost)
            return _WAIT
        return index, item, permit

    async def _seat(self) -> tuple[int, T, Permit] | None:
        """The next item with its credits reserved, waiting for either.

        An item whose credits must be waited for keeps its place: the items after it wait
        behind it (the pull lock). A round trip to a shared backend is not such a wait,
        so those run side by side, as other processes' do.
        """
        self._seating += 1
        try:
            async with self._pull_lock:
                pulled = self._held or await self._pull()
                self._held = None
                if pulled is None:
                    return None
                index, item, cost = pulled
                permit = self._backend.reserve_nowait(cost)
                if permit is None and cost > self._backend.credits().left:
                    permit = await self._reserve(index, item, cost)  # in input order
                    return None if permit is None else (index, item, permit)
            if permit is None:  # the backend needs a round trip to decide
                permit = await self._reserve(index, item, cost)
            return None if permit is None else (index, item, permit)
        finally:
            self._seating -= 1

    async def _pull(self) -> tuple[int, T, int] | None:
        """The input's next item and its cost; ``None``: nothing to start."""
        item = await self._next_item()
        if item is _END:
            return None
        index = self._read - 1
        cost = self._cost_of(index, item)
        return None if cost is None else (index, item, cost)

    def _input_ended(self) -> None:
        """The input has no more items: nothing new is read; work in flight finishes."""
        self._exhausted = self._stop_reason is None  # read to its end, not cut by a stop
        self._running = False

    def _input_failed(self, error: Exception) -> None:
        self._stop(StopReason.ERROR, error)
        logger.warning("the batch's input raised %r at item %d", error, self._read)

    def _next_sync(self, iterator: Iterator[T]) -> Any:
        try:
            item = next(iterator)
        except StopIteration:
            self._input_ended()
            return _END
        except Exception as error:  # noqa: BLE001  # the input's failure stops the batch, reported
            self._input_failed(error)
            return _END
        self._read += 1
        return item

    async def _next_item(self) -> Any:
        if not self._running:
            return _END
        if self._aiterator is None:
            return _END if self._iterator is None else self._next_sync(self._iterator)
        return await self._next_async(self._aiterator)

    async def _next_async(self, aiterator: AsyncIterator[T]) -> Any:
        task = self._pulling = asyncio.current_task()
        try:
            item = await anext(aiterator)
        except StopAsyncIteration:
            self._input_ended()
            return _END
        except asyncio.CancelledError:
            if self._stop_cancelled_pull(task):
                return _END  # a stop cancelled the wait: the input ends here
            raise
        except Exception as error:  # noqa: BLE001  # the input's failure stops the batch, reported
            self._input_failed(error)
            return _END
        finally:
            self._pulling = None
        self._read += 1
        self._stop_cancelled_pull(task)  # the input swallowed the cancellation and yielded
        if self._stop_reason is not None:
            # Stopped while the input produced it: read, but nothing starts after a stop.
            self._not_started.append((self._read - 1, item))
            return _END
        return item

    def _stop_cancelled_pull(self, task: asyncio.Task[Any] | None) -> bool:
        """Take back the cancellation a stop sent to ``task``'s anext(); True: only ours."""
        if not self._pull_cancelled or task is None:
            return False
        self._pull_cancelled = False
        return task.uncancel() == 0

    def _cancel_pull(self) -> None:
        """A stop: cancel the anext() a worker waits on, so no input item starts after it.

        Not from inside the input itself (the item it yields is then not started).
        """
        pulling = self._pulling
        if (
            pulling is not None
            and not self._pull_cancelled
            and pulling is not asyncio.current_task()
        ):
            self._pull_cancelled = True
            pulling.cancel()

    def _cost_of(self, index: int, item: Any) -> int | None:
        """The item's cost, or ``None`` when there is no item or its cost is unusable."""
        if item is _END:
            return None
        if self._cost_fn is None:
            return self._cost
        try:
            cost = self._cost_fn(item)
            check_cost(cost)
        except Exception as error:  # noqa: BLE001  # a bad cost fails that item, reported
            self._item_failed(index, item, error, None)
            return None
        return cost

    async def _reserve(self, index: int, item: T, cost: int) -> Permit | None:
        """Wait for credits for the item at the head of the input; ``None``: not started."""
        pool = self._pool
        try:
            permit = await pool.reserve(cost)
        except CreditsExhausted as error:
            self._not_started.append((index, item))
            self._stop(StopReason.BUDGET, error)
            return None
        except SearchCansError as error:  # the pool halted, or a shared backend failed
            self._not_started.append((index, item))
            self._stop(pool.stop_reason or StopReason.ERROR, error)
            return None
        except BaseException:
            self._not_started.append((index, item))
            raise
        # Stopped while waiting: give the credits back. (Not running but without a stop
        # reason only means another worker read the input's end: this item still runs.)
        if self._stop_reason is not None:
            backend = self._backend
            if not backend.release_nowait(permit, committed=0, possibly_charged=0):
                await backend.release(permit, committed=0, possibly_charged=0)
            self._not_started.append((index, item))
            return None
        return permit

    def _item_failed(self, index: int, item: T, error: BaseException, lane: Lane | None) -> None:
        if (
            isinstance(error, CreditsExhausted)
            and lane is not None
            and not lane.committed
            and not lane.possibly_charged
        ):
            # The lane refused the call before anything was sent: the item did not start.
            self._not_started.append((index, item))
            self._stop(StopReason.BUDGET, error)
            return
        outcome: Outcome[T, Any] = Outcome(index, item, None, error)
        self._failed.append(outcome)
        if lane is not None and (lane.committed or lane.possibly_charged):
            self._possibly_charged_items.append(index)  # to_resume must not run it again
        if isinstance(error, CreditsExhausted):
            self._stop(StopReason.BUDGET, error)
        elif self._fail_fast and isinstance(error, Exception):
            self._stop(StopReason.ERROR, error)
        if isinstance(error, Exception):
            self._deliver_nowait(outcome)
        _drop_locals(error)

    async def _wait_for_space(self) -> None:
        """Pause this worker while the consumer has ``buffer`` outcomes to read."""
        while len(self._buffer) >= self._buffer_size and not self._consumer_gone:
            space = self._space
            if space is None or space.done():
                space = self._space = asyncio.get_running_loop().create_future()
            await space

    def _deliver_nowait(self, outcome: Outcome[T, Any]) -> None:
        sink = self._sink
        if sink is not None:
            try:
                sink(outcome)
            except Exception as error:  # noqa: BLE001  # the sink's failure stops the batch, reported
                self._unconsumed.append(outcome)
                self._stop(StopReason.ERROR, error)
            return
        if self._consumer_gone:
            self._unconsumed.append(outcome)
            return
        self._buffer.append(outcome)
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def _wake_space(self) -> None:
        space = self._space
        if space is not None and (
            self._consumer_gone or len(self._buffer) < self._buffer_size // 2
        ):
            self._space = None
            if not space.done():
                space.set_result(None)

    # -- stopping and reporting --------------------------------------------------------------

    def _stop(self, reason: StopReason, error: BaseException | None) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_error = error
        self._running = False
        if self._pulling is not None:
            self._cancel_pull()

    def _pool_halted(self, reason: StopReason, error: BaseException | None) -> None:
        """The pool stopped taking work (a bad key, billing): so does this batch."""
        self._stop(reason, error)

    def _all_done(self) -> None:
        ready, done = self._ready, self._done
        if ready is not None and not ready.done():
            ready.set_result(None)
        if done is not None and not done.done():
            done.set_result(None)

    def _preflight(self) -> None:
        if not self._require_full:
            return
        if self._total is None or not isinstance(self._items, Iterable):
            raise ValueError(
                "require_full=True needs an input of known size (a list or another sized "
                "collection), to estimate the batch's cost before it starts"
            )
        if self._cost_fn is None:
            needed = self._cost * self._total
        else:
            needed = sum(self._cost_fn(item) for item in self._items)
        available = self._backend.credits().left
        if needed > available:
            raise CreditsExhausted(
                f"the batch needs {needed} credits but the budget has {available}; "
                "nothing was started (drop require_full=True to run what fits)",
                needed=needed,
                available=available,
            )

    async def _finish(self, *, cancelled: bool) -> None:
        pool = self._pool
        remain_after = None
        try:
            if not cancelled and pool.is_open:
                try:
                    remain_after = (await pool.recheck()).remain
                except SearchCansError as error:
                    logger.warning("could not read the account after the batch: %s", error)
        finally:  # even if cancelled during that last read, the report is due
            self._build_report(remain_after)

    def _build_report(self, remain_after: int | None) -> None:
        pool = self._pool
        if self._stop_reason is not None:
            reason = self._stop_reason
        elif self._exhausted:
            reason = StopReason.COMPLETED
        else:
            reason = StopReason.CANCELLED
        credits = self._backend.credits()
        self._report = BatchReport(
            stop_reason=reason,
            succeeded=self._succeeded,
            failed=tuple(self._failed),
            not_started=tuple(self._not_started),
            unread_from=None if self._exhausted else self._read,
            items_read=self._read,
            total=self._total,
            credits_committed=self._committed,
            # A check may have shown some of this batch's doubtful credits were not billed.
            credits_possibly_charged=min(self._possibly_charged, credits.possibly_charged),
            remain_before=self._remain_before,
            remain_after=remain_after,
            elapsed=pool.clock.now() - self._started,
            error=self._stop_error,
            unconsumed=tuple(self._unconsumed),
            possibly_charged=tuple(self._possibly_charged_items),
        )
        logger.info(
            "batch stopped (%s): %d succeeded, %d failed, %d not started, %d credits spent",
            reason.value,
            self._succeeded,
            len(self._failed),
            len(self._not_started),
            self._committed,
        )
        if pool.emit:
            pool.emit(
                Stopped(
                    reason=reason.value,
                    succeeded=self._succeeded,
                    failed=len(self._failed),
                    not_started=len(self._not_started),
                )
            )


def _drop_locals(error: BaseException) -> None:
    """Free the local variables held by an error's traceback (its chain's too).

    The report keeps every failed item's error; with its frames' locals that is several
    kilobytes an item, which a long job multiplies. The traceback itself (files, lines,
    functions) stays, so it still prints. Only frames that finished are cleared: a frame
    still running refuses, and a paused generator or coroutine (one that raised and caught
    the error, say a dispatcher task handing it over with ``set_exception``) is left alone,
    since clearing its frame would finalize it (Python 3.11 and 3.12 do that silently).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if not _paused(frame):
                with contextlib.suppress(RuntimeError):  # a frame still executing
                    frame.clear()
            tb = tb.tb_next
        current = current.__cause__ or current.__context__


def _paused(frame: FrameType) -> bool:
    """Whether ``frame`` belongs to a generator or coroutine that may still resume.

    Such a frame is suspended at a ``YIELD_VALUE`` (every ``yield`` and ``await``); a
    finished one stopped at its ``return`` or where the error left it. Python offers no
    public test before 3.14 (``frame.f_generator``); from 3.13 ``clear()`` refuses
    suspended frames itself, and this check agrees with it.
    """
    code = frame.f_code
    if not code.co_flags & _RESUMABLE:
        return False
    lasti = frame.f_lasti
    return lasti < 0 or code.co_code[lasti] == _YIELD_VALUE


def _unwrap(group: BaseExceptionGroup[BaseException], own: BaseException | None) -> BaseException:
    """The one exception to raise for what the batch's TaskGroup grouped.

    The block's own exception if it is there; else the first that is not a cancellation
    (a worker re-raises only BaseExceptions from ``fn``: KeyboardInterrupt, SystemExit, ...).
    """
    errors = group.exceptions
    if own is not None and any(error is own for error in errors):
        return own
    return next((e for e in errors if not isinstance(e, asyncio.CancelledError)), errors[0])
