"""One holder's side of its leases: when they end (as far as we can tell), and the heartbeat.

A lease's deadline is on the Redis server's clock. To check it without I/O before every
request, the holder keeps a local estimate on its own clock that is never later
than the real end: the server's deadline minus an *upper bound* of the offset between
the server's clock and ours. Every script call gives a bound: the server read its clock
after we sent the call, so ``server_time - our_time_at_send`` is at least the offset.
The smallest such bound is kept, loosened slowly for the clocks' drift.

The heartbeat (a task the backend owns) renews every lease still held, retries releases
whose outcome was unknown (same permit id: the scripts are idempotent), and ends
permits given up on. It also runs the scripts' housekeeping on a quiet account, which
is what returns a crashed holder's lanes when nobody else is asking for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from .scripts import OutcomeUnknown, RedisBackendError, stop_task

__all__ = ["Backoff", "Leases", "LedgerGoneError", "ServerClock", "local_now"]

logger = logging.getLogger("searchcans_async")

# How fast the server's clock may run ahead of ours (NTP slews at most 500 ppm each).
_CLOCK_DRIFT: Final = 1e-3
_RENEW_CHUNK: Final = 500

# Linux's CLOCK_BOOTTIME keeps counting while the machine is suspended (CLOCK_MONOTONIC
# does not), as the Redis server's clock does: a lease must not look alive after a sleep.
_BOOTTIME: Final[int | None] = getattr(time, "CLOCK_BOOTTIME", None)


def local_now() -> float:
    """Our clock for leases: seconds that count whatever this process or machine did."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


#: Runs one script: (name, arguments, what it is doing) -> reply.
Caller = Callable[[str, tuple[Any, ...], str], Awaitable[list[bytes]]]


class LedgerGoneError(RedisBackendError):
    """The account's keys are gone (expired while every holder was away, or flushed)."""


class ServerClock:
    """An upper bound of (server clock - our clock, :func:`local_now`), in seconds."""

    __slots__ = ("_at", "_offset")

    def __init__(self) -> None:
        self._offset = math.inf
        self._at = 0.0

    def observe(self, sent: float, server_ms: int) -> None:
        """A script sent at our ``sent`` read the server's clock as ``server_ms``."""
        now = local_now()
        # +1 ms: the server reports whole milliseconds, rounded down.
        sample = (server_ms + 1) / 1000 - sent
        self._offset = min(self._offset + (now - self._at) * _CLOCK_DRIFT, sample)
        self._at = now

    def to_local(self, server_ms: int) -> float:
        """A server time on our clock, never later than the real one."""
        return server_ms / 1000 - self._offset


class Backoff:
    """Paces acquire's attempts while Redis fails; gives up after ``limit`` seconds."""

    __slots__ = ("_delay", "_give_up_at", "_limit", "_longest")

    def __init__(self, limit: float, longest: float) -> None:
        self._limit = limit
        self._longest = longest
        self._give_up_at: float | None = None
        self._delay = 0.02

    def reset(self) -> None:
        """Redis answered: start afresh next time."""
        self._give_up_at, self._delay = None, 0.02

    async def wait(self, failure: OutcomeUnknown) -> None:
        """Sleep before the next attempt, or raise the public error once time is up."""
        now = time.monotonic()
        if self._give_up_at is None:
            self._give_up_at = now + self._limit
        if now >= self._give_up_at:
            raise failure.to_error()
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self._longest)


class Leases:
    """The leases one holder has, the releases it still owes, and its heartbeat."""

    __slots__ = (
        "_call",
        "_kick",
        "_releasing",
        "_task",
        "clock",
        "grace_ms",
        "heartbeat",
        "held",
        "holder",
        "lease_ms",
        "owed",
        "request_timeout",
        "ttl_ms",
    )

    def __init__(
        self, call: Caller, *, holder: str, lease: float, request_timeout: float, heartbeat: float
    ) -> None:
        self._call = call
        self.holder = holder
        self.lease_ms = math.ceil(lease * 1000)
        self.request_timeout = request_timeout
        self.heartbeat = heartbeat
        self.grace_ms = 0  # set by the backend when it opens
        self.ttl_ms = 0
        self.clock = ServerClock()
        self.held: dict[str, float] = {}  # permit id -> local deadline estimate
        self.owed: dict[str, tuple[int, int]] = {}  # releases to retry, abandons
        self._releasing: set[str] = set()  # releases in flight
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- local checks ---------------------------------------------------------------------------

    def valid(self, permit_id: str) -> bool:
        """Whether a request of up to ``request_timeout`` s still ends within the lease."""
        deadline = self.held.get(permit_id)
        return deadline is not None and local_now() + self.request_timeout <= deadline

    def take(self, permit_id: str, deadline_ms: int) -> float | None:
        """Hold a granted permit; ``None`` if too little of its lease is left to use it.

        That happens when a lane was handed to us while this process was paused: it is
        given back unused (or, if its lease already ended, left in doubt).
        """
        deadline = self.clock.to_local(deadline_ms)
        if local_now() + self.request_timeout > deadline:
            self.abandon(permit_id)
            return None
        self.held[permit_id] = deadline
        return deadline

    def abandon(self, permit_id: str) -> None:
        """End a permit nobody will use (an acquire cancelled or whose answer was lost)."""
        if permit_id not in self.held:
            self.owe(permit_id, 0, 0)

    def owe(self, permit_id: str, committed: int, possibly_charged: int) -> None:
        """Remember a release to (re)send in the background."""
        self.owed.setdefault(permit_id, (committed, possibly_charged))
        self._kick.set()

    # -- releases ----------------------------------------------------------------------------

    async def release(self, permit_id: str, committed: int, possibly_charged: int) -> list[bytes]:
        """Send a release now; an unknown outcome leaves it owed (then re-raised).

        Raises:
            OutcomeUnknown: Redis failed; the release will be retried in the background.
            LedgerGoneError: The account's state is gone; nothing is left to release.
        """
        self._releasing.add(permit_id)
        try:
            reply = await self._call(
                "release",
                (permit_id, committed, possibly_charged, self.grace_ms, self.ttl_ms),
                "releasing a lane",
            )
        except LedgerGoneError:
            self.held.pop(permit_id, None)
            raise
        except (OutcomeUnknown, asyncio.CancelledError):
            self.owe(permit_id, committed, possibly_charged)
            raise
        finally:
            self._releasing.discard(permit_id)
        self.held.pop(permit_id, None)
        return reply

    # -- the heartbeat -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat task (ours: :meth:`stop` ends it)."""
        self._task = asyncio.get_running_loop().create_task(
            self._beat(), name=f"searchcans-redis-heartbeat-{self.holder}"
        )

    async def stop(self) -> None:
        """End the heartbeat, then send what is still owed once (failures are logged)."""
        task, self._task = self._task, None
        await stop_task(task)
        if self.owed:
            try:
                await self._settle_owed()
            except (OutcomeUnknown, RedisBackendError) as error:
                logger.warning("could not release every lane before closing: %s", error)

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat):
                    await self._kick.wait()
            self._kick.clear()
            try:
                if self.owed:
                    await self._settle_owed()
                await self._renew()
            except (OutcomeUnknown, RedisBackendError) as error:
                logger.warning("lane lease renewal failed: %s", error)
            except Exception:  # a bug here must not end the heartbeat silently
                logger.exception("lane lease renewal failed")

    async def _settle_owed(self) -> None:
        for permit_id, (committed, possibly) in list(self.owed.items()):
            with contextlib.suppress(LedgerGoneError):  # gone: nothing left to release
                await self._call(
                    "release",
                    (permit_id, committed, possibly, self.grace_ms, self.ttl_ms),
                    "releasing a lane (retry)",
                )
            self.owed.pop(permit_id, None)
            self.held.pop(permit_id, None)

    async def _renew(self) -> None:
        ids = list(self.held)
        for start in range(0, max(1, len(ids)), _RENEW_CHUNK):
            chunk = ids[start : start + _RENEW_CHUNK]
            reply = await self._call(
                "renew", (self.holder, self.lease_ms, self.ttl_ms, *chunk), "renewing leases"
            )
            deadlines = reply[1].split(b",") if chunk else []
            for permit_id, deadline_ms in zip(chunk, deadlines, strict=True):
                if permit_id not in self.held:
                    continue  # released while we renewed
                if int(deadline_ms):
                    self.held[permit_id] = self.clock.to_local(int(deadline_ms))
                    continue
                del self.held[permit_id]
                if permit_id not in self._releasing and permit_id not in self.owed:
                    logger.warning(
                        "a lane's lease ended before it could be renewed (was this process "
                        "paused?): what it reserved stays in doubt until an account check"
                    )
