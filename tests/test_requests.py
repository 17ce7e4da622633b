"""Request options: validated before anything is sent, wire bodies as API.md says, costs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from searchcans_async import Costs, SearchCans
from searchcans_async._client.requests import (
    ENGINES,
    MAX_QUERY_CHARS,
    MAX_URL_CHARS,
    ReadRequest,
    SearchRequest,
)
from searchcans_async.testing import Emulator

if TYPE_CHECKING:
    from aioresponses import aioresponses

    from searchcans_async._clock import VirtualClock

# -- validation ------------------------------------------------------------------------------

BAD_SEARCHES = [
    pytest.param({"engine": "yahoo"}, ValueError, "unknown engine 'yahoo'", id="unknown-engine"),
    pytest.param({"engine": None}, ValueError, "unknown engine", id="engine-none"),
    pytest.param({"query": ""}, ValueError, "query must not be empty", id="empty-query"),
    pytest.param({"query": "   "}, ValueError, "query must not be empty", id="blank-query"),
    pytest.param({"query": 42}, TypeError, "query must be a str", id="query-int"),
    pytest.param({"pages": 3, "engine": "bing"}, ValueError, "google' only", id="pages-bing"),
    pytest.param(
        {"pages": 2, "engine": "google_news"}, ValueError, "google' only", id="pages-news"
    ),
    pytest.param({"page": 2, "pages": 3}, ValueError, "not both", id="page-and-pages"),
    pytest.param({"page": 0}, ValueError, "page must be >= 1", id="page-zero"),
    pytest.param({"page": "2"}, TypeError, "page must be an int", id="page-str"),
    pytest.param({"page": True}, TypeError, "page must be an int", id="page-bool"),
    pytest.param({"pages": 0}, ValueError, "pages must be 1-100", id="pages-zero"),
    pytest.param({"pages": 101}, ValueError, "pages must be 1-100", id="pages-huge"),
    pytest.param({"pages": 2.0}, TypeError, "pages must be an int", id="pages-float"),
    pytest.param({"country": ""}, ValueError, "country must not be empty", id="empty-country"),
    pytest.param({"country": 1}, TypeError, "country must be a str", id="country-int"),
    pytest.param({"language": b"en"}, TypeError, "language must be a str", id="language-bytes"),
    pytest.param({"server_timeout": 0}, ValueError, "server_timeout must be", id="d-zero"),
    pytest.param({"server_timeout": -5}, ValueError, "server_timeout must be", id="d-negative"),
    pytest.param({"server_timeout": 601}, ValueError, "server_timeout must be", id="d-huge"),
    pytest.param(
        {"server_timeout": float("nan")}, ValueError, "server_timeout must be", id="d-nan"
    ),
    pytest.param({"server_timeout": "20"}, TypeError, "number of seconds", id="d-str"),
    pytest.param({"server_timeout": True}, TypeError, "number of seconds", id="d-bool"),
    pytest.param({"wait": -1}, ValueError, "wait must be", id="w-negative"),
    pytest.param({"html": 1}, TypeError, "html must be True or False", id="html-int"),
    pytest.param(
        {"knowledge_graph": "yes"}, TypeError, "knowledge_graph must be True", id="flag-str"
    ),
    pytest.param(
        {"people_also_search_for": None},
        TypeError,
        "people_also_search_for must be True",
        id="flag-none",
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_SEARCHES)
def test_invalid_search_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each invalid search option raises a ValueError/TypeError naming the option."""
    with pytest.raises(error, match=message):
        SearchRequest(**{"query": "asyncio", **options})


BAD_READS = [
    pytest.param({"url": "ftp://example.com/x"}, ValueError, "absolute http", id="ftp"),
    pytest.param({"url": "example.com/page"}, ValueError, "absolute http", id="no-scheme"),
    pytest.param({"url": "https://"}, ValueError, "absolute http", id="no-host"),
    pytest.param({"url": "javascript:alert(1)"}, ValueError, "absolute http", id="javascript"),
    pytest.param({"url": ""}, ValueError, "url must not be empty", id="empty"),
    pytest.param({"url": None}, TypeError, "url must be a str", id="url-none"),
    pytest.param({"proxy": 5}, ValueError, "proxy must be 0-3, got 5", id="proxy-5"),
    pytest.param({"proxy": -1}, ValueError, "proxy must be 0-3", id="proxy-negative"),
    pytest.param({"proxy": "1"}, TypeError, "proxy must be an int", id="proxy-str"),
    pytest.param({"proxy": True}, TypeError, "proxy must be an int", id="proxy-bool"),
    pytest.param({"image": 3}, ValueError, "image must be 0-2, got 3", id="image-3"),
    pytest.param({"image": 1.0}, TypeError, "image must be an int", id="image-float"),
    pytest.param({"wait": 2.0}, ValueError, "pass browser=True", id="wait-without-browser"),
    pytest.param(
        {"wait": 0.0, "browser": True}, ValueError, "wait must be between", id="wait-zero"
    ),
    pytest.param({"browser": 1}, TypeError, "browser must be True or False", id="browser-int"),
    pytest.param({"captcha": "no"}, TypeError, "captcha must be True", id="captcha-str"),
    pytest.param({"file": None}, TypeError, "file must be True", id="file-none"),
    pytest.param({"server_timeout": 0}, ValueError, "server_timeout must be", id="d-zero"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_READS)
def test_invalid_reader_options_are_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each invalid Reader option raises a ValueError/TypeError naming the option."""
    with pytest.raises(error, match=message):
        ReadRequest(**{"url": "https://example.com/a", **options})


@pytest.mark.parametrize("engine", ENGINES)
def test_every_documented_engine_is_accepted(engine: str) -> None:
    """All seven engines of API.md are valid, and the body's t is the engine."""
    assert SearchRequest(query="q", engine=engine).body()["t"] == engine


async def test_the_client_validates_before_sending(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """search()/read() with a bad option raise at once; no request reaches the transport."""
    async with SearchCans(canary_key, clock=clock) as client:
        with pytest.raises(ValueError, match="unknown engine"):
            await client.search("q", engine="yahoo")
        with pytest.raises(ValueError, match="proxy must be 0-3"):
            await client.read("https://example.com", proxy=5)  # type: ignore[arg-type]  # invalid on purpose
        with pytest.raises(ValueError, match="browser=True"):
            await client.read("https://example.com", wait=3)
        with pytest.raises(ValueError, match="absolute http"):
            await client.read("file:///etc/passwd")
    assert mocked.requests == {}


# -- wire bodies -----------------------------------------------------------------------------


def test_a_minimal_search_body_is_s_and_t() -> None:
    """The smallest search body is the query and the engine, nothing else."""
    assert SearchRequest(query="asyncio").body() == {"s": "asyncio", "t": "google"}


def test_a_full_search_body_uses_the_wire_names() -> None:
    """country, language, p, d/w in ms, html:1 and camelCase flags, as API.md lists them."""
    request = SearchRequest(
        query="asyncio",
        engine="bing",
        country="us",
        language="en",
        page=3,
        server_timeout=20,
        wait=1.5,
        html=True,
        knowledge_graph=True,
        people_also_ask=True,
        ai_summary=True,
        news_aggregation=True,
        video_aggregation=True,
        people_also_search_for=True,
    )
    assert request.body() == {
        "s": "asyncio",
        "t": "bing",
        "country": "us",
        "language": "en",
        "p": 3,
        "d": 20_000,
        "w": 1500,
        "html": 1,
        "knowledgeGraph": True,
        "peopleAlsoAsk": True,
        "aiSummary": True,
        "newsAggregation": True,
        "videoAggregation": True,
        "peopleAlsoSearchFor": True,
    }


def test_pages_is_sent_as_page() -> None:
    """pages=N (pages 1..N in one call) is the wire's `page: N`; p is not sent."""
    assert SearchRequest(query="q", pages=4).body() == {"s": "q", "t": "google", "page": 4}


def test_false_flags_are_omitted() -> None:
    """Flags left False are not sent at all."""
    body = SearchRequest(query="q", knowledge_graph=False, html=False).body()
    assert set(body) == {"s", "t"}


def test_milliseconds_are_rounded_integers() -> None:
    """Fractional seconds become whole milliseconds (JSON integers)."""
    body = SearchRequest(query="q", server_timeout=0.0125).body()
    assert body["d"] == 12
    assert isinstance(body["d"], int)


def test_a_minimal_reader_body_omits_proxy_zero() -> None:
    """The Reader body is t:url and s; proxy 0 (direct) is omitted."""
    assert ReadRequest(url="https://example.com", proxy=0).body() == {
        "s": "https://example.com",
        "t": "url",
    }


def test_a_full_reader_body_uses_the_wire_names() -> None:
    """proxy tier, d, mode:1 for the browser, w, html/captcha/file flags, image 1|2."""
    request = ReadRequest(
        url="https://example.com/doc.pdf",
        proxy=2,
        browser=True,
        wait=2,
        server_timeout=30,
        html=True,
        captcha=True,
        file=True,
        image=2,
    )
    assert request.body() == {
        "s": "https://example.com/doc.pdf",
        "t": "url",
        "proxy": 2,
        "d": 30_000,
        "mode": 1,
        "w": 2000,
        "html": 1,
        "captcha": 1,
        "file": 1,
        "image": 2,
    }
    assert "b" not in request.body()  # the v0 browser flag is never sent


def test_bodies_are_json_serialisable() -> None:
    """Both bodies survive json.dumps as the transport sends them."""
    for request in (SearchRequest(query="q", pages=2), ReadRequest(url="http://a.b", image=1)):
        assert json.loads(json.dumps(request.body())) == request.body()


def test_requests_know_their_path_and_subject() -> None:
    """Each request knows its v1 path and what it is about."""
    search = SearchRequest(query="asyncio")
    read = ReadRequest(url="https://example.com")
    assert (search.path, search.subject) == ("/api/v1/search", "asyncio")
    assert (read.path, read.subject) == ("/api/v1/url", "https://example.com")


@pytest.mark.parametrize(
    ("request_", "wait"),
    [
        (SearchRequest(query="q"), 10.0),
        (SearchRequest(query="q", server_timeout=20, wait=3), 23.0),
        (ReadRequest(url="https://a.b", browser=True, wait=5), 15.0),
        (ReadRequest(url="https://a.b", server_timeout=30), 30.0),
    ],
)
def test_server_wait_is_d_plus_w(request_: SearchRequest | ReadRequest, wait: float) -> None:
    """server_wait is what the server may spend: d (default 10 s) plus w."""
    assert request_.server_wait == wait


# -- costs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("pages", "credits"), [(None, 1), (1, 1), (3, 3), (10, 10)])
def test_a_search_costs_one_credit_per_page(pages: int | None, credits: int) -> None:
    """One page costs 1; pages=N costs N."""
    assert SearchRequest(query="q", pages=pages).cost(Costs()) == credits


def test_a_specific_page_costs_one_credit() -> None:
    """page=7 fetches one page: 1 credit."""
    assert SearchRequest(query="q", page=7).cost(Costs()) == 1


@pytest.mark.parametrize(("proxy", "credits"), [(0, 2), (1, 4), (2, 7), (3, 12)])
def test_reader_proxy_tiers_cost_2_4_7_12(proxy: int, credits: int) -> None:
    """Reader: 2 base plus 0/2/5/10 for proxy tiers 0-3."""
    assert ReadRequest(url="https://a.b", proxy=proxy).cost(Costs()) == credits


def test_undocumented_reader_extras_default_to_free() -> None:
    """Browser, captcha, file and image cost nothing extra unless configured."""
    request = ReadRequest(url="https://a.b", browser=True, captcha=True, file=True, image=1)
    assert request.cost(Costs()) == 2


def test_reader_extras_are_configurable() -> None:
    """Each undocumented extra adds its configured price."""
    costs = Costs(reader_browser=1, reader_captcha=3, reader_file=5, reader_image=7)
    assert ReadRequest(url="https://a.b", browser=True).cost(costs) == 3
    assert ReadRequest(url="https://a.b", captcha=True).cost(costs) == 5
    assert ReadRequest(url="https://a.b", file=True).cost(costs) == 7
    assert ReadRequest(url="https://a.b", image=2).cost(costs) == 9
    full = ReadRequest(url="https://a.b", proxy=3, browser=True, captcha=True, file=True, image=1)
    assert full.cost(costs) == 2 + 10 + 1 + 3 + 5 + 7


def test_prices_are_configurable() -> None:
    """Page price, Reader base and proxy tiers can be changed for another plan."""
    costs = Costs(search_page=2, reader_base=3, reader_proxy=(0, 1, 2, 3))
    assert costs.search(pages=4) == 8
    assert costs.read(proxy=3) == 6


def test_costs_refuse_an_unknown_proxy_tier() -> None:
    """Costs.read(proxy=4) is a ValueError, not an IndexError."""
    with pytest.raises(ValueError, match="proxy must be 0-3"):
        Costs().read(proxy=4)


def test_no_results_are_free_by_default() -> None:
    """Whether 9999 is billed is undocumented: it is assumed free, and configurable."""
    assert Costs().no_results_charged is False
    assert Costs(no_results_charged=True).no_results_charged is True


@pytest.mark.parametrize("engine", ["bing", "google_news", "google_images"])
async def test_pages_1_is_sent_with_every_engine(engine: str) -> None:
    """pages=1 (what the vendor's scripts send) works off Google too, and the emulator serves it."""
    request = SearchRequest(query="rust", engine=engine, pages=1)
    assert request.body()["page"] == 1
    async with Emulator(latency=0) as emu, SearchCans(emu.api_key, base_url=emu.base_url) as client:
        result = await client.send(request)
        assert (len(result), result.credits, emu.log[0].credits_charged) == (10, 1, 1)


def test_a_query_or_url_over_the_documented_size_is_refused_without_echoing_it() -> None:
    """2,048 characters a query, 8,192 a URL: longer is refused before sending, briefly."""
    SearchRequest(query="q" * MAX_QUERY_CHARS)
    with pytest.raises(ValueError, match="2,048") as caught:
        SearchRequest(query="q" * 100_000)
    assert len(str(caught.value)) < 200
    ReadRequest(url="https://example.com/" + "p" * (MAX_URL_CHARS - 20))
    with pytest.raises(ValueError, match="8,192") as too_long:
        ReadRequest(url="https://example.com/" + "p" * 2_000_000)
    assert len(str(too_long.value)) < 200


async def test_a_huge_query_never_reaches_the_server() -> None:
    """client.search() with a 100k-character query: ValueError, the server saw nothing."""
    async with Emulator(latency=0) as emu, SearchCans(emu.api_key, base_url=emu.base_url) as client:
        with pytest.raises(ValueError, match="at most 2,048 characters"):
            await client.search("x" * 100_000)
        assert emu.stats().requests == 0
