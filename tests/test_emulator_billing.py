"""The emulator's billing: costs, permanent credits, key quotas, 402s and live credit changes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from emulator_support import ACCOUNT, READER, SEARCH, send, until

from searchcans_async.testing import AccountSpec, Emulator, EmulatorCosts, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

URL = "https://site.example/page"


async def post(
    session: aiohttp.ClientSession, emu: Emulator, path: str, body: Any, key: str | None = None
) -> tuple[int, Any]:
    reply = await send(session, emu.base_url + path, body, key=key or emu.api_key)
    return reply.status, reply.json()


async def test_search_costs_one_credit_per_page(session: aiohttp.ClientSession) -> None:
    """page=N costs N credits; p=K costs 1; every engine costs 1 per page."""
    async with Emulator(credits=100, latency=0) as emu:
        await post(session, emu, SEARCH, {"s": "a", "t": "google", "page": 3})
        await post(session, emu, SEARCH, {"s": "b", "t": "google", "p": 5})
        await post(session, emu, SEARCH, {"s": "c", "t": "google_news"})
        assert [record.credits_charged for record in emu.log] == [3, 1, 1]
        assert (emu.stats().charged, emu.stats().remain) == (5, 95)


@pytest.mark.parametrize(("proxy", "cost"), [(None, 2), (0, 2), (1, 4), (2, 7), (3, 12)])
async def test_reader_costs_two_plus_the_proxy_tier(
    session: aiohttp.ClientSession, proxy: int | None, cost: int
) -> None:
    """Reader costs 2, 4, 7 or 12 credits for proxy tiers 0 to 3."""
    body: dict[str, Any] = {"s": URL, "t": "url"}
    if proxy is not None:
        body["proxy"] = proxy
    async with Emulator(credits=100, latency=0) as emu:
        status, envelope = await post(session, emu, READER, body)
        assert (status, envelope["code"]) == (200, 0)
        assert emu.stats().remain == 100 - cost


async def test_reader_extras_cost_what_the_costs_say(session: aiohttp.ClientSession) -> None:
    """mode, captcha, file and image extras are configurable (default 0)."""
    costs = EmulatorCosts(reader_base=3, proxy=(0, 1, 2, 3), mode=10, captcha=20, file=40, image=80)
    body = {"s": URL, "t": "url", "proxy": 2, "mode": 1, "captcha": 1, "file": 1, "image": 1}
    async with Emulator(credits=1000, costs=costs, latency=0) as emu:
        await post(session, emu, READER, body)
        await post(session, emu, READER, {"s": URL, "t": "url"})
        assert [record.credits_charged for record in emu.log] == [155, 3]
    assert EmulatorCosts().reader(mode=True, captcha=True, file=True, image=True) == 2


async def test_permanent_credits_are_consumed_first(session: aiohttp.ClientSession) -> None:
    """Permanent credits go before paid ones and are counted in permanentCurrent only."""
    async with Emulator([AccountSpec(credits=10, permanent_credits=3)], latency=0) as emu:
        await post(session, emu, READER, {"s": URL, "t": "url", "proxy": 1})
        _, envelope = await post(session, emu, ACCOUNT, {})
    data = envelope["data"]
    assert (data["remain"], data["permanentRemain"], data["permanentCurrent"]) == (9, 0, 3)
    assert (data["current"], data["month"], data["total"], data["permanentTotal"]) == (1, 1, 10, 3)
    assert emu.stats().permanent_remain == 0


@pytest.mark.parametrize(
    ("counters", "current", "permanent_current"),
    [("split", 1, 3), ("combined", 4, 3), ("frozen", 0, 0)],
)
async def test_the_consumption_counters_move_as_configured(
    session: aiohttp.ClientSession, counters: str, current: int, permanent_current: int
) -> None:
    """WireOptions.counters: split as published, combined into current, or frozen."""
    spec = AccountSpec(credits=10, permanent_credits=3)
    async with Emulator([spec], latency=0, wire=WireOptions(counters=counters)) as emu:
        await post(session, emu, READER, {"s": URL, "t": "url", "proxy": 1})
        _, envelope = await post(session, emu, ACCOUNT, {})
    data = envelope["data"]
    assert (data["current"], data["permanentCurrent"]) == (current, permanent_current)
    assert data["remain"] == 9  # billing never depends on the counters


async def test_shared_and_capped_keys_are_both_charged_correctly(
    session: aiohttp.ClientSession,
) -> None:
    """A key without own quota draws on the account; a capped key also spends its own remain."""
    spec = AccountSpec(credits=50, keys=[KeySpec(name="shared"), KeySpec(name="capped", quota=10)])
    async with Emulator([spec], latency=0) as emu:
        shared, capped = emu.keys
        await post(session, emu, READER, {"s": URL, "t": "url", "proxy": 1}, key=shared)
        await post(session, emu, READER, {"s": URL, "t": "url", "proxy": 2}, key=capped)
        await post(session, emu, SEARCH, {"s": "q", "t": "google", "page": 2}, key=capped)
        _, envelope = await post(session, emu, ACCOUNT, {}, key=capped)
        stats = emu.stats()
    keys = {key["name"]: key for key in envelope["data"]["keys"]}
    assert (keys["shared"]["total"], keys["shared"]["remain"]) == (-1, 0)
    assert (keys["capped"]["total"], keys["capped"]["remain"]) == (10, 1)
    assert envelope["data"]["remain"] == 50 - 4 - 7 - 2
    assert dict(stats.charged_by_key) == {"shared": 4, "capped": 9}
    assert [record.key_name for record in emu.log] == ["shared", "capped", "capped", "capped"]


async def test_402_when_the_account_cannot_cover_the_cost(session: aiohttp.ClientSession) -> None:
    """A call costing more than the account's remain gets HTTP 402 code 402, uncharged."""
    async with Emulator(credits=3, latency=0) as emu:
        status, envelope = await post(session, emu, READER, {"s": URL, "t": "url", "proxy": 1})
        assert (status, envelope["code"]) == (402, 402)
        assert "costs 4" in envelope["msg"]
        for _ in range(3):
            assert (await post(session, emu, SEARCH, {"s": "q", "t": "google"}))[0] == 200
        status, _ = await post(session, emu, SEARCH, {"s": "q", "t": "google"})
        stats = emu.stats()
    assert status == 402
    assert (stats.remain, stats.charged, stats.successes, stats.refusals[402]) == (0, 3, 3, 2)


async def test_402_when_the_keys_own_quota_is_short(session: aiohttp.ClientSession) -> None:
    """A capped key is refused with 402 once its quota is spent; other keys still work."""
    spec = AccountSpec(credits=100, keys=[KeySpec(name="capped", quota=2), KeySpec(name="open")])
    async with Emulator([spec], latency=0) as emu:
        capped, open_key = emu.keys
        assert (await post(session, emu, READER, {"s": URL, "t": "url"}, key=capped))[0] == 200
        status, envelope = await post(session, emu, SEARCH, {"s": "q", "t": "google"}, key=capped)
        assert (status, envelope["code"]) == (402, 402)
        assert "own quota has 0" in envelope["msg"]
        assert (await post(session, emu, SEARCH, {"s": "q", "t": "google"}, key=open_key))[0] == 200
        assert emu.stats().remain == 97


async def test_credits_are_never_overspent_by_concurrent_requests(
    session: aiohttp.ClientSession,
) -> None:
    """Requests admitted together are charged only while credits last; the rest get 402."""
    async with Emulator(credits=5, lanes=10, latency=0) as emu:
        emu.pause()
        calls = [
            asyncio.create_task(post(session, emu, SEARCH, {"s": f"q{index}", "t": "google"}))
            for index in range(8)
        ]
        await until(lambda: emu.stats().in_flight == 8)
        emu.resume()
        statuses = sorted(status for status, _ in await asyncio.gather(*calls))
        stats = emu.stats()
    assert statuses == [200] * 5 + [402] * 3
    assert (stats.remain, stats.charged, stats.peak_in_flight) == (0, 5, 8)


async def test_a_drain_while_running_turns_the_success_into_402(
    session: aiohttp.ClientSession,
) -> None:
    """Credits drained by another consumer mid-request are gone: the request gets 402."""
    async with Emulator(credits=10, latency=0) as emu:
        emu.pause()
        call = asyncio.create_task(post(session, emu, READER, {"s": URL, "t": "url"}))
        await until(lambda: emu.stats().in_flight == 1)
        assert emu.drain(9) == 9
        emu.resume()
        status, _ = await call
        stats = emu.stats()
    assert status == 402
    assert (stats.remain, stats.charged, stats.external_drain, stats.in_flight) == (1, 0, 9, 0)


async def test_drain_and_add_credits_change_the_account_live(
    session: aiohttp.ClientSession,
) -> None:
    """drain() is an external consumer (not any key's charge, clamped at 0); add_credits tops up."""
    async with Emulator([AccountSpec(credits=20, permanent_credits=5)], latency=0) as emu:
        assert emu.drain(7) == 7
        _, envelope = await post(session, emu, ACCOUNT, {})
        assert (envelope["data"]["remain"], envelope["data"]["permanentRemain"]) == (18, 0)
        assert emu.drain(100) == 18
        assert (await post(session, emu, SEARCH, {"s": "q", "t": "google"}))[0] == 402
        emu.add_credits(30)
        assert (await post(session, emu, SEARCH, {"s": "q", "t": "google"}))[0] == 200
        _, envelope = await post(session, emu, ACCOUNT, {})
        stats = emu.stats()
    assert (envelope["data"]["remain"], envelope["data"]["total"]) == (29, 50)
    assert (envelope["data"]["current"], envelope["data"]["permanentCurrent"]) == (21, 5)
    assert (stats.external_drain, stats.charged, dict(stats.charged_by_key)) == (
        25,
        1,
        {"default": 1},
    )
    with pytest.raises(ValueError, match="drain"):
        emu.add_credits(-1)
    with pytest.raises(ValueError, match="add_credits"):
        emu.drain(-1)


async def test_charges_by_subject_counts_every_charge(session: aiohttp.ClientSession) -> None:
    """charges_by_subject shows a subject charged twice, and ignores uncharged answers."""
    async with Emulator(credits=3, latency=0) as emu:
        for subject in ("a", "b", "a", "c", "d"):
            await post(session, emu, SEARCH, {"s": subject, "t": "google"})
        counts = emu.charges_by_subject()
    assert counts == {"a": 2, "b": 1}


async def test_no_results_can_be_configured_as_charged(session: aiohttp.ClientSession) -> None:
    """EmulatorCosts(no_results_charged=True) charges 9999 answers without counting a success."""
    costs = EmulatorCosts(no_results_charged=True)
    async with Emulator(costs=costs, no_results=["empty"], latency=0) as emu:
        _, envelope = await post(session, emu, SEARCH, {"s": "empty", "t": "google", "page": 2})
        stats = emu.stats()
    assert envelope["code"] == 9999
    assert (stats.charged, stats.successes, stats.refusals[9999]) == (2, 0, 1)
    assert emu.charges_by_subject() == {"empty": 1}


async def test_accounts_are_billed_separately(session: aiohttp.ClientSession) -> None:
    """Each key bills its own account; stats and charges are per account."""
    accounts = [
        AccountSpec("alpha", credits=10, lanes=1),
        AccountSpec("beta", credits=20, lanes=2, keys=[KeySpec(name="b1")]),
    ]
    async with Emulator(accounts, latency=0) as emu:
        await post(session, emu, SEARCH, {"s": "x", "t": "google"}, key=emu.key_for("default"))
        await post(session, emu, READER, {"s": URL, "t": "url"}, key=emu.key_for("b1", "beta"))
        _, envelope = await post(session, emu, ACCOUNT, {}, key=emu.key_for("b1", "beta"))
        assert (emu.stats().remain, emu.stats("alpha").remain, emu.stats("beta").remain) == (
            9,
            9,
            18,
        )
        assert (envelope["data"]["remain"], envelope["data"]["concurrent"]) == (18, 2)
        assert emu.charges_by_subject("beta") == {URL: 1}
        assert [record.account for record in emu.log] == ["alpha", "beta", "beta"]
        with pytest.raises(KeyError, match="gamma"):
            emu.stats("gamma")
        with pytest.raises(KeyError, match="b2"):
            emu.key_for("b2", "beta")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Emulator([]), "at least one"),
        (lambda: Emulator([AccountSpec("a"), AccountSpec("a")]), "unique"),
        (
            lambda: Emulator(
                [
                    AccountSpec(
                        keys=[
                            KeySpec("sk_same_0123456789", name="x"),
                            KeySpec("sk_same_0123456789", name="y"),
                        ]
                    )
                ]
            ),
            "twice",
        ),
        (lambda: AccountSpec(keys=[]), "at least one KeySpec"),
        (lambda: AccountSpec(keys=[KeySpec(), KeySpec()]), "duplicate key names"),
        (lambda: AccountSpec(credits=-1), "credits"),
        (lambda: KeySpec(quota=-1), "quota"),
        (lambda: KeySpec(" "), "non-empty"),
        (lambda: EmulatorCosts(proxy=(1, 2)), "four"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_error(
    make: Callable[[], object], message: str
) -> None:
    """Impossible accounts, keys and costs raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert "sk_same_0123456789" not in str(error.value)
