"""RedisBackend: one account's lanes and credits shared by many processes, through Redis.

Why one module: it is the client side of the protocol's every step (acquire, extend,
release, mark, rebase); leases, wake-ups and the scripts are modules of their own.

Several pools (processes, hosts) that open with the same ``account`` name on the same
Redis share one lane count (the account's ``concurrent``) and one credit ledger. Every
step is one atomic Lua script (``scripts.py``); this module is the client side:

* **Leases.** Every lane is a lease on the server's clock. A task owned by the backend
  renews this process's leases every ``heartbeat`` seconds; a holder that crashed or
  was paused loses its lanes when their leases end, and their reservations become
  *in doubt* (never refunded) until an account reading sent after the lease ended
  settles them. The lease is known locally as a conservative estimate on the local
  clock (the server's deadline minus an upper bound of the server-minus-local clock
  offset), and a request may be sent under it only while at least ``request_timeout``
  of it remains, so any request sent ends before its lane can go to someone else.
* **Fair waiting.** A pool that finds no free lane takes a ticket; freed lanes go to the
  oldest tickets first and the holder is told over pub/sub (with a bounded poll as the
  fallback, which also keeps its ticket alive: a dead waiter's ticket lapses).
* **Unknown outcomes.** The Redis client never re-sends a command. A timeout or a
  dropped connection during a script means it may or may not have run: an acquire is
  then abandoned under its id (a later script tombstones it), a release is retried in
  the background under the same id (scripts are idempotent per permit id), and nothing
  is ever assumed refunded.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self, cast

try:
    import redis  # noqa: F401  # here only to name the missing extra
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "the Redis backend needs the redis package: pip install 'searchcans-async[redis]'"
    ) from None

from .._client import LeaseExpiredError
from .._lanes import CreditState, Permit
from .leases import Backoff, Leases, LedgerGoneError, local_now
from .options import (
    DEFAULT_REQUEST_TIMEOUT,
    LeaseOptions,
    check_account,
    check_no_retries,
    make_client,
)
from .scripts import SCRIPTS, LedgerState, OutcomeUnknown, RedisBackendError, ScriptRunner
from .wake import WakeListener

if TYPE_CHECKING:
    from types import TracebackType

    import redis.asyncio as aioredis

    from .._clock import Clock

__all__ = ["RedisBackend", "RedisBackendError"]

logger = logging.getLogger("searchcans_async")

_NO_CREDITS_STATE: Final = CreditState(0, 0, 0, 0, 0)
_NEW_ID: Final = object()
_STILL_QUEUED: Final = object()


class _Mark(NamedTuple):
    sequence: int
    committed: int
    doubts: int


class RedisBackend:
    """Lanes and credits of one account, shared through Redis by every pool that uses it.

    Pass it to a pool (``client.lanes(backend=...)``); the pool opens and closes it. Make
    one per pool. Every pool opened with the same ``account`` name on the same Redis
    shares the account's lanes (at most ``concurrent`` requests in flight across all of
    them) and one credit budget: the ``budget`` is the whole group's (the smallest any
    pool asked for), each pool's ``floor`` is kept by that pool.

    Use :meth:`from_url` or :func:`open_backend` to build one; they make a Redis client
    that never re-sends a command. A client of your own must be built the same way
    (``retry=Retry(NoBackoff(), 0)``): an automatic re-send after a timeout could run a
    script twice.

    Args:
        client: A ``redis.asyncio.Redis`` client with retries turned off.
        account: The group's name (any text without ``{`` or ``}``); all keys carry it.
        request_timeout: The longest one HTTP attempt may take (at least the client's
            ``timeout``). A request is sent in a lane only while this much of its lease
            is left.
        lease: How long a silent holder keeps a lane (default ``request_timeout + 10``).
        heartbeat: Seconds between lease renewals (default a quarter of the margin
            ``lease - request_timeout``).
        poll_interval: Longest wait for a lane or credits before asking Redis again
            (wake-ups normally come sooner, over pub/sub).
        unavailable_after: How long taking a lane keeps trying while Redis fails, before
            raising :class:`RedisBackendError`.
        state_ttl: Seconds the account's keys outlive the last activity on them
            (default: ten minutes, or four leases plus the settle grace if longer).
        raise_budget: Let this pool's ``budget`` raise the group's. By default the
            smallest budget any pool opened the group with holds for all of them.

    Example:
        >>> backend = RedisBackend.from_url("redis://127.0.0.1:6379/0", account="team")
        >>> async with client.lanes(backend=backend) as pool:  # doctest: +SKIP
        ...     report = await pool.run_batch(client.search, queries)
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        account: str,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        lease: float | None = None,
        heartbeat: float | None = None,
        poll_interval: float = 1.0,
        unavailable_after: float = 10.0,
        state_ttl: float | None = None,
        raise_budget: bool = False,
        _owns_client: bool = False,
    ) -> None:
        check_account(account)
        check_no_retries(client)
        self.account = account
        self.options = options = LeaseOptions.make(
            request_timeout=request_timeout,
            lease=lease,
            heartbeat=heartbeat,
            poll_interval=poll_interval,
            unavailable_after=unavailable_after,
            state_ttl=state_ttl,
        )
        self._client = client
        self._raise_budget = raise_budget
        self._owns_client = _owns_client
        self._scripts = ScriptRunner(client, account)
        self._holder = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self._ttl_ms = 0
        self._floor = 0
        self._ledger: LedgerState | None = None
        self._credits = _NO_CREDITS_STATE
        self._leases = Leases(
            self._call,
            holder=self._holder,
            lease=options.lease,
            request_timeout=options.request_timeout,
            heartbeat=options.heartbeat,
        )
        self._wake = WakeListener(client, self._scripts.keys[0][: -len("ledger")], self._holder)
        self._opened = False
        self._closed = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        account: str,
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        **options: Any,
    ) -> Self:
        """Build a backend with its own Redis client (closed with the backend).

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``).
            account: The group's name.
            socket_timeout: Seconds to wait for one Redis answer before treating the
                step as failed (outcome unknown).
            connect_timeout: Seconds to wait for a connection.
            **options: The other arguments of :class:`RedisBackend`.

        Example:
            >>> backend = RedisBackend.from_url("redis://127.0.0.1:6379/0", account="team")
        """
        client = make_client(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        return cls(client, account=account, _owns_client=True, **options)

    async def connect(self) -> None:
        """Check that Redis answers and load the scripts (optional: done lazily otherwise).

        Raises:
            RedisBackendError: Redis cannot be reached or refuses the scripts.
        """
        try:
            await self._scripts.load("connecting to Redis")
        except OutcomeUnknown as unknown:
            error = unknown.to_error()
        else:
            return
        raise error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the LaneBackend protocol -------------------------------------------------------------

    async def open(
        self,
        *,
        spendable: int,
        current: int | None,
        lanes: int,
        cap: int | None,
        floor: int,
        grace: float,
        clock: Clock,  # leases run on Redis' clock; the pool's may be virtual
    ) -> None:
        """Join the account's shared state (or start it from this account reading)."""
        if self._opened or self._closed:
            raise RuntimeError(
                "a RedisBackend serves one LanePool once: make a new one for each pool"
            )
        self._floor = floor
        self._ttl_ms = self._leases.ttl_ms = self.options.ttl_ms(grace)
        self._leases.grace_ms = math.ceil(max(0.0, grace) * 1000)
        args = (spendable, -1 if current is None else current, lanes, -1 if cap is None else cap)
        raise_cap = "1" if self._raise_budget else "0"
        await self._call_or_raise(
            "open", (*args, self._ttl_ms, raise_cap), "opening the shared ledger"
        )
        failure: RedisBackendError | None = None
        try:
            await self._wake.start()
        except OutcomeUnknown as unknown:
            failure = unknown.to_error()
        if failure is not None:
            raise failure
        self._opened = True
        self._leases.start()

    def reserve_nowait(self, cost: int) -> Permit | None:
        """Always ``None``: a lane of the group is only granted by Redis (see :meth:`acquire`)."""
        return None

    async def acquire(self, cost: int) -> Permit | None:
        """Take a lane and reserve ``cost``; wait (fairly) for a lane; ``None``: no credits.

        Raises:
            RedisBackendError: Redis failed for ``unavailable_after`` seconds.
        """
        self._check_open()
        options = self.options
        backoff = Backoff(options.unavailable_after, options.poll_interval)
        permit_id: str | None = None
        try:
            while True:
                self._check_open()  # closed while we waited?
                if permit_id is None:
                    permit_id = self._new_id()
                    self._wake.expect(permit_id)
                failure: OutcomeUnknown | None = None
                try:
                    reply = await self._call(
                        "acquire",
                        (permit_id, self._holder, cost, self._floor, options.lease_ms,
                         options.ticket_ms, self._ttl_ms),
                        "taking a lane",
                    )  # fmt: skip
                except OutcomeUnknown as unknown:
                    failure = unknown
                if failure is not None:
                    self._abandon(permit_id)  # it may hold a lane or a ticket: end it
                    permit_id = None
                    await backoff.wait(failure)
                    continue
                backoff.reset()
                result = await self._answer(permit_id, reply)
                if result is _NEW_ID:
                    permit_id = None
                elif result is not _STILL_QUEUED:
                    return cast("Permit | None", result)
        except BaseException:
            if permit_id is not None:
                self._abandon(permit_id)  # cancelled or failed while queued or granted
            raise

    async def _answer(self, permit_id: str, reply: list[bytes]) -> Permit | object | None:
        """What an acquire script's reply means; waits for a hand-off when queued."""
        wake = self._wake
        status = reply[0]
        if status == b"WAIT":
            granted = await wake.wait_for_grant(permit_id, self.options.poll_interval)
            if granted is None:
                return _STILL_QUEUED  # poll: refreshes our ticket, or picks up the lane
            deadline_ms, reserved = granted
        elif status == b"GRANTED":
            wake.forget(permit_id)
            deadline_ms, reserved = int(reply[1]), int(reply[2])
        elif status == b"CREDITS":
            wake.forget(permit_id)
            deadline_ms, reserved = -1, 0
        else:  # GONE: tombstoned meanwhile; start over under a new id
            wake.forget(permit_id)
            return _NEW_ID
        if deadline_ms < 0:
            wake.note_refusal()
            return None
        deadline = self._leases.take(permit_id, deadline_ms)
        return _NEW_ID if deadline is None else Permit(permit_id, reserved, deadline)

    async def extend(self, permit: Permit, extra: int) -> Permit | None:
        """Reserve ``extra`` more credits for a held permit; ``None``: they do not fit.

        Raises:
            LeaseExpiredError: The permit's lease ended meanwhile.
            RedisBackendError: Redis failed (the extra may stay reserved until release).
        """
        self._check_open()
        token = str(next(self._ids))
        reply = await self._call_or_raise(
            "extend", (permit.id, extra, token, self._floor, self._ttl_ms), "reserving more"
        )
        status = reply[0]
        if status == b"GONE":
            self._leases.held.pop(permit.id, None)
            raise LeaseExpiredError(
                "this lane's lease ran out before the call was sent; it was not sent"
            )
        if status == b"CREDITS":
            self._wake.note_refusal()
            return None
        return Permit(permit.id, int(reply[1]), permit.deadline)

    def release_nowait(self, permit: Permit, *, committed: int, possibly_charged: int) -> bool:
        """Always ``False``: the group's ledger is settled in Redis (see :meth:`release`)."""
        return False

    async def release(self, permit: Permit, *, committed: int, possibly_charged: int) -> None:
        """Give the lane back and settle its credits; retried in the background if Redis fails."""
        try:
            reply = await self._leases.release(permit.id, committed, possibly_charged)
        except LedgerGoneError as error:
            logger.warning("%s", error)
            return
        except OutcomeUnknown as error:
            logger.warning("%s; retrying it in the background", error)
            return
        if reply[0] == b"EXPIRED":
            logger.warning(
                "a lane's lease ran out before it was released: its %d credits stay in "
                "doubt until an account check settles them",
                int(reply[1]) or permit.reserved,
            )

    async def mark(self) -> Any:
        """Snapshot the shared ledger as an account check is sent."""
        self._check_open()
        reply = await self._call_or_raise("mark", (self._ttl_ms,), "marking an account check")
        return _Mark(int(reply[1]), int(reply[2]), int(reply[3]))

    async def rebase(self, mark: Any, *, spendable: int, current: int | None, lanes: int) -> None:
        """Re-base the shared budget on an account reading sent after ``mark``."""
        self._check_open()
        args = (
            mark.sequence,
            mark.committed,
            mark.doubts,
            spendable,
            -1 if current is None else current,
            lanes,
            self._ttl_ms,
        )
        await self._call_or_raise("rebase", args, "re-basing on an account check")

    async def wait_for_change(self) -> None:
        """Wait until credits may have been freed anywhere (or ``poll_interval`` passed)."""
        await self._wake.wait_for_credits(self.options.poll_interval)

    def lease_valid(self, permit: Permit) -> bool:
        """Whether a request of up to ``request_timeout`` s may still be sent under ``permit``.

        No I/O: compares the local estimate of the lease's end (conservative: never later
        than the server's) with the local clock (one that counts a machine's sleep too).
        """
        return self._leases.valid(permit.id)

    def credits(self) -> CreditState:
        """The shared ledger's figures as of the last script this backend ran."""
        return self._credits

    async def aclose(self) -> None:
        """Stop renewing, flush pending releases once, close what this backend opened.

        Leases still held (work abandoned mid-lane) are left to run out: what they
        reserved stays in doubt until an account check settles it.
        """
        if self._closed:
            return
        self._closed = True
        try:
            await self._leases.stop()
        finally:
            try:
                await self._wake.aclose()
            finally:
                if self._owns_client:
                    await self._client.aclose()

    def __repr__(self) -> str:
        ledger = self._ledger
        state = (
            f"live={ledger.live} queued={ledger.queued} lanes={ledger.lanes}" if ledger else "new"
        )
        status = "closed" if self._closed else "open" if self._opened else "not open"
        return (
            f"<RedisBackend account={self.account!r} {status} held={len(self._leases.held)} "
            f"{state} {self._credits}>"
        )

    # -- internals -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RedisBackendError("the Redis lane backend is closed")
        if not self._opened:
            raise RuntimeError("the RedisBackend is not open: pass it to a LanePool and open that")

    def _new_id(self) -> str:
        return f"{self._holder}.{next(self._ids)}"

    def _abandon(self, permit_id: str) -> None:
        """Give up on an acquire; a background release ends whatever it got."""
        self._wake.forget(permit_id)
        self._leases.abandon(permit_id)

    async def _call(self, name: str, args: tuple[Any, ...], operation: str) -> list[bytes]:
        """Run a script; learn the clock offset and the ledger's state from its reply."""
        sent = local_now()
        reply = await self._scripts.run(SCRIPTS[name], args, operation)
        if reply[0] == b"NOLEDGER":
            raise LedgerGoneError(
                f"{operation}: the shared state of account {self.account!r} is gone from "
                "Redis (expired or flushed); start the job again"
            )
        ledger = LedgerState.from_reply(reply)
        self._leases.clock.observe(sent, ledger.server_ms)
        self._ledger = ledger
        self._credits = ledger.credits(self._floor)
        return reply

    async def _call_or_raise(self, name: str, args: tuple[Any, ...], operation: str) -> list[bytes]:
        try:
            return await self._call(name, args, operation)
        except OutcomeUnknown as unknown:
            error = unknown.to_error()
        raise error
