"""LaneLimiter: how many lanes this process holds, first come, first served."""

from __future__ import annotations

import asyncio
import collections

__all__ = ["LaneLimiter"]


class LaneLimiter:
    """A FIFO, resizable counting limiter (like trio's ``CapacityLimiter``).

    ``asyncio.Semaphore`` offers neither a non-blocking acquire nor a way to shrink, and
    both matter here: the hot path takes a lane without creating a coroutine, and a
    smaller limit is honoured by not handing lanes back out until enough have returned
    (running work is never interrupted).
    """

    __slots__ = ("_in_use", "_limit", "_waiters", "peak")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_use = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.peak = 0

    @property
    def limit(self) -> int:
        """How many lanes may be held at once."""
        return self._limit

    @property
    def in_use(self) -> int:
        """Lanes held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Callers waiting for a lane."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def set_limit(self, limit: int) -> None:
        """Change the limit; growing wakes waiters, shrinking absorbs lanes as they return."""
        self._limit = limit
        self._wake()

    def acquire_nowait(self) -> bool:
        """Take a lane if one is free and nobody queues before us."""
        in_use = self._in_use
        if in_use < self._limit and not self._waiters:
            self._in_use = in_use = in_use + 1
            if in_use > self.peak:  # noqa: PLR1730  # hot path: cheaper than calling max()
                self.peak = in_use
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a lane (first come, first served)."""
        if self.acquire_nowait():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as we were cancelled: pass the lane on
            else:
                waiter.cancel()
                self._drop_cancelled()
            raise

    def release(self) -> None:
        """Give a lane back."""
        self._in_use -= 1
        if self._waiters:
            self._wake()

    def _drop_cancelled(self) -> None:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._in_use < self._limit:
            waiter = waiters.popleft()
            if waiter.done():
                continue
            self._in_use += 1
            self.peak = max(self.peak, self._in_use)
            waiter.set_result(None)
