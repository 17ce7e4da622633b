"""The emulator's answers as the service sends them (API.md): pages, vertical fields, account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from emulator_support import ACCOUNT, BULLET, SEARCH, VERTICAL_FIELDS, send

from searchcans_async.testing import AccountSpec, Emulator, KeySpec, WireOptions

if TYPE_CHECKING:
    import aiohttp


async def post(
    session: aiohttp.ClientSession, emu: Emulator, path: str, body: Any
) -> tuple[int, Any]:
    reply = await send(session, emu.base_url + path, body, key=emu.api_key)
    return reply.status, reply.json()


ENGINES = [
    "google",
    "bing",
    "google_news",
    "google_shopping",
    "google_images",
    "google_videos",
    "google_short_videos",
]


@pytest.mark.parametrize("engine", ENGINES)
async def test_page_one_is_accepted_on_every_engine(
    session: aiohttp.ClientSession, engine: str
) -> None:
    """`page: 1` (sent by the vendor's scripts with every engine) is a success costing 1."""
    async with Emulator(latency=0) as emu:
        status, envelope = await post(session, emu, SEARCH, {"s": "q", "t": engine, "page": 1})
        assert (status, envelope["code"]) == (200, 0)
        assert emu.log[0].credits_charged == 1


async def test_deep_pages_off_google_serve_and_charge_one_page_by_default(
    session: aiohttp.ClientSession,
) -> None:
    """`page: 3` with Bing (undocumented) serves one page of results and charges one credit."""
    async with Emulator(latency=0) as emu:
        status, envelope = await post(session, emu, SEARCH, {"s": "q", "t": "bing", "page": 3})
        assert (status, envelope["code"]) == (200, 0)
        assert len(envelope["data"]["organic"]) == 10
        assert emu.log[0].credits_charged == 1


@pytest.mark.parametrize(("policy", "status", "charged"), [("all", 200, 3), ("refuse", 400, 0)])
async def test_deep_pages_off_google_are_configurable(
    session: aiohttp.ClientSession, policy: str, status: int, charged: int
) -> None:
    """WireOptions(deep_pages=...) serves pages 1..N (charging N) or refuses with HTTP 400."""
    async with Emulator(latency=0, wire=WireOptions(deep_pages=policy)) as emu:
        got, envelope = await post(session, emu, SEARCH, {"s": "q", "t": "google_news", "page": 3})
        assert (got, emu.log[0].credits_charged) == (status, charged)
        if policy == "all":
            assert len(envelope["data"]["news_results"]) == 30


@pytest.mark.parametrize("engine", sorted(VERTICAL_FIELDS))
async def test_vertical_results_carry_the_fields_api_md_lists(
    session: aiohttp.ClientSession, engine: str
) -> None:
    """Every item of a vertical list has position, title, link and its engine's own fields."""
    block, fields = VERTICAL_FIELDS[engine]
    async with Emulator(latency=0) as emu:
        _, envelope = await post(session, emu, SEARCH, {"s": "q", "t": engine})
    items = envelope["data"][block]
    assert len(items) == 10
    for item in items:
        missing = {"position", "title", "link", *fields} - set(item)
        assert not missing, missing
    if engine == "google_news":
        assert all(set(item["source"]) >= {"name"} for item in items)
    if engine == "google_shopping":
        assert all(isinstance(item["extracted_price"], float) for item in items)


async def test_image_searches_may_carry_suggested_searches(session: aiohttp.ClientSession) -> None:
    """An images answer has suggestedSearches, as the vendor's image script reads them."""
    async with Emulator(latency=0) as emu:
        _, envelope = await post(session, emu, SEARCH, {"s": "q", "t": "google_images"})
    assert envelope["data"]["suggestedSearches"]


async def test_the_account_answer_is_shaped_like_the_published_example(
    session: aiohttp.ClientSession,
) -> None:
    """By default requestId is null and masked keys are `sk_` followed by bullets only."""
    spec = AccountSpec(keys=[KeySpec("sk_live_0123456789abcdef")])
    async with Emulator([spec], latency=0) as emu:
        _, envelope = await post(session, emu, ACCOUNT, {})
        _, search = await post(session, emu, SEARCH, {"s": "q", "t": "google"})
    assert envelope["requestId"] is None
    assert search["requestId"] is None
    assert envelope["data"]["key"] == "sk_" + BULLET * 6
    assert [key["key"] for key in envelope["data"]["keys"]] == ["sk_" + BULLET * 6]
    assert emu.log[0].request_id  # the emulator's own record still names each request


async def test_request_ids_and_key_suffixes_are_an_option(session: aiohttp.ClientSession) -> None:
    """WireOptions(request_ids=True, key_suffix=True) sends string ids and `sk_••••••cdef`."""
    spec = AccountSpec(keys=[KeySpec("sk_live_0123456789abcdef")])
    wire = WireOptions(request_ids=True, key_suffix=True)
    async with Emulator([spec], latency=0, wire=wire) as emu:
        _, envelope = await post(session, emu, ACCOUNT, {})
    assert envelope["requestId"] == emu.log[0].request_id
    assert envelope["data"]["key"] == "sk_" + BULLET * 6 + "cdef"


async def test_the_v0_search_path_answers_the_documented_bare_list(
    session: aiohttp.ClientSession,
) -> None:
    """/api/search answers a bare list of {title, url, content}; /api/v1/search the object."""
    async with Emulator(latency=0) as emu:
        _, v0 = await post(session, emu, "/api/search", {"s": "q", "t": "google"})
        _, v1 = await post(session, emu, SEARCH, {"s": "q", "t": "google"})
    assert isinstance(v0["data"], list)
    assert all(set(item) == {"title", "url", "content"} for item in v0["data"])
    assert [item["url"] for item in v0["data"]] == [item["link"] for item in v1["data"]["organic"]]


@pytest.mark.parametrize(("shape", "data"), [("list", []), ("object", {})])
async def test_no_results_data_is_configurable(
    session: aiohttp.ClientSession, shape: str, data: object
) -> None:
    """WireOptions(no_results_data=...) answers 9999 with `data: []` or `data: {}`."""
    wire = WireOptions(no_results_data=shape)
    async with Emulator(latency=0, no_results={"zzzz"}, wire=wire) as emu:
        _, envelope = await post(session, emu, SEARCH, {"s": "zzzz", "t": "google"})
    assert (envelope["code"], envelope["data"]) == (9999, data)
