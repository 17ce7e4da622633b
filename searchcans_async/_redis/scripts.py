"""The Lua side of the Redis backend: its scripts, how they are called, what they answer.

Each script (``lua/*.lua``, each prefixed with ``common.lua``) is one atomic step
on one account's keys. They are sent once with ``SCRIPT LOAD`` and called with
``EVALSHA``; a server that lost its script cache (restart, ``SCRIPT FLUSH``) answers
``NOSCRIPT``, which means the script did not run, so it is loaded and called again.

Nothing else is ever re-sent: a timeout or a dropped connection while a script runs
leaves its outcome unknown (it may have run), and :class:`OutcomeUnknown` says so to
the backend, which then treats the step accordingly (see ``backend.py``). No Redis
exception leaves this module: they carry the server's address, and the caller gets a
:class:`RedisBackendError` that names only the operation and the kind of failure.
"""

from __future__ import annotations

import asyncio
import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoScriptError,
    RedisError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from .._client import TransportError
from .._lanes import CreditState

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "KEY_NAMES",
    "SCRIPTS",
    "LedgerState",
    "OutcomeUnknown",
    "RedisBackendError",
    "Script",
    "ScriptRunner",
    "account_keys",
    "execute",
    "stop_task",
]

#: The account's keys, in the order every script takes them (see common.lua).
KEY_NAMES: Final = (
    "ledger",
    "permits",
    "leases",
    "queue",
    "tickets",
    "texp",
    "doubts",
    "done",
    "donet",
)


class RedisBackendError(TransportError):
    """The shared lane backend (Redis) failed: unreachable, too slow, or its state is gone.

    Raised where the pool needs an answer to go on (taking a lane, an account check);
    never for a lane's release, which is retried in the background instead. The message
    names the step and the kind of failure, never the server's address or credentials.
    Nothing was sent to SearchCans because of it (``charged`` is ``False``).

    Example:
        >>> error = RedisBackendError("taking a lane: Redis timed out")
        >>> error.charged, error.retryable
        (False, False)
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, charged=False, retryable=False)


class OutcomeUnknown(Exception):  # noqa: N818  # a state, not a failure: the script may have run
    """A script call failed in a way that leaves unknown whether it ran (internal)."""

    def __init__(self, operation: str, kind: str) -> None:
        super().__init__(f"{operation}: {kind}")
        self.operation = operation
        self.kind = kind

    def to_error(self) -> RedisBackendError:
        """The public error for this failure."""
        return RedisBackendError(f"{self.operation}: {self.kind}")


class Script:
    """One Lua script: its source (with the shared head) and its SHA1."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, common: str, body: str) -> None:
        self.name = name
        self.source = f"{common}\n-- {name}.lua\n{body}"
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8]}>"


def _load_scripts() -> dict[str, Script]:
    folder = resources.files("searchcans_async._redis") / "lua"
    common = (folder / "common.lua").read_text(encoding="utf-8")
    names = ("open", "acquire", "release", "extend", "mark", "rebase", "renew")
    return {
        name: Script(name, common, (folder / f"{name}.lua").read_text(encoding="utf-8"))
        for name in names
    }


SCRIPTS: Final = _load_scripts()


def account_keys(account: str) -> tuple[str, ...]:
    """The keys of ``account``, each with the account in a hash tag (one cluster slot)."""
    return tuple(f"{{sc:{account}}}:{name}" for name in KEY_NAMES)


class LedgerState(NamedTuple):
    """The shared ledger's figures, as every script reports them."""

    spendable: int
    lanes: int
    cap: int  # -1: no cap
    reserved: int
    committed: int
    possibly_total: int
    settled: int
    committed_reflected: int
    doubts_reflected: int
    server_ms: int
    live: int
    queued: int

    @classmethod
    def from_reply(cls, reply: list[bytes]) -> LedgerState:
        """Read the state part of a script's reply (after status, a, b, c)."""
        return cls(*map(int, reply[4:16]))

    @property
    def possibly_charged(self) -> int:
        """Credits in doubt that no reading has settled."""
        return self.possibly_total - self.settled

    @property
    def outstanding(self) -> int:
        """Credits the reading in use does not reflect yet."""
        return (
            self.reserved
            + (self.committed - self.committed_reflected)
            + (self.possibly_total - self.doubts_reflected)
        )

    def credits(self, floor: int) -> CreditState:
        """The figures as the pool reads them, for a pool that keeps ``floor`` untouched."""
        allowance = self.spendable - floor
        by_server = allowance - self.outstanding
        by_server_settled = by_server + self.reserved
        if self.cap < 0:
            left, when_settled = by_server, by_server_settled
        else:
            by_cap = self.cap - self.committed - self.possibly_charged
            left = min(by_server, by_cap - self.reserved)
            when_settled = min(by_server_settled, by_cap)
        return CreditState(
            reserved=self.reserved,
            committed=self.committed,
            possibly_charged=self.possibly_charged,
            left=max(0, left),
            left_when_settled=max(0, when_settled),
        )


# What may leave a script call's outcome unknown. redis-py raises its own errors for
# most of these, but a cancelled read or an OS-level failure can surface as the others.
_UNKNOWN_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


def _kind(error: BaseException) -> str:
    if isinstance(error, RedisTimeoutError | asyncio.TimeoutError):
        return "Redis did not answer in time"
    if isinstance(error, RedisConnectionError | OSError):
        return "the connection to Redis failed"
    return f"Redis refused the script ({type(error).__name__})"


async def execute(client: Redis, *args: Any) -> Any:
    """``client.execute_command(*args)``, typed (redis-py leaves it unannotated)."""
    return await client.execute_command(*args)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel one of our background tasks and wait for it to end.

    Cancelled again until it ends: a cancellation that reaches redis-py at the wrong
    moment can be swallowed on Python 3.11 (see :meth:`ScriptRunner.run`).
    """
    if task is None:
        return
    for _ in range(1000):
        if task.done():
            break
        task.cancel()
        await asyncio.wait((task,), timeout=0.05)
    await asyncio.gather(task, return_exceptions=True)


class ScriptRunner:
    """Calls the scripts on one account's keys through one client (no retries)."""

    __slots__ = ("_client", "_keys")

    def __init__(self, client: Redis, account: str) -> None:
        self._client = client
        self._keys = account_keys(account)

    @property
    def keys(self) -> tuple[str, ...]:
        """The account's keys."""
        return self._keys

    async def load(self, operation: str = "loading the scripts") -> None:
        """Send every script to the server once (``SCRIPT LOAD``).

        Raises:
            OutcomeUnknown: Redis failed (harmless here: loading has no effect on state).
        """
        failure: OutcomeUnknown | None = None
        try:
            for script in SCRIPTS.values():
                await execute(self._client, "SCRIPT LOAD", script.source)
        except (*_UNKNOWN_ERRORS, RedisError) as error:
            failure = OutcomeUnknown(operation, _kind(error))
        if failure is not None:
            raise failure

    async def run(self, script: Script, args: tuple[Any, ...], operation: str) -> list[bytes]:
        """Run ``script`` once; reload it and run it again only after ``NOSCRIPT``.

        Returns the reply's fields (every script answers one ``|``-separated string).

        Raises:
            OutcomeUnknown: The call failed; the script may or may not have run.
        """
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        failure: OutcomeUnknown | None = None
        try:
            try:
                reply: bytes = await execute(
                    self._client, "EVALSHA", script.sha, len(self._keys), *self._keys, *args
                )
            except NoScriptError:  # not run: the server lost its script cache
                await execute(self._client, "SCRIPT LOAD", script.source)
                reply = await execute(
                    self._client, "EVALSHA", script.sha, len(self._keys), *self._keys, *args
                )
        except (*_UNKNOWN_ERRORS, RedisError) as error:
            failure = OutcomeUnknown(operation, _kind(error))
        if failure is not None:
            raise failure
        if task is not None and task.cancelling() > cancels:
            # Cancelled during the call, yet it returned: on Python 3.11 redis-py's use of
            # asyncio.wait_for can swallow a cancellation. Honour it (the caller treats
            # it as an unknown outcome, which idempotent scripts make safe).
            raise asyncio.CancelledError
        return reply.split(b"|")
