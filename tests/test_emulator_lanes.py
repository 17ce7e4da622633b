"""The emulator's lanes, live changes, latency and its server-side timeout."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import pytest
from emulator_support import ACCOUNT, READER, SEARCH, send, until

from searchcans_async.testing import AccountSpec, Emulator, KeySpec, Latency


async def post(
    session: aiohttp.ClientSession,
    emu: Emulator,
    body: Any,
    path: str = SEARCH,
    key: str | None = None,
) -> tuple[int, int]:
    reply = await send(session, emu.base_url + path, body, key=key or emu.api_key)
    return reply.status, reply.json()["code"]


def search(index: int) -> dict[str, Any]:
    return {"s": f"query {index}", "t": "google"}


async def test_oversending_gets_1010_and_peak_in_flight_stays_at_the_lanes(
    session: aiohttp.ClientSession,
) -> None:
    """Six requests on two lanes: two run, four get 1010 at once, uncharged; peak_offered is 6."""
    async with Emulator(lanes=2, latency=0) as emu:
        emu.pause()
        calls = [asyncio.create_task(post(session, emu, search(i))) for i in range(6)]
        await until(lambda: emu.stats().refusals.get(1010) == 4)
        stats = emu.stats()
        assert (stats.in_flight, stats.peak_in_flight, stats.peak_offered) == (2, 2, 6)
        emu.resume()
        answers = sorted(await asyncio.gather(*calls))
        stats = emu.stats()
    assert answers == [(200, 0)] * 2 + [(200, 1010)] * 4
    assert (stats.charged, stats.successes, stats.requests, stats.in_flight) == (2, 2, 6, 0)
    assert all(record.credits_charged == 0 for record in emu.log if record.code == 1010)


async def test_clients_that_respect_the_lanes_never_see_1010(
    session: aiohttp.ClientSession,
) -> None:
    """A client capped at the lane count gets no 1010: a lane is free before the answer is sent."""
    lanes = asyncio.Semaphore(3)

    async def one(index: int) -> tuple[int, int]:
        async with lanes:
            return await post(session, emu, search(index))

    async with Emulator(lanes=3, latency=0) as emu:
        answers = await asyncio.gather(*(one(index) for index in range(90)))
        stats = emu.stats()
    assert set(answers) == {(200, 0)}
    assert stats.peak_in_flight <= 3
    assert stats.peak_offered <= 3
    assert 1010 not in stats.refusals


async def test_overlapping_requests_show_in_the_records(session: aiohttp.ClientSession) -> None:
    """Records carry started/finished sequence numbers that prove overlap."""
    async with Emulator(lanes=3, latency=0) as emu:
        emu.pause()
        calls = [asyncio.create_task(post(session, emu, search(i))) for i in range(3)]
        await until(lambda: emu.stats().in_flight == 3)
        emu.resume()
        await asyncio.gather(*calls)
    first, second, third = sorted(emu.log, key=lambda record: record.started)
    assert first.started < second.started < third.started < first.finished
    assert emu.stats().peak_in_flight == 3


async def test_set_lanes_takes_effect_at_once(session: aiohttp.ClientSession) -> None:
    """Raising lanes admits more at once; lowering them refuses new requests, not running ones."""
    async with Emulator(lanes=1, latency=0) as emu:
        emu.pause()
        first = asyncio.create_task(post(session, emu, search(1)))
        await until(lambda: emu.stats().in_flight == 1)
        assert await post(session, emu, search(2)) == (200, 1010)
        emu.set_lanes(3)
        others = [asyncio.create_task(post(session, emu, search(i))) for i in (3, 4)]
        await until(lambda: emu.stats().in_flight == 3)
        emu.set_lanes(1)
        assert await post(session, emu, search(5)) == (200, 1010)
        emu.resume()
        assert set(await asyncio.gather(first, *others)) == {(200, 0)}
        assert await post(session, emu, search(6)) == (200, 0)
        stats = emu.stats()
    assert (stats.lanes, stats.peak_in_flight, stats.refusals[1010]) == (1, 3, 2)
    with pytest.raises(ValueError, match="lanes"):
        emu.set_lanes(-1)


async def test_zero_lanes_refuse_everything(session: aiohttp.ClientSession) -> None:
    """An account with 0 lanes answers 1010 to every billable request."""
    async with Emulator(lanes=0, latency=0) as emu:
        assert await post(session, emu, search(1)) == (200, 1010)
        assert emu.stats().peak_offered == 1


async def test_the_account_endpoint_takes_no_lane(session: aiohttp.ClientSession) -> None:
    """/api/user/key answers while every lane is busy."""
    async with Emulator(lanes=1, latency=0) as emu:
        emu.pause()
        running = asyncio.create_task(post(session, emu, search(1)))
        await until(lambda: emu.stats().in_flight == 1)
        assert await post(session, emu, {}, ACCOUNT) == (200, 0)
        emu.resume()
        assert await running == (200, 0)


async def test_deactivating_a_key_takes_effect_at_once(session: aiohttp.ClientSession) -> None:
    """A deactivated key gets 403 from its next request; the account's other keys still work."""
    spec = AccountSpec(keys=[KeySpec(name="one"), KeySpec(name="two")])
    async with Emulator([spec], latency=0) as emu:
        one, two = emu.keys
        assert await post(session, emu, search(1), key=one) == (200, 0)
        emu.set_key_active(one, False)
        assert await post(session, emu, search(2), key=one) == (403, 403)
        assert await post(session, emu, search(3), key=two) == (200, 0)
        emu.set_key_active(one, True)
        assert await post(session, emu, search(4), key=one) == (200, 0)
        assert dict(emu.stats().charged_by_key) == {"one": 2, "two": 1}


async def test_a_latency_above_d_answers_1001_after_d(session: aiohttp.ClientSession) -> None:
    """When the drawn latency exceeds the request's d (ms), the answer is 1001, uncharged."""
    async with Emulator(latency=5.0) as emu:
        assert await post(session, emu, {**search(1), "d": 5}) == (200, 1001)
        stats = emu.stats()
    assert (stats.charged, stats.refusals[1001], stats.in_flight) == (0, 1, 0)
    assert emu.log[0].latency == 5.0


async def test_w_keeps_the_lane_busy_on_top_of_the_latency(session: aiohttp.ClientSession) -> None:
    """w (ms) adds to the server's time, so w above d times out with 1001."""
    async with Emulator(latency=0) as emu:
        body = {"s": "https://x.example", "t": "url", "mode": 1, "w": 50, "d": 5}
        assert await post(session, emu, body, READER) == (200, 1001)
        assert await post(session, emu, {**body, "w": 2, "d": 1000}, READER) == (200, 0)
    assert [record.latency for record in emu.log] == [0.05, 0.002]


async def latencies(session: aiohttp.ClientSession, emu: Emulator) -> list[float | None]:
    for index in range(4):
        await post(session, emu, search(index))
        await post(session, emu, {"s": "https://x.example", "t": "url"}, READER)
    await post(session, emu, {}, ACCOUNT)
    return [record.latency for record in emu.log]


async def test_random_latency_is_replayed_by_its_seed(session: aiohttp.ClientSession) -> None:
    """Uniform and lognormal latencies draw the same values for the same seed."""
    latency = Latency.uniform(0.0005, 0.002).per_endpoint(url=Latency.lognormal(0.001, 0.3))
    runs = []
    for seed in (1, 1, 2):
        async with Emulator(latency=latency, seed=seed) as emu:
            runs.append(await latencies(session, emu))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    uniform_draws = runs[0][0:8:2] + runs[0][8:]
    assert all(value is not None and 0.0005 <= value <= 0.002 for value in uniform_draws)


async def test_per_endpoint_and_live_latency(session: aiohttp.ClientSession) -> None:
    """Latency can differ per endpoint, and set_latency changes it for the next requests."""
    async with Emulator(latency=Latency.fixed(0).per_endpoint(url=0.002, account=0.001)) as emu:
        await post(session, emu, search(1))
        await post(session, emu, {"s": "https://x.example", "t": "url"}, READER)
        await post(session, emu, {}, ACCOUNT)
        emu.set_latency(0.0015)
        await post(session, emu, search(2))
    assert [record.latency for record in emu.log] == [0.0, 0.002, 0.001, 0.0015]


def test_latency_configuration_is_checked() -> None:
    """Impossible latencies raise ValueError; means and draws behave as documented."""
    with pytest.raises(ValueError, match="low <= high"):
        Latency.uniform(2, 1)
    with pytest.raises(ValueError, match="median"):
        Latency.lognormal(0, 1)
    with pytest.raises(ValueError, match=">= 0"):
        Latency.fixed(-1)
    with pytest.raises(ValueError, match="endpoint"):
        Latency.fixed(0).per_endpoint(searches=1)
    with pytest.raises(ValueError, match="distribution"):
        Latency("normal", (1.0,))
    with pytest.raises(ValueError, match="random generator"):
        Latency.uniform(0, 1).draw()
    assert Latency.uniform(1, 3).mean == 2
    assert Latency.fixed(0.5).is_random is False
    assert Latency.lognormal(1, 0).draw(random.Random(0)) == pytest.approx(1.0)
    merged = Latency.fixed(0).per_endpoint(url=1).per_endpoint(account=2)
    assert [merged.for_endpoint(name).mean for name in ("search", "url", "account")] == [0, 1, 2]


async def test_a_client_that_gives_up_is_still_charged(session: aiohttp.ClientSession) -> None:
    """A client deadline during the server's work does not cancel it: the server charges."""
    async with Emulator(latency=0) as emu:
        emu.pause()
        with pytest.raises(TimeoutError):
            await session.post(
                emu.base_url + SEARCH,
                json=search(1),
                headers={"Authorization": f"Bearer {emu.api_key}"},
                timeout=aiohttp.ClientTimeout(total=0.05),
            )
        await until(lambda: emu.stats().in_flight == 1)
        emu.resume()
        await until(lambda: emu.stats().successes == 1)
        stats = emu.stats()
    assert (stats.charged, stats.in_flight, emu.log[0].http_status) == (1, 0, 200)


async def test_log_limit_keeps_the_latest_records(session: aiohttp.ClientSession) -> None:
    """log_limit bounds the log to the newest records; stats still count everything."""
    async with Emulator(latency=0, log_limit=2) as emu:
        for index in range(5):
            await post(session, emu, search(index))
        assert [record.ordinal for record in emu.log] == [4, 5]
        assert emu.stats().successes == 5
