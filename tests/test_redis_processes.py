"""Several OS processes sharing one account through Redis, on the emulator.

The emulator runs in the test process; each worker is a separate Python process (see
``redis_support.py``) with its own pool and RedisBackend on the same account name. The
assertions come from the emulator's own records (what the server saw and billed) and
from Redis' state. Killing, pausing and stalling are real: SIGKILL, SIGSTOP/SIGCONT and
``CLIENT PAUSE``. Leases are a second or two; waiting for one to end is the only wait
on real time, and what is asserted is state, not elapsed time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest
from redis_support import (
    RedisServer,
    Worker,
    ledger,
    new_account,
    redis_server_fixture,
    server_ms,
)

from searchcans_async import SearchCans
from searchcans_async.redis import RedisBackend
from searchcans_async.testing import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals"),
]

redis_server = redis_server_fixture()


def leases(server: RedisServer, account: str) -> list[tuple[bytes, float]]:
    pairs: list[tuple[bytes, float]] = server.command(
        "ZRANGE", f"{{sc:{account}}}:leases", 0, -1, "WITHSCORES"
    )
    return pairs


async def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "state not reached in time"
        await asyncio.sleep(0.01)


def worker_config(emu: Emulator, server: RedisServer, account: str, **options: Any) -> dict:
    return {
        "redis": server.url,
        "account": account,
        "base_url": emu.base_url,
        "key": emu.api_key,
        **options,
    }


def requests_from(emu: Emulator, prefix: str) -> int:
    return sum(1 for record in emu.log if (record.subject or "").startswith(prefix))


async def test_four_processes_share_the_lanes_and_one_budget(redis_server: RedisServer) -> None:
    """4 processes x 4 lanes each on a 4-lane account: never more than 4 in flight, budget exact."""
    account = new_account("four")
    async with Emulator(credits=10_000, lanes=4, latency=0.01) as emu:
        configs = [
            worker_config(emu, redis_server, account, items=100, budget=150, go=True, prefix=p)
            for p in "abcd"
        ]
        workers = [Worker(config) for config in configs]
        try:
            for worker in workers:
                await asyncio.to_thread(worker.wait_ready)
            for worker in workers:
                worker.go()
            reports = [await asyncio.to_thread(worker.report) for worker in workers]
        finally:
            for worker in workers:
                worker.reap()
        stats = emu.stats()
    succeeded = [report["succeeded"] for report in reports]
    assert stats.peak_in_flight <= 4
    assert 1010 not in stats.refusals
    assert stats.charged == 150 == sum(succeeded)
    assert sum(report["committed"] for report in reports) == 150
    assert all(report["stop_reason"] == "budget" for report in reports)
    assert min(succeeded) >= 15, succeeded  # first come, first served: nobody starves
    state = ledger(redis_server, account)
    assert (state["C"], state["R"], state["P"] - state["S"]) == (150, 0, 0)


async def test_a_killed_holders_lanes_return_and_its_credits_are_never_refunded(
    redis_server: RedisServer,
) -> None:
    """kill -9 mid-lease: lanes back within one lease, its calls in doubt until a reading."""
    account = new_account("kill")
    lease_ms, budget = 1500, 40
    async with Emulator(credits=10_000, lanes=3, latency=0.4) as emu:
        config = worker_config(
            emu, redis_server, account, items=200, budget=budget, lease=lease_ms / 1000
        )
        with Worker(config) as holder:
            await asyncio.to_thread(holder.wait_ready)
            await eventually(
                lambda: emu.stats().in_flight == 3 and len(leases(redis_server, account)) == 3
            )
            before = ledger(redis_server, account)
            killed_at = server_ms(redis_server)
            deadlines = [score for _, score in leases(redis_server, account)]
            os.kill(holder.process.pid, signal.SIGKILL)
            holder.reap()
        assert before["R"] == 3
        assert max(deadlines) <= killed_at + lease_ms  # each lane is back within one lease
        # Wait out the leases (the server finishes and bills the three calls meanwhile).
        await asyncio.sleep((max(deadlines) - killed_at) / 1000 + 0.1)
        await eventually(lambda: emu.stats().in_flight == 0)
        billed_while_dead = emu.stats().charged - before["C"]
        assert billed_while_dead == 3
        emu.set_latency(0.005)  # the rest of the run need not be slow
        backend = RedisBackend.from_url(
            redis_server.url, account=account, request_timeout=0.5, lease=1.5
        )
        async with (
            SearchCans(emu.api_key, base_url=emu.base_url, timeout=0.5) as client,
            client.lanes(budget=budget, recheck_every=None, backend=backend) as pool,
        ):
            # Joining ran the housekeeping: the lanes are free, the reservations in doubt.
            state = ledger(redis_server, account)
            assert leases(redis_server, account) == []
            in_doubt = state["P"] - state["S"]
            assert (state["R"], state["C"], in_doubt) == (0, before["C"], 3)
            credits = backend.credits()
            assert credits.left + state["R"] + in_doubt + state["C"] == budget
            assert state["C"] + in_doubt == emu.stats().charged  # nothing billed is missing
            # A reading sent after the leases ended: the three were billed, so they stay.
            await pool.recheck()
            assert backend.credits().possibly_charged == 3
            report = await pool.run_batch(client.search, [f"after{i}" for i in range(100)])
        stats = emu.stats()
    assert report.stop_reason.value == "budget"
    assert stats.charged == budget
    assert stats.peak_in_flight <= 3
    assert 1010 not in stats.refusals


async def test_a_holder_paused_past_its_lease_loses_its_lanes_to_the_others(
    redis_server: RedisServer,
) -> None:
    """SIGSTOP past the lease: the other process gets every lane; nothing overlaps or is lost."""
    account = new_account("stop")
    async with Emulator(credits=10_000, lanes=3, latency=0.05) as emu:
        options = {"items": 5_000, "duration": 4.5, "go": True, "lease": 1.0}
        paused = Worker(worker_config(emu, redis_server, account, prefix="a", **options))
        other = Worker(worker_config(emu, redis_server, account, prefix="b", **options))
        with paused, other:
            for worker in (paused, other):
                await asyncio.to_thread(worker.wait_ready)
            # The paused one runs alone first, so that it holds the lanes when it stops:
            # stopped while its three calls are in flight (the emulator runs in this loop,
            # so none is answered between the check and the signal), never in the moment
            # between two items when it holds none (the fixed latency keeps its lanes in
            # step, so that moment is the same for all three).
            paused.go()
            await eventually(lambda: requests_from(emu, "a-") >= 10 and emu.stats().in_flight == 3)
            os.kill(paused.process.pid, signal.SIGSTOP)
            other.go()
            try:
                stopped_at = time.monotonic()
                seen: list[int] = []
                while time.monotonic() - stopped_at < 2.2:
                    seen.append(emu.stats().in_flight)
                    await asyncio.sleep(0.01)
                sent_by_paused_while_stopped = requests_from(emu, "a-")
                state = ledger(redis_server, account)
            finally:
                os.kill(paused.process.pid, signal.SIGCONT)
            reports = [await asyncio.to_thread(w.report) for w in (paused, other)]
        stats = emu.stats()
    # After its leases ended (within 1 s), the other process held all three lanes.
    assert max(seen[-80:]) == 3
    # The paused holder's lost leases went into doubt, not back to the budget.
    assert state["P"] >= 1
    assert stats.peak_in_flight <= 3
    # A call the paused process had checked its lease for just before it stopped may go
    # out on SIGCONT (nothing can fence a frozen process): the server refuses it as 1010,
    # never charged, at most one per lane that process held.
    assert stats.refusals.get(1010, 0) <= 3
    assert requests_from(emu, "a-") > sent_by_paused_while_stopped  # it carried on after
    # Every billed call is in a report; the shared ledger counts it, settled or in doubt.
    assert sum(report["committed"] for report in reports) == stats.charged
    final = ledger(redis_server, account)
    assert final["C"] + final["P"] - final["S"] >= stats.charged


async def test_a_stalled_redis_is_ridden_out_or_stops_the_batch_cleanly(
    redis_server: RedisServer,
) -> None:
    """CLIENT PAUSE past a lease: one worker waits it out, one gives up with a typed error."""
    account = new_account("stall")
    async with Emulator(credits=10_000, lanes=3, latency=0.02) as emu:
        common = {"items": 5_000, "duration": 3.5, "go": True, "lease": 1.0,
                  "socket_timeout": 0.3}  # fmt: skip
        patient = Worker(
            worker_config(emu, redis_server, account, prefix="p", unavailable_after=5.0, **common)
        )
        hasty = Worker(
            worker_config(emu, redis_server, account, prefix="h", unavailable_after=0.5, **common)
        )
        with patient, hasty:
            for worker in (patient, hasty):
                await asyncio.to_thread(worker.wait_ready)
                worker.go()
            await eventually(lambda: requests_from(emu, "p-") >= 10 and requests_from(emu, "h-"))
            redis_server.command("CLIENT", "PAUSE", 1500, "ALL")
            reports = [await asyncio.to_thread(w.report) for w in (patient, hasty)]
        stats = emu.stats()
    patient_report, hasty_report = reports
    assert patient_report["stop_reason"] == "cancelled"  # its own timer, after the stall
    assert hasty_report["stop_reason"] == "error"
    assert "RedisBackendError" in hasty_report["error"]
    assert "127.0.0.1" not in hasty_report["error"]
    assert stats.peak_in_flight <= 3
    assert 1010 not in stats.refusals
    assert sum(report["committed"] for report in reports) == stats.charged
    final = ledger(redis_server, account)
    assert final["C"] + final["P"] - final["S"] >= stats.charged
