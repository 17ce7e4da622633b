"""One held lane: the meter the client reports to, and ``pool.lane()``'s context.

A :class:`Lane` holds a credit reservation while user work runs in it. Calls made
through a client inside it find it in :data:`current_lane` and report each attempt:
:meth:`Lane.cover` before sending (refusing what the reservation and the budget cannot
cover, or a lease that ran out), :meth:`Lane.settle` after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backend import Permit
from ._errors import CreditsExhausted, LeaseExpiredError
from ._meter import current_lane

if TYPE_CHECKING:
    from types import TracebackType

    from ._lanes import LanePool

__all__ = ["Lane", "LaneContext"]


class Lane:
    """One held lane and its credit reservation; calls made inside it report here."""

    __slots__ = (
        "calls",
        "committed",
        "covered",
        "permit",
        "pool",
        "possibly_charged",
        "reserved",
    )

    def __init__(self, pool: LanePool, reserved: int, permit: Permit | None = None) -> None:
        self.pool = pool
        self.reserved = reserved
        self.permit = permit  # None: credits reserved in the local ledger
        self.covered = 0
        self.committed = 0
        self.possibly_charged = 0
        self.calls = 0

    async def cover(self, cost: int) -> None:
        permit = self.permit
        if permit is not None and not self.pool._backend.lease_valid(permit):
            raise LeaseExpiredError(
                "this lane's lease ran out (the process was paused or too slow); the request "
                "was not sent, since another holder may have the lane now"
            )
        free = self.reserved - self.covered - self.committed - self.possibly_charged
        if cost > free:
            extra = cost - max(0, free)
            pool = self.pool
            if self.permit is None and pool._local is not None:
                covered = pool._local.reserve_now(extra)
            else:
                permit = self.permit or Permit("", 0)
                extended = await pool._backend.extend(permit, extra)
                covered = extended is not None
                self.permit = extended or self.permit
            if not covered:
                available = max(0, free) + pool._backend.credits().left
                raise CreditsExhausted(needed=cost, available=available)
            self.reserved += extra
        self.covered += cost

    def settle(self, cost: int, charged: bool | None) -> None:
        self.covered -= cost
        self.calls += 1
        if charged:
            self.committed += cost
        elif charged is None:
            self.possibly_charged += cost

    def lane_busy(self) -> None:
        self.pool._lane_busy()


class LaneContext:
    __slots__ = ("_cost", "_lane", "_pool", "_token")

    def __init__(self, pool: LanePool, cost: int) -> None:
        self._pool = pool
        self._cost = cost
        self._lane: Lane | None = None
        self._token: Any = None

    async def __aenter__(self) -> None:
        self._lane = await self._pool._take_lane(self._cost)
        self._token = current_lane.set(self._lane)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        current_lane.reset(self._token)
        lane, self._lane = self._lane, None
        if lane is not None:
            await self._pool._give_back(lane, exc)
