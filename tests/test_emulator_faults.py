"""The emulator's injected faults: what each answers, and whether the server charged."""

from __future__ import annotations

import contextlib
import json
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from emulator_support import ACCOUNT, READER, SEARCH, send

from searchcans_async.testing import FAULT_KINDS, Emulator, Fault, Faults

QUERY = {"s": "faulty", "t": "google"}


async def post(
    session: aiohttp.ClientSession,
    emu: Emulator,
    body: Any = QUERY,
    path: str = SEARCH,
    *,
    key: str | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> tuple[int, dict[str, str], bytes]:
    reply = await send(session, emu.base_url + path, body, key=key or emu.api_key, timeout=timeout)
    return reply.status, reply.headers, reply.body


def emulator_with(fault: Fault, **options: Any) -> Emulator:
    """An emulator whose first billable request gets `fault`."""
    return Emulator(faults=Faults(script={1: fault}), latency=0, **options)


UNCHARGED = [
    (Fault.lane_busy(), 200, 1010),
    (Fault.rate_limited(), 429, 429),
    (Fault.server_error(500), 500, 500),
    (Fault.server_error(502), 502, 502),
    (Fault.server_error(), 503, 503),
    (Fault.server_error(504), 504, 504),
    (Fault.api_timeout(), 200, 1001),
    (Fault.api_timeout(-1001), 200, -1001),
    *[(Fault.throttled(code), 200, code) for code in (1002, 1003, 1004, 1005, 1006, 1009)],
    (Fault.network_code(), 200, 443),
    (Fault.network_code(10054), 200, 10054),
    (Fault.no_results(), 200, 9999),
    (Fault.no_results(-9999), 200, -9999),
    (Fault.bad_request(), 400, 400),
    (Fault.unknown_code(), 200, 7777),
    (Fault.unknown_code(31337), 200, 31337),
]


@pytest.mark.parametrize(("fault", "status", "code"), UNCHARGED, ids=repr)
async def test_uncharged_faults_answer_their_code_and_cost_nothing(
    session: aiohttp.ClientSession, fault: Fault, status: int, code: int
) -> None:
    """Refusal faults answer their status and envelope code at once, uncharged, then clear."""
    async with emulator_with(fault) as emu:
        answer_status, _, body = await post(session, emu)
        envelope = json.loads(body)
        assert (answer_status, envelope["code"]) == (status, code)
        assert set(envelope) == {"code", "data", "msg", "requestId"}
        assert envelope["data"] == ([] if fault.kind == "no_results" else None)
        assert (await post(session, emu))[0] == 200
        stats = emu.stats()
    assert (stats.charged, stats.successes, stats.requests) == (1, 1, 2)
    assert dict(stats.faults) == {fault.kind: 1}
    assert dict(stats.refusals) == {code: 1}
    assert [record.fault for record in emu.log] == [fault.kind, None]
    assert emu.log[0].credits_charged == 0
    assert not fault.charged


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.rate_limited(2), "2"),
        (Fault.rate_limited(0.05), "0.05"),
        (Fault.rate_limited("soon"), "soon"),
        (Fault.rate_limited(None), None),
    ],
    ids=repr,
)
async def test_rate_limited_sends_retry_after_as_configured(
    session: aiohttp.ClientSession, fault: Fault, expected: str | None
) -> None:
    """429 carries Retry-After in seconds, as garbage, or not at all."""
    async with emulator_with(fault) as emu:
        status, headers, _ = await post(session, emu)
    assert status == 429
    assert headers.get("Retry-After") == expected


async def test_rate_limited_can_send_an_http_date(session: aiohttp.ClientSession) -> None:
    """Retry-After can be an HTTP-date, a parseable GMT date."""
    async with emulator_with(Fault.rate_limited(30, http_date=True)) as emu:
        _, headers, _ = await post(session, emu)
    assert headers["Retry-After"].endswith("GMT")
    assert parsedate_to_datetime(headers["Retry-After"]).tzinfo is not None


async def test_server_error_can_be_an_html_page(session: aiohttp.ClientSession) -> None:
    """server_error(html=True) answers an HTML error page, not an envelope."""
    async with emulator_with(Fault.server_error(502, html=True)) as emu:
        status, headers, body = await post(session, emu)
        stats = emu.stats()
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert b"502 Bad Gateway" in body
    assert (dict(stats.refusals), stats.charged) == ({502: 1}, 0)
    assert (emu.log[0].http_status, emu.log[0].code) == (502, None)


async def test_truncated_json_is_charged_and_unparseable(session: aiohttp.ClientSession) -> None:
    """truncated_json: HTTP 200, a body cut mid-JSON, and the server did charge."""
    async with emulator_with(Fault.truncated_json(keep=0.3)) as emu:
        status, _, body = await post(session, emu)
        stats = emu.stats()
    assert status == 200
    assert body.startswith(b'{"code":0')
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        json.loads(body)
    assert (stats.charged, stats.successes, dict(stats.faults)) == (1, 1, {"truncated_json": 1})
    assert emu.charges_by_subject() == {"faulty": 1}


async def test_truncated_json_can_cut_the_connection(session: aiohttp.ClientSession) -> None:
    """truncated_json(cut_connection=True): the connection closes mid-body, after the charge."""
    async with emulator_with(Fault.truncated_json(cut_connection=True)) as emu:
        with pytest.raises(aiohttp.ClientPayloadError):
            await post(session, emu)
        assert emu.stats().charged == 1


@pytest.mark.parametrize(
    ("path", "body", "field", "kind"),
    [
        (SEARCH, QUERY, "organic", str),
        (SEARCH, {"s": "x", "t": "google_news"}, "news_results", str),
        (READER, {"s": "https://x.example", "t": "url"}, "markdown", int),
    ],
)
async def test_wrong_types_are_charged_on_billable_endpoints(
    session: aiohttp.ClientSession, path: str, body: Any, field: str, kind: type
) -> None:
    """wrong_types: a success with ill-typed fields, charged like any success."""
    async with emulator_with(Fault.wrong_types()) as emu:
        status, _, raw = await post(session, emu, body, path)
        assert emu.stats().charged > 0
    envelope = json.loads(raw)
    assert (status, envelope["code"]) == (200, 0)
    assert isinstance(envelope["data"][field], kind)


async def test_wrong_types_on_the_legacy_list_and_the_account(
    session: aiohttp.ClientSession,
) -> None:
    """wrong_types turns the legacy list into a string and the account's remain into "N"."""
    faults = Faults(
        script={1: Fault.wrong_types(), 2: Fault.wrong_types()}, endpoints=["search", "account"]
    )
    async with Emulator(faults=faults, legacy_search_shape=True, latency=0) as emu:
        search = json.loads((await post(session, emu))[2])
        account = json.loads((await post(session, emu, {}, ACCOUNT))[2])
        stats = emu.stats()
    assert isinstance(search["data"], str)
    assert (account["data"]["remain"], account["data"]["concurrent"]) == ("9999", "3")
    assert (stats.charged, stats.account_calls, stats.faults["wrong_types"]) == (1, 1, 2)


@pytest.mark.parametrize("size", [None, 300_000])
async def test_huge_body_is_valid_charged_and_as_big_as_asked(
    session: aiohttp.ClientSession, size: int | None
) -> None:
    """huge_body: a valid success of about the configured size (default 2 MiB), charged."""
    fault = Fault.huge_body() if size is None else Fault.huge_body(size)
    expected = size or 2 * 1024 * 1024
    async with emulator_with(fault) as emu:
        status, _, raw = await post(session, emu)
        assert emu.stats().charged == 1
    assert status == 200
    assert expected - 16 <= len(raw) <= expected + 16
    assert len(json.loads(raw)["data"]["organic"]) == 10


async def test_reset_before_drops_the_connection_uncharged(session: aiohttp.ClientSession) -> None:
    """reset_before: no answer at all, nothing processed, nothing charged."""
    async with emulator_with(Fault.reset_before()) as emu:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(session, emu)
        assert (await post(session, emu))[0] == 200
        stats = emu.stats()
    assert (stats.requests, stats.charged, dict(stats.faults), dict(stats.refusals)) == (
        2,
        1,
        {"reset_before": 1},
        {},
    )
    record = emu.log[0]
    assert (record.http_status, record.code, record.credits_charged, record.fault) == (
        None,
        None,
        0,
        "reset_before",
    )


async def test_reset_after_charge_is_the_possibly_charged_case(
    session: aiohttp.ClientSession,
) -> None:
    """reset_after_charge: credits are deducted, then the connection drops without an answer."""
    async with emulator_with(Fault.reset_after_charge()) as emu:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(session, emu, {"s": "https://x.example", "t": "url", "proxy": 2}, READER)
        stats = emu.stats()
    assert (stats.charged, stats.successes, stats.remain, stats.in_flight) == (7, 1, 9993, 0)
    record = emu.log[0]
    assert (record.http_status, record.credits_charged, record.fault) == (
        None,
        7,
        "reset_after_charge",
    )


async def test_slow_body_arrives_whole_when_the_client_waits(
    session: aiohttp.ClientSession,
) -> None:
    """slow_body dribbles a charged success in small chunks; a patient client gets it all."""
    async with emulator_with(Fault.slow_body(chunk_size=256, chunk_delay=0.001)) as emu:
        status, _, raw = await post(session, emu)
        assert emu.stats().charged == 1
    assert (status, json.loads(raw)["code"]) == (200, 0)


async def test_slow_body_makes_a_client_deadline_fire_after_the_charge(
    session: aiohttp.ClientSession,
) -> None:
    """A client read deadline fires on slow_body; the server charged all the same."""
    async with emulator_with(Fault.slow_body(chunk_size=64, chunk_delay=0.3)) as emu:
        with pytest.raises(TimeoutError):
            await post(session, emu, timeout=aiohttp.ClientTimeout(sock_read=0.05))
        stats = emu.stats()
    assert (stats.charged, stats.in_flight, dict(stats.faults)) == (1, 0, {"slow_body": 1})


async def test_a_refusal_wins_over_a_charged_fault(session: aiohttp.ClientSession) -> None:
    """A charged fault is only injected into a would-be success; a 402 stays a 402."""
    async with emulator_with(Fault.reset_after_charge(), credits=0) as emu:
        status, _, _ = await post(session, emu)
        stats = emu.stats()
    assert (status, stats.charged, dict(stats.faults)) == (402, 0, {})


async def test_a_bad_key_wins_over_an_uncharged_fault(session: aiohttp.ClientSession) -> None:
    """Faults come after authentication: an unknown key still gets 401."""
    async with emulator_with(Fault.server_error()) as emu:
        status, _, _ = await post(session, emu, key="sk_unknown_key_123456")
        assert (status, dict(emu.stats().faults)) == (401, {})


async def test_script_ordinals_count_only_the_faulted_endpoints(
    session: aiohttp.ClientSession,
) -> None:
    """Ordinals count requests to Faults.endpoints only, from 1 again after set_faults."""
    reader = {"s": "https://x.example", "t": "url"}
    faults = Faults(script={2: Fault.lane_busy()}, endpoints=["url"])
    async with Emulator(faults=faults, latency=0) as emu:

        async def code(path: str = SEARCH) -> int:
            answer = await post(session, emu, QUERY if path == SEARCH else reader, path)
            return int(json.loads(answer[2])["code"])

        codes = [await code(path) for path in (SEARCH, READER, SEARCH, READER, READER)]
        emu.set_faults(Faults(script={1: Fault.throttled(1009)}))
        codes.append(await code())
        emu.set_faults(None)
        codes.append(await code())
    assert codes == [0, 0, 0, 1010, 0, 1009, 0]


async def fault_sequence(session: aiohttp.ClientSession, seed: int) -> list[str | None]:
    rates = {Fault.lane_busy(): 0.3, Fault.server_error(): 0.2, Fault.reset_before(): 0.1}
    async with Emulator(faults=Faults(rates=rates), seed=seed, latency=0) as emu:
        for _ in range(40):
            with contextlib.suppress(aiohttp.ClientConnectionError):
                await post(session, emu)
        return [record.fault for record in emu.log]


async def test_seeded_fault_rates_replay_the_same_run(session: aiohttp.ClientSession) -> None:
    """The same seed injects the same faults into the same requests; another seed differs."""
    first = await fault_sequence(session, seed=11)
    assert first == await fault_sequence(session, seed=11)
    assert first != await fault_sequence(session, seed=12)
    assert {"lane_busy", "server_error", "reset_before", None} == set(first)


def test_faults_are_validated_and_read_as_calls() -> None:
    """Bad kinds, codes and rates raise ValueError; reprs read as constructor calls."""
    for make in (
        lambda: Fault("explode"),
        lambda: Fault.throttled(1007),
        lambda: Fault.api_timeout(1002),
        lambda: Fault.server_error(501),
        lambda: Fault("lane_busy", code=1011),
        lambda: Fault("slow_body", code=1),
        lambda: Fault.truncated_json(keep=1.0),
        lambda: Fault.slow_body(chunk_size=0),
        lambda: Fault.from_name("nope"),
        lambda: Faults(script={0: Fault.lane_busy()}),
        lambda: Faults(rates={Fault.lane_busy(): 0.7, Fault.server_error(): 0.4}),
        lambda: Faults(rates={Fault.lane_busy(): -0.1}),
        lambda: Faults(endpoints=["search", "reader"]),
    ):
        with pytest.raises(ValueError):
            make()
    assert repr(Fault.server_error(502, html=True)) == "Fault.server_error(status=502, html=True)"
    assert repr(Fault.rate_limited()) == "Fault.rate_limited()"
    assert repr(Fault.rate_limited(None)) == "Fault.rate_limited(retry_after=None)"
    assert Fault("throttled") == Fault.throttled()
    assert {Fault.from_name(kind).kind for kind in FAULT_KINDS} == FAULT_KINDS
    charged = {kind for kind in FAULT_KINDS if Fault.from_name(kind).charged}
    assert charged == {
        "truncated_json",
        "wrong_types",
        "huge_body",
        "reset_after_charge",
        "slow_body",
    }
