"""What the lanes report: each item's outcome, a batch's report, a pool's statistics.

Every item read ends in exactly one bucket of the :class:`BatchReport`: succeeded,
failed (with its error) or not started; items never read are those from ``unread_from`` on.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["BatchReport", "Outcome", "PoolStatistics", "StopReason"]

T = TypeVar("T")
R = TypeVar("R")


class StopReason(enum.StrEnum):
    """Why a batch (or a pool) stopped."""

    COMPLETED = "completed"
    """Every item was read and ran (some may have failed)."""
    BUDGET = "budget"
    """The next item did not fit the credit budget; it and the rest did not start."""
    BILLING = "billing"
    """The server refused for billing (402), or the account lost its lanes."""
    AUTH = "auth"
    """The server rejected the API key (401/403)."""
    CANCELLED = "cancelled"
    """Stopped by the caller (``stop()``, cancellation, or leaving the loop early)."""
    ERROR = "error"
    """An item failed with ``fail_fast=True``, the input raised, or ``on_outcome`` raised."""


class Outcome(NamedTuple, Generic[T, R]):
    """One finished item: its position, the item, and its result or error.

    Example:
        >>> outcome = Outcome(0, "python", "result", None)
        >>> outcome.ok, outcome.unwrap()
        (True, 'result')
    """

    index: int  # type: ignore[assignment]  # the item's position; shadows tuple.index on purpose
    item: T
    result: R | None
    error: BaseException | None

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None

    def unwrap(self) -> R:
        """The result, or raise the item's error."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # None only when error is set


@attrs.frozen
class BatchReport(Generic[T]):
    """What a batch did, item by item, and what to run to resume it.

    Attributes:
        stop_reason: Why it stopped (see :class:`StopReason`).
        succeeded: How many items succeeded.
        failed: The items that failed, with their errors (cancelled in-flight items
            carry ``asyncio.CancelledError``).
        not_started: ``(index, item)`` of items read but not started (e.g. the one the
            budget could not cover).
        unread_from: Index of the first item never read from the input, or ``None``
            when the input was read to its end.
        items_read: Items taken from the input (``succeeded + len(failed) +
            len(not_started)``).
        total: The input's length when it had one.
        credits_committed: Credits spent on items that succeeded.
        credits_possibly_charged: Credits of failures that may have been billed.
        remain_before: The account's ``remain`` when the batch started (if read).
        remain_after: ... and after it ended.
        elapsed: Seconds from start to end.
        error: The error that stopped the batch, if one did.
        unconsumed: Outcomes that finished after the consumer stopped iterating (so
            nothing paid for is lost).
        possibly_charged: Indexes of the failed items that spent credits, or may have
            (a connection lost after sending, an unreadable answer, a billed call before
            the one that failed). :meth:`to_resume` leaves them out, so that a resume
            never pays for one twice; :meth:`possibly_charged_items` yields them.

    Example:
        >>> report = BatchReport(StopReason.BUDGET, succeeded=8, failed=(),
        ...     not_started=((8, "q8"),), unread_from=9, items_read=9)
        >>> list(report.to_resume([f"q{i}" for i in range(10)]))
        ['q8', 'q9']
    """

    stop_reason: StopReason
    succeeded: int
    failed: tuple[Outcome[T, Any], ...]
    not_started: tuple[tuple[int, T], ...]
    unread_from: int | None
    items_read: int
    total: int | None = None
    credits_committed: int = 0
    credits_possibly_charged: int = 0
    remain_before: int | None = None
    remain_after: int | None = None
    elapsed: float = 0.0
    error: BaseException | None = attrs.field(default=None, repr=False)
    unconsumed: tuple[Outcome[T, Any], ...] = attrs.field(default=(), repr=False)
    possibly_charged: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every item of the input ran and succeeded."""
        return self.stop_reason is StopReason.COMPLETED and not self.failed and not self.not_started

    def to_resume(self, items: Iterable[T]) -> Iterator[T]:
        """Yield, from the same input, the items that still need to run and cost nothing yet.

        That is every failed item that cannot have been billed, every item not started,
        then everything from ``unread_from``. Failed items that spent credits, or may
        have, are left out (see :meth:`possibly_charged_items`): running them again could
        pay twice, so that is the caller's decision.

        Example:
            >>> report = BatchReport(StopReason.COMPLETED, succeeded=1,
            ...     failed=(Outcome(1, "b", None, OSError()), Outcome(2, "c", None, OSError())),
            ...     not_started=(), unread_from=None, items_read=3, possibly_charged=(1,))
            >>> list(report.to_resume("abc")), list(report.possibly_charged_items("abc"))
            (['c'], ['b'])
        """
        doubtful = set(self.possibly_charged)
        pending = {outcome.index for outcome in self.failed} - doubtful
        pending.update(index for index, _ in self.not_started)
        for index, item in enumerate(items):
            if index in pending or (self.unread_from is not None and index >= self.unread_from):
                yield item

    def possibly_charged_items(self, items: Iterable[T]) -> Iterator[T]:
        """Yield, from the same input, the failed items that spent credits, or may have.

        Their calls were sent and then failed in a way that may have been billed (or a
        billed call came before the one that failed). Check their results by other means,
        or run them again knowing that each may be paid for twice.
        """
        doubtful = set(self.possibly_charged)
        for index, item in enumerate(items):
            if index in doubtful:
                yield item

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"stopped: {self.stop_reason.value}",
            f"succeeded: {self.succeeded}   failed: {len(self.failed)}   "
            f"not started: {len(self.not_started)}"
            + (
                f"   never read: from item {self.unread_from}"
                if self.unread_from is not None
                else ""
            ),
            (
                f"credits committed: {self.credits_committed}   "
                f"possibly charged: {self.credits_possibly_charged}"
            ),
        ]
        if self.possibly_charged:
            lines.append(
                f"left out of to_resume (may have been billed): {len(self.possibly_charged)}"
                " item(s), see possibly_charged_items()"
            )
        if self.remain_before is not None or self.remain_after is not None:
            lines.append(f"remain: {self.remain_before} -> {self.remain_after}")
        if self.error is not None:
            lines.append(f"because: {type(self.error).__name__}: {self.error}")
        return "\n".join(lines)


@attrs.frozen
class PoolStatistics:
    """A snapshot of a :class:`LanePool`.

    Attributes:
        lanes: Lanes usable now (``concurrent``, capped by ``max_lanes``, lowered for a
            while after "lanes busy" answers).
        plan_lanes: The account's ``concurrent`` capped by ``max_lanes``.
        in_flight: Lanes held now.
        peak_in_flight: The most lanes held at once so far.
        waiting: Callers waiting for a lane.
        reserved: Credits reserved by work in flight.
        committed: Credits spent on work that succeeded.
        possibly_charged: Credits of failures that may have been billed, until an
            account check settles them.
        budget_left: Credits new work may still reserve.
        remain: The account's ``remain`` at the last check.
        rechecks: Account checks made since the pool opened.
        stop_reason: Why the pool stopped taking work, or ``None`` while it takes it.
    """

    lanes: int
    plan_lanes: int
    in_flight: int
    peak_in_flight: int
    waiting: int
    reserved: int
    committed: int
    possibly_charged: int
    budget_left: int
    remain: int
    rechecks: int
    stop_reason: StopReason | None
