"""One held lane: the meter the client reports to, and ``pool.lane()``'s context.

A :class:`Lane` holds a credit reservation while user work runs in it. Calls made
through a client inside it find it in :data:`current_lane` and report each attempt:
:meth:`Lane.cover` before sending (refusing what the reservation and the budget cannot
cover, or a lease that ran out), :meth:`Lane.settle` after.

Lanes nest: ``pool.lane()`` (or ``pool.run``) in a task that already works in a lane of
the same pool runs in that lane. Taking a second lane could wait forever once every lane
is held by such callers (an agent tool called from a batch item), and the held lane is
idle while its task waits anyway. The nested block reserves its cost in the held lane
(refused with :class:`CreditsExhausted` if the budget cannot cover it) and, like a metered
call, counts once: calls made inside it through a client are metered as they run; a block
that made none is counted as one call of its declared cost.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._client.errors import CreditsExhausted, LeaseExpiredError, SearchCansError
from .._client.meter import current_lane
from .backend import Permit

if TYPE_CHECKING:
    from types import TracebackType

    from .pool import LanePool

__all__ = ["Lane", "LaneContext"]


class Lane:
    """One held lane and its credit reservation; calls made inside it report here."""

    __slots__ = (
        "calls",
        "committed",
        "covered",
        "holder",
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
        # The task whose work runs in this lane now (None between a batch's items): only
        # that task's nested lane() calls run in it.
        self.holder: asyncio.Task[Any] | None = None

    async def cover(self, cost: int) -> None:
        permit = self.permit
        if permit is not None and not self.pool._backend.lease_valid(permit):
            raise LeaseExpiredError(
                "this lane's lease ran out (the process was paused or too slow); the request "
                "was not sent, since another holder may have the lane now"
            )
        await self.make_room(cost)
        self.covered += cost

    async def make_room(self, cost: int) -> None:
        """Grow the reservation, within the budget, until ``cost`` more credits fit in it.

        Raises:
            CreditsExhausted: The budget cannot cover the difference.
        """
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

    def settle(self, cost: int, charged: bool | None) -> None:
        self.covered -= cost
        self.calls += 1
        if charged:
            self.committed += cost
        elif charged is None:
            self.possibly_charged += cost

    def lane_busy(self) -> None:
        self.pool._lane_busy()

    def end_block(self, cost: int, calls_before: int, error: BaseException | None) -> None:
        """Count a nested block that ended in this lane.

        Calls metered inside it counted themselves; a block that made none is one call of
        ``cost`` (the room made for it on entry), judged by how it ended, as a lane is.
        """
        if self.calls != calls_before:
            return
        if error is None:
            charged: bool | None = True
        elif isinstance(error, SearchCansError):
            charged = error.charged
        else:  # a bug or a cancellation: it may have spent what it declared
            charged = None
        free = self.reserved - self.covered - self.committed - self.possibly_charged
        spent = min(cost, max(0, free))  # all of it, unless something took the room since
        self.covered += spent
        self.settle(spent, charged)


class LaneContext:
    __slots__ = ("_calls_before", "_cost", "_lane", "_outer", "_pool", "_token")

    def __init__(self, pool: LanePool, cost: int) -> None:
        self._pool = pool
        self._cost = cost
        self._lane: Lane | None = None
        self._outer: Lane | None = None  # the held lane a nested block runs in
        self._calls_before = 0
        self._token: Any = None

    async def __aenter__(self) -> None:
        outer = current_lane.get()
        task = asyncio.current_task()
        if isinstance(outer, Lane) and outer.pool is self._pool and outer.holder is task:
            await outer.make_room(self._cost)  # nested: reserve in the lane already held
            self._outer, self._calls_before = outer, outer.calls
            return
        lane = self._lane = await self._pool._take_lane(self._cost)
        lane.holder = task
        self._token = current_lane.set(lane)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        outer, self._outer = self._outer, None
        if outer is not None:
            outer.end_block(self._cost, self._calls_before, exc)
            return
        current_lane.reset(self._token)
        lane, self._lane = self._lane, None
        if lane is not None:
            lane.holder = None
            await self._pool._give_back(lane, exc)
