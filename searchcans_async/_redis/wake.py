"""Wake-ups for the Redis backend: lanes handed to this process, credits freed anywhere.

The scripts ``PUBLISH`` on two channels of the account: ``wake:<holder>`` tells one
process that a lane went to one of its queued permits (or that its credits did not fit),
``credits`` tells everyone waiting for credits that some were freed. One pub/sub
connection per backend listens to both. Pub/sub may drop messages (a reconnect loses
what was sent meanwhile), so every wait here is bounded and the caller asks Redis again
when it times out: wake-ups make waiting fast, polling keeps it correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from redis.exceptions import RedisError

from .scripts import OutcomeUnknown, stop_task

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = ["Grant", "WakeListener"]

logger = logging.getLogger("searchcans_async")

#: What a queued permit learns: (lease deadline in server ms, credits reserved); a
#: negative deadline means its credits did not fit when its turn came.
Grant = tuple[int, int]
_REFUSED: Final[Grant] = (-1, 0)
_RECONNECT_DELAY: Final = (0.05, 2.0)


class WakeListener:
    """One backend's subscription: resolves the futures of its queued permits."""

    __slots__ = (
        "_channels",
        "_client",
        "_closed",
        "_credits",
        "_credits_channel",
        "_expected",
        "_pubsub",
        "_refused_at",
        "_task",
        "_version",
    )

    def __init__(self, client: Redis, prefix: str, holder: str) -> None:
        self._client = client
        self._credits_channel = f"{prefix}credits".encode()
        self._channels = (f"{prefix}wake:{holder}".encode(), self._credits_channel)
        self._expected: dict[str, asyncio.Future[Grant]] = {}
        self._credits: asyncio.Future[None] | None = None
        self._version = 0  # credit announcements seen
        self._refused_at = 0  # ... when credits were last refused to us
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Subscribe (before any permit queues, so no hand-off is missed), then listen.

        Raises:
            OutcomeUnknown: Redis could not be reached.
        """
        self._pubsub = await self._subscribe()
        self._task = asyncio.get_running_loop().create_task(
            self._listen(), name="searchcans-redis-wake"
        )

    async def aclose(self) -> None:
        """Stop listening and close the subscription; pending waits end as timeouts."""
        self._closed = True
        task, self._task = self._task, None
        await stop_task(task)
        await self._close_pubsub()
        for future in self._expected.values():
            future.cancel()
        self._expected.clear()
        self._announce()

    # -- lanes -----------------------------------------------------------------------------

    def expect(self, permit_id: str) -> None:
        """Be ready for a hand-off to ``permit_id`` (call before asking for the lane)."""
        if permit_id not in self._expected:
            self._expected[permit_id] = asyncio.get_running_loop().create_future()

    def forget(self, permit_id: str) -> None:
        """Stop waiting for ``permit_id``."""
        future = self._expected.pop(permit_id, None)
        if future is not None:
            future.cancel()

    async def wait_for_grant(self, permit_id: str, timeout: float) -> Grant | None:
        """Wait up to ``timeout`` s for a hand-off to ``permit_id``; ``None``: none came."""
        future = self._expected.get(permit_id)
        if future is None:
            return None
        if not future.done():
            await asyncio.wait((future,), timeout=timeout)
        if not future.done():
            return None
        if future.cancelled():  # the subscription was lost: ask again, then wait afresh
            self._expected[permit_id] = asyncio.get_running_loop().create_future()
            return None
        del self._expected[permit_id]
        return future.result()

    # -- credits ---------------------------------------------------------------------------

    def note_refusal(self) -> None:
        """Credits were just refused to us: announcements from now on are news."""
        self._refused_at = self._version

    async def wait_for_credits(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for credits to be freed (at once if they were already)."""
        if self._version != self._refused_at:
            self._refused_at = self._version
            return
        future = self._credits
        if future is None or future.done():
            future = self._credits = asyncio.get_running_loop().create_future()
        await asyncio.wait((future,), timeout=timeout)
        self._refused_at = self._version

    def _announce(self) -> None:
        self._version += 1
        future, self._credits = self._credits, None
        if future is not None and not future.done():
            future.set_result(None)

    # -- the subscription --------------------------------------------------------------------

    async def _subscribe(self) -> PubSub:
        failure: OutcomeUnknown | None = None
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*self._channels)
        except (RedisError, OSError) as error:
            failure = OutcomeUnknown("subscribing to lane wake-ups", type(error).__name__)
        if failure is None:
            return pubsub
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()
        raise failure

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _listen(self) -> None:
        delay = _RECONNECT_DELAY[0]
        while not self._closed:
            pubsub = self._pubsub
            try:
                if pubsub is None:
                    self._pubsub = pubsub = await self._subscribe()
                    self._announce()  # we may have missed some: let credit waiters look
                    for future in self._expected.values():
                        if not future.done():
                            future.cancel()  # ... and lane waiters ask again
                    delay = _RECONNECT_DELAY[0]
                message = await pubsub.get_message(timeout=5.0)
            except (RedisError, OSError, OutcomeUnknown) as error:
                logger.debug("lane wake-ups interrupted (%s); reconnecting", type(error).__name__)
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_DELAY[1])
                continue
            if message is not None and message.get("type") == "message":
                self._dispatch(message["channel"], message["data"])

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        if channel == self._credits_channel:
            self._announce()
            return
        kind, _, rest = data.partition(b"|")
        if kind == b"g":
            permit_id, deadline, reserved = rest.split(b"|")
            grant: Grant = (int(deadline), int(reserved))
        elif kind == b"r":
            permit_id, grant = rest, _REFUSED
        else:
            return
        future = self._expected.get(permit_id.decode())
        if future is not None and not future.done():
            future.set_result(grant)
