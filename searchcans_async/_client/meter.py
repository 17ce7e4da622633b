"""The link between a call and the lane it runs in: the client's side of it.

The client defines what it reports (:class:`LaneMeter`) and where it finds the lane
(:data:`current_lane`); the pool, a layer above, implements it. So the client never
imports the pool.

A :class:`LanePool` sets :data:`current_lane` while user work runs in one of its lanes.
The client reads it around every HTTP attempt: it asks the lane to cover the attempt's
cost before sending (``cover_nowait``, else ``await cover``), so a wrong cost estimate
cannot overspend the budget, and tells it afterwards what was charged and whether the
server said the lanes were busy.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final, Protocol

__all__ = ["LaneMeter", "current_lane"]


class LaneMeter(Protocol):
    """What a lane offers the calls made inside it."""

    def cover_nowait(self, cost: int) -> bool:
        """Set ``cost`` credits aside for an attempt about to be sent, if no wait is needed.

        ``False``: nothing was set aside; await :meth:`cover` (the reservation must grow,
        or the lease be refused).
        """
        ...

    async def cover(self, cost: int) -> None:
        """Set ``cost`` credits aside for an attempt about to be sent.

        Raises:
            CreditsExhausted: The lane's reservation and the budget cannot cover it.
        """
        ...

    def settle(self, cost: int, charged: bool | None) -> None:
        """Record an attempt's end: charged, not charged, or possibly charged (``None``)."""
        ...

    def lane_busy(self) -> None:
        """Record that the server answered "all lanes busy" (1010) to this lane."""
        ...


current_lane: Final[ContextVar[LaneMeter | None]] = ContextVar(
    "searchcans_async_current_lane", default=None
)
