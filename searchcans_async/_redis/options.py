"""The Redis backend's configuration (immutable, checked once) and the client it needs."""

from __future__ import annotations

import math
from typing import Final

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = [
    "DEFAULT_LEASE_MARGIN",
    "DEFAULT_REQUEST_TIMEOUT",
    "LeaseOptions",
    "check_account",
    "check_no_retries",
    "make_client",
]

DEFAULT_REQUEST_TIMEOUT: Final = 40.0
DEFAULT_LEASE_MARGIN: Final = 10.0


@attrs.frozen
class LeaseOptions:
    """How long lanes are leased and how often the backend talks to Redis.

    Attributes:
        request_timeout: The longest one HTTP attempt may take; a request is sent in a
            lane only while this much of its lease is left.
        lease: How long a silent holder keeps a lane.
        heartbeat: Seconds between two renewals of this holder's leases.
        poll_interval: Longest wait for a lane or credits before asking Redis again.
        unavailable_after: How long taking a lane keeps trying while Redis fails.
        state_ttl: Seconds the account's keys outlive their last use (``None``: ten
            minutes, or four leases plus the settle grace if longer).
    """

    request_timeout: float
    lease: float
    heartbeat: float
    poll_interval: float
    unavailable_after: float
    state_ttl: float | None

    @classmethod
    def make(
        cls,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        lease: float | None = None,
        heartbeat: float | None = None,
        poll_interval: float = 1.0,
        unavailable_after: float = 10.0,
        state_ttl: float | None = None,
    ) -> LeaseOptions:
        """Fill in the defaults and refuse options that would break a lease's promise."""
        if not request_timeout > 0:
            raise ValueError(f"request_timeout must be > 0 s, got {request_timeout}")
        lease = request_timeout + DEFAULT_LEASE_MARGIN if lease is None else lease
        margin = lease - request_timeout
        if not margin > 0:
            raise ValueError(
                f"lease ({lease} s) must be longer than request_timeout ({request_timeout} s): "
                "a request is only sent while request_timeout of its lease is left"
            )
        heartbeat = margin / 4 if heartbeat is None else heartbeat
        if not 0 < heartbeat < margin:
            raise ValueError(
                f"heartbeat must be > 0 and below lease - request_timeout ({margin} s), "
                f"got {heartbeat}: a live holder must renew before its lease is too short"
            )
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 s, got {poll_interval}")
        if unavailable_after < 0:
            raise ValueError(f"unavailable_after must be >= 0 s, got {unavailable_after}")
        if state_ttl is not None and not state_ttl > lease:
            raise ValueError(f"state_ttl must be longer than the lease, got {state_ttl}")
        return cls(request_timeout, lease, heartbeat, poll_interval, unavailable_after, state_ttl)

    @property
    def lease_ms(self) -> int:
        """The lease in whole milliseconds (rounded up)."""
        return math.ceil(self.lease * 1000)

    @property
    def ticket_ms(self) -> int:
        """How long a waiter's ticket lives without a poll (three polls)."""
        return math.ceil(self.poll_interval * 3000)

    def ttl_ms(self, grace: float) -> int:
        """The keys' lifetime after their last use, for a pool with this settle grace."""
        ttl = self.state_ttl if self.state_ttl is not None else max(600.0, 4 * (self.lease + grace))
        return math.ceil(ttl * 1000)


def check_account(account: str) -> None:
    """Refuse an account name that cannot be a hash tag."""
    if not account or "{" in account or "}" in account:
        raise ValueError(
            f"account must be a non-empty name without braces (it becomes the keys' hash "
            f"tag), got {account!r}"
        )
    if len(account) > 200:
        raise ValueError("account must be at most 200 characters")


def check_no_retries(client: aioredis.Redis) -> None:
    """Refuse a client that would re-send a command after a timeout."""
    # What each new connection will do, as redis-py's Connection decides it.
    options = client.connection_pool.connection_kwargs
    retry = options.get("retry")
    if retry is not None:
        retries = retry.get_retries()
    else:
        retries = 1 if options.get("retry_on_error") or options.get("retry_on_timeout") else 0
    if retries != 0:
        raise ValueError(
            "this Redis client re-sends commands after a timeout, which could run a lane "
            "script twice; build it with retry=Retry(NoBackoff(), 0) or use "
            "RedisBackend.from_url()"
        )


def make_client(url: str, *, socket_timeout: float, connect_timeout: float) -> aioredis.Redis:
    """A client for ``url`` that never re-sends a command (no I/O until first used)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
