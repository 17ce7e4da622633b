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
from typing import TYPE_CHECKING, Any, Protocol

from .._client import CreditsExhausted, LeaseExpiredError, SearchCansError, current_lane
from .backend import Permit

if TYPE_CHECKING:
    from types import TracebackType

    from .backend import LaneBackend

__all__ = ["Lane", "LaneContext", "LaneOwner"]


class LaneOwner(Protocol):
    """What a lane needs from the pool it belongs to (the :class:`LanePool` is one).

    Declared here, below the pool, so that this module needs nothing from above it.
    """

    @property
    def backend(self) -> LaneBackend:
        """Where the lane's credits are reserved and settled."""
        ...

    async def take(self, cost: int) -> Lane:
        """A new lane with ``cost`` credits reserved (``lane()`` outside any lane)."""
        ...

    def _lane_ended(self, lane: Lane, error: BaseException | None) -> None:
        """The lane was given back: free it, count it, react to ``error``."""
        ...

    def _lane_busy(self) -> None:
        """The server answered "lanes busy" (1010) to a call made in a lane."""
        ...


_NOTHING_RESERVED = Permit("", 0)


class Lane:
    """One held lane and its credit reservation; calls made inside it report here.

    A batch's worker keeps one for every item it runs (:meth:`start` begins the next);
    ``pool.lane()`` makes one per block.
    """

    __slots__ = (
        "backend",
        "calls",
        "committed",
        "covered",
        "holder",
        "permit",
        "pool",
        "possibly_charged",
    )

    def __init__(self, pool: LaneOwner) -> None:
        self.pool = pool
        self.backend = pool.backend
        self.permit = _NOTHING_RESERVED
        self.covered = 0
        self.committed = 0
        self.possibly_charged = 0
        self.calls = 0
        # The task whose work runs in this lane now (None between a batch's items): only
        # that task's nested lane() calls run in it.
        self.holder: asyncio.Task[Any] | None = None

    @property
    def reserved(self) -> int:
        """Credits reserved for the work in this lane."""
        return self.permit.reserved

    def start(self, permit: Permit, holder: asyncio.Task[Any] | None) -> None:
        """Begin new work in this lane, ``holder``'s, with ``permit``'s credits."""
        self.permit = permit
        self.calls = self.covered = self.committed = self.possibly_charged = 0
        self.holder = holder

    def cover_nowait(self, cost: int) -> bool:
        """Cover ``cost`` from the room left in the reservation; ``False``: await :meth:`cover`.

        The common case (the reservation made for the item covers its call) needs no wait:
        the client skips the two coroutines of :meth:`cover` (about 0.1 us an attempt).
        """
        room = self.permit.reserved - self.covered - self.committed - self.possibly_charged
        if cost > room or not self.backend.lease_valid(self.permit):
            return False
        self.covered += cost
        return True

    async def cover(self, cost: int) -> None:
        if not self.backend.lease_valid(self.permit):
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
            backend = self.backend
            extended = await backend.extend(self.permit, cost - max(0, free))
            if extended is None:
                available = max(0, free) + backend.credits().left
                raise CreditsExhausted(needed=cost, available=available)
            self.permit = extended

    def settle(self, cost: int, charged: bool | None) -> None:
        self.covered -= cost
        self.calls += 1
        if charged:
            self.committed += cost
        elif charged is None:
            self.possibly_charged += cost

    def give_back_nowait(self, error: BaseException | None) -> bool:
        """Settle the reservation and free the lane, if the backend can without waiting.

        ``error`` is how the work ended (``None``: it succeeded). The reservation becomes
        committed, freed or possibly charged; the lane keeps those figures (batches add
        them to their totals). ``False``: settled, but not given back yet; await
        :meth:`give_back`.
        """
        reserved = self.permit.reserved
        if self.calls or self.covered:  # metered calls counted what each was charged
            committed, doubtful = self.committed, self.possibly_charged + self.covered
        elif error is None:  # nothing metered ran, and the work succeeded: it cost its cost
            committed, doubtful = reserved, 0
        elif isinstance(error, SearchCansError):
            charged = error.charged
            committed = reserved if charged else 0
            doubtful = reserved if charged is None else 0
        else:  # a bug or a cancellation: it may have spent what it reserved
            committed, doubtful = 0, reserved
        self.committed, self.possibly_charged, self.covered = committed, doubtful, 0
        if not self.backend.release_nowait(
            self.permit, committed=committed, possibly_charged=doubtful
        ):
            return False
        self.pool._lane_ended(self, error)
        return True

    async def give_back(self, error: BaseException | None) -> None:
        """Settle the reservation (commit, free or doubt) and free the lane.

        Settling gives the same figures however often it runs, so this may follow a
        :meth:`give_back_nowait` that answered ``False`` (with the same ``error``).
        """
        if self.give_back_nowait(error):
            return
        try:
            await self.backend.release(
                self.permit, committed=self.committed, possibly_charged=self.possibly_charged
            )
        finally:
            self.pool._lane_ended(self, error)

    def lane_busy(self) -> None:
        self.pool._lane_busy()  # AIMD is the pool's: halve the lanes for a while

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

    def __init__(self, pool: LaneOwner, cost: int) -> None:
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
        lane = self._lane = await self._pool.take(self._cost)
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
            await lane.give_back(exc)
