"""RedisBackend on a real redis-server: leases, fair waiting, idempotent scripts, outages.

A "silent holder" here is a raw script caller that takes a lane and never renews it:
exactly what a crashed process leaves behind. Waiting for a lease to end is the one
place these tests wait on real time; leases are a fraction of a second and the
assertions are on Redis' state, not on elapsed time.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis_support import (
    RedisServer,
    free_port,
    ledger,
    new_account,
    redis_server_fixture,
)

from searchcans_async import LeaseExpiredError, SearchCans, SearchCansError, TransportError
from searchcans_async._clock import VirtualClock
from searchcans_async._redis.scripts import SCRIPTS, ScriptRunner, account_keys
from searchcans_async.redis import RedisBackend, RedisBackendError, open_backend
from searchcans_async.testing import Emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from searchcans_async._lanes.backend import Permit

pytestmark = pytest.mark.redis

redis_server = redis_server_fixture()


def queued(server: RedisServer, account: str) -> int:
    count: int = server.command("ZCARD", f"{{sc:{account}}}:queue")
    return count


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a state check (bounded) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "state not reached in time"
        await asyncio.sleep(0.02)


class SilentHolder:
    """Calls the scripts directly, as a holder that never renews (a crashed process)."""

    def __init__(self, server: RedisServer, account: str, *, lease_ms: int = 300) -> None:
        self.client = aioredis.Redis.from_url(server.url, retry=Retry(NoBackoff(), 0))
        self.scripts = ScriptRunner(self.client, account)
        self.lease_ms = lease_ms

    async def acquire(self, permit_id: str, cost: int, *, ticket_ms: int = 200) -> list[bytes]:
        args = (permit_id, "silent", cost, 0, self.lease_ms, ticket_ms, 600_000)
        return await self.scripts.run(SCRIPTS["acquire"], args, "test")

    async def release(self, permit_id: str, committed: int = 0, possibly: int = 0) -> list[bytes]:
        args = (permit_id, committed, possibly, 0, 600_000)
        return await self.scripts.run(SCRIPTS["release"], args, "test")

    async def run(self, name: str, *args: Any) -> list[bytes]:
        return await self.scripts.run(SCRIPTS[name], args, "test")

    async def aclose(self) -> None:
        await self.client.aclose()


@pytest.fixture
async def make(redis_server: RedisServer) -> AsyncIterator[Callable[..., Any]]:
    """Opens RedisBackends (short leases, fast polls) on one fresh account; closes them."""
    account = new_account("rb")
    made: list[Any] = []

    async def make_backend(
        *, spendable: int = 100, lanes: int = 2, cap: int | None = None, **options: Any
    ) -> RedisBackend:
        options = {"request_timeout": 0.3, "lease": 1.0, "poll_interval": 0.1, **options}
        backend = RedisBackend.from_url(redis_server.url, account=account, **options)
        made.append(backend)
        await backend.open(
            spendable=spendable,
            current=0,
            lanes=lanes,
            cap=cap,
            floor=0,
            grace=0.0,
            clock=VirtualClock(),
        )
        return backend

    make_backend.account = account  # type: ignore[attr-defined]  # the fixture tells tests which account it made
    yield make_backend
    for item in made:
        await item.aclose()


@pytest.fixture
async def silent(redis_server: RedisServer, make: Any) -> AsyncIterator[SilentHolder]:
    holder = SilentHolder(redis_server, make.account)
    yield holder
    await holder.aclose()


def granted(permit: Permit | None) -> Permit:
    assert permit is not None
    return permit


# -- keys and clients ----------------------------------------------------------------------------


async def test_every_key_carries_the_account_tag_and_an_expiry(
    redis_server: RedisServer, make: Any
) -> None:
    """All of an account's keys share its hash tag (one cluster slot) and all expire."""
    backend = await make(lanes=1)
    # Emptied keys vanish in Redis; one created again must get its expiry again.
    await backend.release(granted(await backend.acquire(1)), committed=1, possibly_charged=0)
    assert redis_server.command("EXISTS", f"{{sc:{make.account}}}:permits") == 0
    granted(await backend.acquire(1))
    waiter = asyncio.ensure_future(backend.acquire(1))  # a ticket too
    await eventually(lambda: queued(redis_server, make.account) == 1)
    keys = [k.decode() for k in redis_server.command("KEYS", f"*{make.account}*")]
    assert {"ledger", "permits", "leases", "queue", "tickets", "texp"} <= {
        key.rsplit(":", 1)[1] for key in keys
    }
    for key in keys:
        assert key.startswith(f"{{sc:{make.account}}}:")
        assert redis_server.command("PTTL", key) > 0
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


def test_the_backends_own_client_never_resends_a_command() -> None:
    """from_url() turns redis-py's retries off; a client that retries is refused."""
    backend = RedisBackend.from_url("redis://127.0.0.1:1/0", account="x")
    retry = backend._client.connection_pool.connection_kwargs["retry"]
    assert retry.get_retries() == 0
    with pytest.raises(ValueError, match="twice"):
        RedisBackend(aioredis.Redis(port=1), account="x")  # redis-py's default: 10 retries
    with pytest.raises(ValueError, match="twice"):
        RedisBackend(aioredis.Redis.from_url("redis://:1/0", retry_on_timeout=True), account="x")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"account": "a{b}"}, "braces"),
        ({"account": ""}, "braces"),
        ({"request_timeout": 5.0, "lease": 4.0}, "longer than request_timeout"),
        ({"request_timeout": 1.0, "lease": 2.0, "heartbeat": 1.5}, "heartbeat"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], match: str) -> None:
    """Options that would break a lease's promise are refused, saying why."""
    options = {"account": "x", **options}
    with pytest.raises(ValueError, match=match):
        RedisBackend.from_url("redis://127.0.0.1:1/0", **options)


def test_the_core_package_never_imports_redis() -> None:
    """Importing searchcans_async (client, pool, emulator) leaves redis unimported."""
    code = (
        "import sys, searchcans_async, searchcans_async._lanes.pool, searchcans_async.testing\n"
        "assert not any(m == 'redis' or m.startswith('redis.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603  # ours


def test_without_redis_the_backend_names_the_extra() -> None:
    """Without the redis package, importing the backend says which extra to install."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n    import searchcans_async.redis\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run(  # noqa: S603  # this interpreter, our code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "searchcans-async[redis]" in result.stdout


# -- lanes: waiting, fairness, leases ----------------------------------------------------------


async def test_lanes_are_capped_and_waiters_served_first_come_first_served(
    redis_server: RedisServer, make: Any
) -> None:
    """With one lane, waiters from two processes' backends get it in the order they queued."""
    # Slow polls: the hand-offs, not the polls, must serve them (and no ticket lapses).
    first, second = await make(lanes=1, poll_interval=1.0), await make(lanes=1, poll_interval=1.0)
    holder = granted(await first.acquire(1))
    order: list[str] = []

    async def wait(backend: RedisBackend, name: str) -> None:
        permit = granted(await backend.acquire(1))
        order.append(name)
        await asyncio.sleep(0.01)
        await backend.release(permit, committed=1, possibly_charged=0)

    tasks = []
    for number, backend in enumerate([second, first, second, first]):
        tasks.append(asyncio.ensure_future(wait(backend, f"w{number}")))
        await eventually(lambda n=number: queued(redis_server, make.account) == n + 1)
    assert order == []
    await first.release(holder, committed=1, possibly_charged=0)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert order == ["w0", "w1", "w2", "w3"]
    assert ledger(redis_server, make.account)["C"] == 5


async def test_a_dead_waiter_drops_out_of_the_queue(
    redis_server: RedisServer, make: Any, silent: SilentHolder
) -> None:
    """A queued waiter that stops polling loses its turn; the live one behind it gets the lane."""
    backend = await make(lanes=1)
    permit = granted(await backend.acquire(1))
    reply = await silent.acquire("dead-waiter", 1, ticket_ms=600)
    assert (reply[0], reply[1]) == (b"WAIT", b"0")  # first in the queue
    live = asyncio.ensure_future(backend.acquire(1))
    await eventually(lambda: queued(redis_server, make.account) == 2)
    await eventually(lambda: queued(redis_server, make.account) == 1)  # its ticket lapsed
    await backend.release(permit, committed=1, possibly_charged=0)
    granted(await asyncio.wait_for(live, 5))
    assert redis_server.command("HGET", f"{{sc:{make.account}}}:permits", "dead-waiter") is None


async def test_a_silent_holders_lane_comes_back_and_its_credits_stay_in_doubt(
    redis_server: RedisServer, make: Any, silent: SilentHolder
) -> None:
    """A lease nobody renews ends; its lane returns, its reservation is in doubt, not refunded."""
    backend = await make(lanes=1)
    reply = await silent.acquire("crashed", 10)
    assert reply[0] == b"GRANTED"
    granted_at, deadline = int(reply[13]), int(reply[1])
    assert deadline - granted_at == silent.lease_ms  # the lane is back within one lease
    permit = granted(await asyncio.wait_for(backend.acquire(5), 5))  # waits for that end
    state = ledger(redis_server, make.account)
    assert (state["R"], state["P"], state["C"]) == (5, 10, 0)
    credits = backend.credits()
    assert (credits.possibly_charged, credits.left) == (10, 85)
    # The crashed holder's late release changes nothing: the outcome stays unknown.
    assert (await silent.release("crashed", committed=0))[0] == b"EXPIRED"
    assert ledger(redis_server, make.account) == state
    # A reading sent after the lease ended settles it: here the account shows no charge.
    await backend.release(permit, committed=5, possibly_charged=0)
    mark = await backend.mark()
    await backend.rebase(mark, spendable=95, current=5, lanes=1)
    credits = backend.credits()
    assert (credits.possibly_charged, credits.committed, credits.left) == (0, 5, 95)


async def test_a_live_holder_keeps_its_lease_by_renewing_it(
    redis_server: RedisServer, make: Any
) -> None:
    """The heartbeat extends a held lease well past its length; the permit stays usable."""
    backend = await make(lanes=1, request_timeout=0.2, lease=1.2)
    permit = granted(await backend.acquire(1))
    leases = f"{{sc:{make.account}}}:leases"
    first_deadline = int(redis_server.command("ZSCORE", leases, permit.id))
    await asyncio.sleep(2.0)
    assert int(redis_server.command("ZSCORE", leases, permit.id)) > first_deadline + 1000
    assert backend.lease_valid(permit)


async def test_a_paused_holder_does_not_send_under_a_lost_lease(redis_server: RedisServer) -> None:
    """Frozen past its lease, a holder does not send (LeaseExpiredError): the server saw nothing."""
    account = new_account("paused")
    async with Emulator(credits=100, lanes=2, latency=0.0) as emu:
        backend = RedisBackend.from_url(
            redis_server.url, account=account, request_timeout=0.3, lease=0.6
        )
        async with (
            SearchCans(emu.api_key, base_url=emu.base_url, timeout=0.3) as client,
            client.lanes(recheck_every=None, recheck_interval=None, backend=backend) as pool,
        ):
            async with pool.lane(cost=1):
                await client.search("before")
                time.sleep(0.8)  # noqa: ASYNC251  # the whole process stalls: no heartbeat runs
                with pytest.raises(LeaseExpiredError):
                    await client.search("after")
            stats = pool.statistics()
        assert emu.stats().requests == 1
    state = ledger(redis_server, account)
    assert state["P"] - state["S"] == 1  # the lost lane's reservation: in doubt
    assert stats.committed == 0  # the shared ledger never saw a commit for it


async def test_a_cancelled_waiter_leaves_the_queue(redis_server: RedisServer, make: Any) -> None:
    """Cancelling a queued acquire removes its ticket (in the background), holding nothing."""
    backend = await make(lanes=1)
    permit = granted(await backend.acquire(1))
    waiter = asyncio.ensure_future(backend.acquire(1))
    await eventually(lambda: queued(redis_server, make.account) == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await eventually(lambda: queued(redis_server, make.account) == 0)
    await backend.release(permit, committed=0, possibly_charged=0)
    state = ledger(redis_server, make.account)
    assert state["R"] == 0
    assert redis_server.command("ZCARD", f"{{sc:{make.account}}}:leases") == 0


async def test_a_waiter_whose_credits_do_not_fit_is_told_so(make: Any) -> None:
    """When a queued waiter's turn comes and its credits do not fit, acquire returns None."""
    backend = await make(lanes=1, spendable=10)
    permit = granted(await backend.acquire(5))
    waiter = asyncio.ensure_future(backend.acquire(8))
    await asyncio.sleep(0.05)
    await backend.release(permit, committed=5, possibly_charged=0)
    assert await asyncio.wait_for(waiter, 5) is None
    granted(await backend.acquire(5))


async def test_lost_wake_ups_are_made_up_by_polling(redis_server: RedisServer, make: Any) -> None:
    """With its pub/sub connection killed, a queued waiter still gets the lane it is due."""
    backend = await make(lanes=1)
    permit = granted(await backend.acquire(1))
    waiter = asyncio.ensure_future(backend.acquire(1))
    await eventually(lambda: queued(redis_server, make.account) == 1)
    assert redis_server.command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    await backend.release(permit, committed=1, possibly_charged=0)
    second = granted(await asyncio.wait_for(waiter, 5))
    # ... and wake-ups work again once it has reconnected.
    await eventually(
        lambda: redis_server.command("PUBSUB", "NUMSUB", f"{{sc:{make.account}}}:credits")[1] >= 1
    )
    third = asyncio.ensure_future(backend.acquire(1))
    await eventually(lambda: queued(redis_server, make.account) == 1)
    await backend.release(second, committed=1, possibly_charged=0)
    granted(await asyncio.wait_for(third, 5))


async def test_a_lane_lost_while_frozen_cannot_be_extended(make: Any) -> None:
    """Reserving more under a lease that ended while the process was frozen is refused."""
    backend = await make(lanes=1, request_timeout=0.2, lease=0.5)
    permit = granted(await backend.acquire(1))
    time.sleep(0.6)  # noqa: ASYNC251  # the process stalls past its lease
    assert not backend.lease_valid(permit)
    with pytest.raises(LeaseExpiredError):
        await backend.extend(permit, 1)
    await backend.release(permit, committed=0, possibly_charged=0)  # its credits stay in doubt
    assert backend.credits().possibly_charged == 1


async def test_a_backend_is_opened_once_and_says_what_it_holds(
    redis_server: RedisServer, make: Any
) -> None:
    """One pool per backend; once closed it refuses work; its repr shows its state."""
    backend = await make(lanes=2)
    granted(await backend.acquire(3))
    assert "held=1" in repr(backend)
    assert "live=1" in repr(backend)
    with pytest.raises(RuntimeError, match="one LanePool"):
        await backend.open(
            spendable=1, current=0, lanes=1, cap=None, floor=0, grace=0, clock=VirtualClock()
        )
    await backend.aclose()
    assert "closed" in repr(backend)
    with pytest.raises(RedisBackendError, match="closed"):
        await backend.acquire(1)
    async with await open_backend(redis_server.url, make.account) as fresh:
        assert "not open" in repr(fresh)
        with pytest.raises(RuntimeError, match="not open"):
            await fresh.acquire(1)


# -- idempotence, scripts ---------------------------------------------------------------------


async def test_every_script_is_idempotent_per_permit_id(
    redis_server: RedisServer, make: Any, silent: SilentHolder
) -> None:
    """Asking twice (as after a lost answer) changes the state once."""
    await make(lanes=3)
    first = await silent.acquire("p1", 10)
    again = await silent.acquire("p1", 10)
    assert first[:3] == again[:3]
    assert ledger(redis_server, make.account)["R"] == 10
    for _ in range(2):
        assert int((await silent.run("extend", "p1", 5, "token-1", 0, 600_000))[1]) == 15
    assert ledger(redis_server, make.account)["R"] == 15
    await silent.release("p1", committed=15)
    state = ledger(redis_server, make.account)
    await silent.release("p1", committed=15)
    assert ledger(redis_server, make.account) == state
    mark = await silent.run("mark", 600_000)
    for _ in range(2):
        await silent.run("rebase", *mark[1:4], 80, 15, 3, 600_000)
        assert ledger(redis_server, make.account)["spendable"] == 80


async def test_an_abandoned_acquire_cannot_take_a_lane_later(
    redis_server: RedisServer, make: Any, silent: SilentHolder
) -> None:
    """A permit id given up on (its answer was lost) is tombstoned: a late copy gets nothing."""
    await make(lanes=1)
    assert (await silent.release("lost", committed=0))[0] == b"ABANDONED"
    assert (await silent.acquire("lost", 1))[0] == b"GONE"
    assert ledger(redis_server, make.account)["R"] == 0


async def test_a_stale_reading_does_not_undo_a_newer_one(make: Any, silent: SilentHolder) -> None:
    """Two checks in flight: the one marked earlier, arriving last, is ignored."""
    backend = await make()
    older = await backend.mark()
    newer = await backend.mark()
    await backend.rebase(newer, spendable=50, current=50, lanes=2)
    await backend.rebase(older, spendable=1_000, current=0, lanes=2)
    assert backend.credits().left == 50


async def test_scripts_are_reloaded_after_the_server_forgets_them(
    redis_server: RedisServer, make: Any
) -> None:
    """After SCRIPT FLUSH (a restart's script cache loss), calls still work."""
    backend = await make()
    redis_server.command("SCRIPT", "FLUSH")
    permit = granted(await backend.acquire(1))
    await backend.release(permit, committed=1, possibly_charged=0)
    assert backend.credits().committed == 1


# -- outages -----------------------------------------------------------------------------------


async def test_an_unreachable_redis_is_a_typed_error_without_its_address() -> None:
    """No server: open_backend fails fast with RedisBackendError; no redis exception leaks."""
    port = free_port()
    with pytest.raises(RedisBackendError) as caught:
        await open_backend(f"redis://:secret@127.0.0.1:{port}/0", "team", connect_timeout=0.5)
    error = caught.value
    assert isinstance(error, TransportError)
    assert isinstance(error, SearchCansError)
    assert error.charged is False
    for text in (str(error), repr(error)):
        assert str(port) not in text
        assert "secret" not in text
    assert error.__cause__ is None
    assert error.__context__ is None


async def test_a_stalled_redis_fails_acquire_in_bounded_time_and_cleans_up(
    redis_server: RedisServer, make: Any
) -> None:
    """CLIENT PAUSE: acquire gives up with RedisBackendError; abandoned ids are ended after."""
    backend = await make(socket_timeout=0.2, unavailable_after=0.5)
    redis_server.command("CLIENT", "PAUSE", 1200, "ALL")
    with pytest.raises(RedisBackendError, match="taking a lane"):
        await asyncio.wait_for(backend.acquire(1), 5)
    # After the stall the heartbeat tombstones what those timed-out calls may have taken.
    await eventually(lambda: not backend._leases.owed)
    state = ledger(redis_server, make.account)
    assert state["R"] == 0
    assert redis_server.command("ZCARD", f"{{sc:{make.account}}}:leases") == 0
    granted(await backend.acquire(1))


async def test_a_release_during_a_stall_is_retried_not_lost(
    redis_server: RedisServer, make: Any
) -> None:
    """A release that times out is retried in the background under the same id."""
    backend = await make(socket_timeout=0.2, lease=3.0, request_timeout=0.3)
    permit = granted(await backend.acquire(4))
    redis_server.command("CLIENT", "PAUSE", 600, "ALL")
    await backend.release(permit, committed=4, possibly_charged=0)  # does not raise
    await eventually(lambda: not backend._leases.owed)
    state = ledger(redis_server, make.account)
    assert (state["R"], state["C"]) == (0, 4)


# -- pools sharing an account ------------------------------------------------------------------


async def test_two_pools_share_lanes_and_one_budget(redis_server: RedisServer) -> None:
    """Two pools on one account: the server never sees more than its lanes; one budget holds."""
    account = new_account("pools")
    async with Emulator(credits=10_000, lanes=3, latency=0.002) as emu:

        async def run(prefix: str) -> Any:
            backend = RedisBackend.from_url(
                redis_server.url, account=account, request_timeout=0.5, lease=2.0
            )
            async with (
                SearchCans(emu.api_key, base_url=emu.base_url, timeout=0.5) as client,
                client.lanes(budget=90, backend=backend) as pool,
            ):
                return await pool.run_batch(client.search, [f"{prefix}{i}" for i in range(80)])

        first, second = await asyncio.gather(run("a"), run("b"))
        stats = emu.stats()
    assert stats.peak_in_flight <= 3
    assert 1010 not in stats.refusals
    assert stats.charged == 90 == first.succeeded + second.succeeded
    assert ledger(redis_server, account)["C"] == 90
    assert set(emu.charges_by_subject().values()) == {1}


async def test_lost_state_stops_the_work_with_a_clear_error(
    redis_server: RedisServer, make: Any
) -> None:
    """If the account's keys vanish (a restart without persistence), steps fail, saying so."""
    backend = await make()
    permit = granted(await backend.acquire(1))
    redis_server.command("DEL", *account_keys(make.account))
    with pytest.raises(RedisBackendError, match="gone from Redis"):
        await backend.acquire(1)
    await backend.release(permit, committed=1, possibly_charged=0)  # logged, not raised
    with pytest.raises(RedisBackendError, match="gone from Redis"):
        await backend.mark()


def test_the_redis_modules_public_names_are_pinned() -> None:
    """searchcans_async.redis exports exactly these names, each documented."""
    import searchcans_async.redis as public  # noqa: PLC0415  # imported where the test needs it

    assert public.__all__ == ["RedisBackend", "RedisBackendError", "open_backend"]
    assert public.__doc__
    assert ">>>" in public.__doc__
    for name in public.__all__:
        assert getattr(public, name).__doc__, name
    for name, member in vars(RedisBackend).items():
        if not name.startswith("_") and callable(member):
            assert member.__doc__, name


def test_keys_helper_matches_the_scripts_layout() -> None:
    """The key list every script takes is in common.lua's order."""
    keys = account_keys("team")
    assert keys[0] == "{sc:team}:ledger"
    assert len(keys) == 9
