"""Events: one small hook through which the client and the lane pool report what they do.

Pass ``on_event=callable`` to :class:`SearchCans` (the pool inherits it) to feed metrics,
logs or a progress display. Events are frozen values with no API key and no personal
account field in them. A hook that raises is logged and ignored: monitoring never breaks
the work it watches.

Example:
    >>> seen = []
    >>> emit = Emitter(seen.append)
    >>> emit(RetryScheduled(endpoint="search", attempt=1, delay=0.2, reason="LaneBusyError"))
    >>> seen[0].reason
    'LaneBusyError'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeAlias

import attrs

__all__ = [
    "BudgetRebased",
    "CallFinished",
    "Emitter",
    "Event",
    "EventHook",
    "ItemFinished",
    "LanesResized",
    "RetryScheduled",
    "Stopped",
    "fan_out",
]

logger = logging.getLogger("searchcans_async")


@attrs.frozen
class CallFinished:
    """One HTTP attempt ended.

    Attributes:
        endpoint: ``"account"``, ``"search"`` or ``"read"``.
        attempt: 1 for the first try, 2 for the first retry, ...
        outcome: ``"ok"``, ``"no_results"`` or the error's class name.
        http_status: The HTTP status, if a response arrived.
        code: The envelope's code, if one was read.
        credits: Credits this attempt was charged (0 when not, or not known).
        elapsed: Seconds the attempt took.
    """

    endpoint: str
    attempt: int
    outcome: str
    http_status: int | None
    code: int | None
    credits: int
    elapsed: float


@attrs.frozen
class RetryScheduled:
    """A failed attempt will be retried after ``delay`` seconds; ``reason`` is the error class."""

    endpoint: str
    attempt: int
    delay: float
    reason: str


@attrs.frozen
class ItemFinished:
    """A lane was given back: one unit of pool work ended.

    Attributes:
        outcome: ``"succeeded"``, ``"failed"`` or ``"cancelled"``.
        credits: Credits committed for it.
        in_flight: Lanes still busy after it.
        lanes: The usable lane count now.
    """

    outcome: str
    credits: int
    in_flight: int
    lanes: int


@attrs.frozen
class BudgetRebased:
    """An account check re-based the budget on the server's numbers.

    Attributes:
        remain: The account's ``remain`` as read.
        spendable: What the calling key may spend, after its own quota.
        lanes: The pool's lane count from that reading: the account's ``concurrent``,
            capped by the pool's ``max_lanes``.
        budget_left: Credits the pool may still reserve.
    """

    remain: int
    spendable: int
    lanes: int
    budget_left: int


@attrs.frozen
class LanesResized:
    """The usable lane count changed.

    ``reason`` is ``"plan"`` (the account's ``concurrent`` changed), ``"lane_busy"``
    (1010 answers: someone else uses the lanes) or ``"recovered"`` (growing back).
    """

    lanes: int
    reason: str


@attrs.frozen
class Stopped:
    """A batch stopped. ``reason`` is one of the stop reasons of :class:`BatchReport`."""

    reason: str
    succeeded: int
    failed: int
    not_started: int


Event: TypeAlias = (
    CallFinished | RetryScheduled | ItemFinished | BudgetRebased | LanesResized | Stopped
)
EventHook: TypeAlias = Callable[[Event], object]


class Emitter:
    """Delivers events to a hook, shielding the caller from the hook's own errors."""

    __slots__ = ("_hook",)

    def __init__(self, hook: EventHook | None) -> None:
        self._hook = hook

    def __bool__(self) -> bool:
        return self._hook is not None

    def __call__(self, event: Event) -> None:
        """Send ``event`` to the hook, if there is one."""
        if self._hook is None:
            return
        try:
            self._hook(event)
        except Exception:
            logger.exception("an on_event hook raised; the event was %s", type(event).__name__)


def fan_out(*hooks: EventHook | None) -> EventHook:
    """One ``on_event`` hook that hands each event to several, in order.

    ``None`` entries are skipped. A hook that raises is logged and the others still get
    the event, as with a single hook.

    Example:
        >>> seen, kinds = [], []
        >>> hook = fan_out(seen.append, None, lambda event: kinds.append(type(event).__name__))
        >>> hook(LanesResized(lanes=2, reason="plan"))
        >>> len(seen), kinds
        (1, ['LanesResized'])
    """
    emitters = tuple(Emitter(hook) for hook in hooks if hook is not None)

    def hook(event: Event) -> None:
        for emit in emitters:
            emit(event)

    return hook
