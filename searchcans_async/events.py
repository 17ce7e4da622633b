"""Events the client and the lane pool report through ``on_event=`` (public names).

Example:
    >>> from searchcans_async import events
    >>> def on_event(event: events.Event) -> None:
    ...     if isinstance(event, events.RetryScheduled):
    ...         print("retrying in", event.delay)
"""

from __future__ import annotations

from ._events import (
    BudgetRebased,
    CallFinished,
    Event,
    EventHook,
    ItemFinished,
    LanesResized,
    RetryScheduled,
    Stopped,
    fan_out,
)

__all__ = [
    "BudgetRebased",
    "CallFinished",
    "Event",
    "EventHook",
    "ItemFinished",
    "LanesResized",
    "RetryScheduled",
    "Stopped",
    "fan_out",
]
