"""The transport: API.md's code table over HTTP, aiohttp's exceptions, base_url and body rules."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import ssl
import time
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import client_exceptions
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import searchcans_async
from searchcans_async import (
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    Costs,
    InsufficientCreditsError,
    LaneBusyError,
    RateLimitedError,
    ResponseFormatError,
    RetryPolicy,
    SearchCans,
    SearchCansError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from searchcans_async._client.secret import Secret
from searchcans_async._client.transport import (
    Transport,
    _Redactor,
    check_base_url,
    map_aiohttp_error,
    parse_retry_after,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from aioresponses import aioresponses

    from searchcans_async._clock import VirtualClock

BASE = "https://www.searchcans.com"
SEARCH_URL = f"{BASE}/api/v1/search"
READ_URL = f"{BASE}/api/v1/url"
ACCOUNT_URL = f"{BASE}/api/user/key"
NEVER = RetryPolicy.never()


def envelope(code: int, data: Any = None, msg: str = "", request_id: str | None = "req-1") -> Any:
    """An API answer body."""
    return {"code": code, "data": data, "msg": msg, "requestId": request_id}


@pytest.fixture
async def client(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> AsyncIterator[SearchCans]:
    """A client on the real base URL, its HTTP mocked, sending every call once."""
    async with SearchCans(canary_key, clock=clock, retry=NEVER) as searchcans:
        yield searchcans


async def failure_of(client: SearchCans) -> SearchCansError:
    """The error one search call raises."""
    with pytest.raises(SearchCansError) as caught:
        await client.search("asyncio")
    return caught.value


# -- success and "no results" ----------------------------------------------------------------


async def test_code_0_returns_the_data(client: SearchCans, mocked: aioresponses) -> None:
    """HTTP 200 with code 0 is a success: the data is parsed and the call charged."""
    organic = [{"position": 1, "title": "A", "link": "https://a", "snippet": "s"}]
    mocked.post(SEARCH_URL, payload=envelope(0, {"organic": organic}, "success", "r-9"))
    result = await client.search("asyncio")
    assert (result.organic[0].link, result.credits, result.request_id) == ("https://a", 1, "r-9")
    assert not result.no_results


@pytest.mark.parametrize("code", [9999, -9999])
async def test_no_results_is_an_empty_result(
    client: SearchCans, mocked: aioresponses, code: int
) -> None:
    """Codes 9999/-9999 are an empty, uncharged result, not an error."""
    mocked.post(SEARCH_URL, payload=envelope(code, [], "no results"))
    result = await client.search("nothing at all", pages=3)
    assert result.no_results
    assert (len(result), result.credits, result.request_id) == (0, 0, "req-1")


async def test_no_results_can_be_configured_as_charged(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """Costs(no_results_charged=True) books a 9999 answer at the call's full price."""
    mocked.post(SEARCH_URL, payload=envelope(9999, []))
    costs = Costs(no_results_charged=True)
    async with SearchCans(canary_key, clock=clock, costs=costs) as client:
        result = await client.search("nothing", pages=3)
    assert (result.no_results, result.credits) == (True, 3)


async def test_a_reader_no_results_follows_the_same_rule(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """A 9999 from the Reader is an empty page, free unless configured as charged."""
    mocked.post(READ_URL, payload=envelope(-9999, None))
    mocked.post(READ_URL, payload=envelope(9999, []))
    async with SearchCans(canary_key, clock=clock) as client:
        free = await client.read("https://example.com/a", proxy=1)
    async with SearchCans(canary_key, clock=clock, costs=Costs(no_results_charged=True)) as client:
        billed = await client.read("https://example.com/a", proxy=1)
    assert (free.no_results, free.credits, free.markdown) == (True, 0, "")
    assert (billed.no_results, billed.credits) == (True, 4)


async def test_no_results_is_an_error_on_a_non_200(
    client: SearchCans, mocked: aioresponses
) -> None:
    """9999 counts as "no results" only on HTTP 200; otherwise it is an unknown answer."""
    mocked.post(SEARCH_URL, status=500, payload=envelope(9999))
    assert isinstance(await failure_of(client), ServerError)


# -- API.md's code table, row by row ---------------------------------------------------------

CODE_TABLE = [
    pytest.param(200, 1010, LaneBusyError, True, False, id="1010"),
    pytest.param(429, 429, RateLimitedError, True, False, id="http-429"),
    pytest.param(200, 1001, ApiTimeoutError, True, False, id="1001"),
    pytest.param(200, -1001, ApiTimeoutError, True, False, id="-1001"),
    *[
        pytest.param(200, code, RateLimitedError, True, False, id=str(code))
        for code in (1002, 1003, 1004, 1005, 1006, 1009)
    ],
    pytest.param(200, 443, ServerError, True, False, id="443"),
    pytest.param(200, 10054, ServerError, True, False, id="10054"),
    *[
        pytest.param(status, status, ServerError, True, False, id=f"http-{status}")
        for status in (500, 502, 503, 504)
    ],
    pytest.param(400, 400, BadRequestError, False, False, id="http-400"),
    pytest.param(401, 401, AuthenticationError, False, False, id="http-401"),
    pytest.param(403, 403, AuthenticationError, False, False, id="http-403"),
    pytest.param(200, 401, AuthenticationError, False, False, id="code-401"),
    pytest.param(200, 403, AuthenticationError, False, False, id="code-403"),
    pytest.param(200, -2008, AuthenticationError, False, False, id="code--2008"),
    pytest.param(402, 402, InsufficientCreditsError, False, False, id="http-402"),
    pytest.param(200, 402, InsufficientCreditsError, False, False, id="code-402"),
    pytest.param(200, 7777, UnexpectedResponseError, False, None, id="unknown-on-200"),
    pytest.param(418, 7777, UnexpectedResponseError, False, False, id="unknown-on-418"),
]


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "charged"), CODE_TABLE)
async def test_every_code_maps_to_its_error(
    client: SearchCans,
    mocked: aioresponses,
    status: int,
    code: int,
    cls: type[SearchCansError],
    retryable: bool,
    charged: bool | None,
) -> None:
    """Each row of API.md's table: the right class, flags, code, status and request id."""
    mocked.post(SEARCH_URL, status=status, payload=envelope(code, None, "from the server", "rq-7"))
    error = await failure_of(client)
    assert type(error) is cls
    assert (error.retryable, error.charged) == (retryable, charged)
    assert (error.code, error.http_status, error.request_id) == (code, status, "rq-7")
    assert error.message == "from the server"


@pytest.mark.parametrize("status", [400, 401, 402, 403])
async def test_client_errors_without_an_envelope_are_classified_by_status(
    client: SearchCans, mocked: aioresponses, status: int
) -> None:
    """A 4xx with a non-JSON body is still classified by its HTTP status."""
    mocked.post(SEARCH_URL, status=status, body="<html>nope</html>", content_type="text/html")
    error = await failure_of(client)
    expected = {
        400: BadRequestError,
        401: AuthenticationError,
        402: InsufficientCreditsError,
        403: AuthenticationError,
    }
    assert type(error) is expected[status]
    assert (error.code, error.http_status, error.charged, error.retryable) == (
        None,
        status,
        False,
        False,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_an_html_error_page_is_a_retryable_server_error(
    client: SearchCans, mocked: aioresponses, status: int
) -> None:
    """A proxy's HTML 5xx page becomes a ServerError with a short snippet of the page."""
    page = f"<html><head><title>{status}</title></head><body>{'x' * 5000}</body></html>"
    mocked.post(SEARCH_URL, status=status, body=page, content_type="text/html")
    error = await failure_of(client)
    assert isinstance(error, ServerError)
    assert (error.http_status, error.code, error.retryable, error.charged) == (
        status,
        None,
        True,
        False,
    )
    assert f"<title>{status}</title>" in error.message
    assert len(error.message) < 300


async def test_an_envelope_without_a_message_gets_a_default_one(
    client: SearchCans, mocked: aioresponses
) -> None:
    """An error envelope with msg null still yields a readable message."""
    mocked.post(SEARCH_URL, payload={"code": 1010, "data": None, "msg": None, "requestId": None})
    error = await failure_of(client)
    assert isinstance(error, LaneBusyError)
    assert error.message == "all Parallel Lanes are busy"
    assert error.request_id is None


async def test_a_numeric_request_id_becomes_text(client: SearchCans, mocked: aioresponses) -> None:
    """requestId may be any JSON scalar; the client keeps it as a string."""
    mocked.post(SEARCH_URL, payload={"code": 0, "data": {}, "msg": "ok", "requestId": 12345})
    assert (await client.search("q")).request_id == "12345"


# -- Retry-After -----------------------------------------------------------------------------


def http_date_in(seconds: float) -> str:
    """An HTTP-date that many seconds from now."""
    return formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        (lambda: "3", 3.0, 3.0),
        (lambda: " 0.5 ", 0.5, 0.5),
        (lambda: http_date_in(120), 118.0, 120.0),
        (lambda: formatdate(0, usegmt=True), 0.0, 0.0),
    ],
    ids=["seconds", "fractional", "http-date", "http-date-in-the-past"],
)
async def test_a_429_carries_its_retry_after(
    client: SearchCans,
    mocked: aioresponses,
    header: Callable[[], str],
    low: float,
    high: float,
) -> None:
    """Retry-After as delta-seconds or HTTP-date is read into retry_after seconds."""
    mocked.post(SEARCH_URL, status=429, payload=envelope(429), headers={"Retry-After": header()})
    error = await failure_of(client)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after is not None
    assert low <= error.retry_after <= high


@pytest.mark.parametrize("headers", [{"Retry-After": "soon"}, {"Retry-After": ""}, None])
async def test_a_garbage_or_absent_retry_after_is_none(
    client: SearchCans, mocked: aioresponses, headers: dict[str, str] | None
) -> None:
    """An unreadable or missing Retry-After leaves retry_after None (backoff applies)."""
    mocked.post(SEARCH_URL, status=429, payload=envelope(429), headers=headers)
    error = await failure_of(client)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after is None


async def test_a_429_without_an_envelope_is_rate_limited(
    client: SearchCans, mocked: aioresponses
) -> None:
    """A proxy's bare 429 page is still a RateLimitedError honouring Retry-After."""
    mocked.post(SEARCH_URL, status=429, body="Too Many Requests", headers={"Retry-After": "7"})
    error = await failure_of(client)
    assert isinstance(error, RateLimitedError)
    assert (error.retry_after, error.code, error.retryable) == (7.0, None, True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("-5", 0.0),
        ("1e2", 100.0),
        ("inf", None),
        ("nan", None),
        ("tomorrow", None),
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    """Delta-seconds are clamped at 0; non-finite, garbage and zone-less dates are None."""
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_reads_an_http_date_against_now() -> None:
    """An HTTP-date is measured from the given `now`."""
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


# -- bodies that are not the API's envelope --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html><body>Welcome to nginx!</body></html>", id="html"),
        pytest.param('{"code": 0, "data": {"organic": [{"title": "trunc', id="truncated"),
        pytest.param("", id="empty"),
        pytest.param("[1, 2, 3]", id="a-list"),
        pytest.param('{"data": {}}', id="no-code"),
        pytest.param('{"code": "0", "data": {}}', id="string-code"),
        pytest.param('{"code": true, "data": {}}', id="bool-code"),
        pytest.param('{"code": 0.0, "data": {}}', id="float-code"),
        pytest.param("[" * 100_000, id="nested-too-deep"),
        pytest.param('{"code": ' + "1" * 5000 + "}", id="huge-number"),
        pytest.param(b"\xff\xfe{}", id="not-utf-8"),
    ],
)
async def test_a_200_without_a_valid_envelope_is_possibly_charged(
    client: SearchCans, mocked: aioresponses, body: str | bytes
) -> None:
    """Non-JSON or truncated 200 bodies: ResponseFormatError, charged None, short snippet."""
    mocked.post(SEARCH_URL, status=200, body=body)
    error = await failure_of(client)
    assert type(error) is ResponseFormatError
    assert (error.http_status, error.charged, error.retryable) == (200, None, False)
    assert "not the API's JSON envelope" in error.message
    if isinstance(body, str):
        assert body[:40] in error.message
    assert len(error.message) < 300


async def test_a_long_body_is_cut_to_a_short_snippet(
    client: SearchCans, mocked: aioresponses
) -> None:
    """The snippet quoted in the error is at most 160 characters, control characters removed."""
    mocked.post(SEARCH_URL, body="\x00\x1b[31m" + "garbage " * 1000)
    error = await failure_of(client)
    snippet = re.search(r"envelope: '(.*)'$", error.message)
    assert snippet is not None
    assert len(snippet.group(1)) <= 160
    assert snippet.group(1).endswith("\u2026")
    assert "\x00" not in error.message
    assert "\x1b" not in error.message


async def test_a_body_over_max_body_bytes_is_refused(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """An answer larger than max_body_bytes raises ResponseFormatError (possibly charged)."""
    huge = json.dumps(envelope(0, {"organic": [], "padding": "x" * 5000}))
    mocked.post(SEARCH_URL, body=huge)
    mocked.post(SEARCH_URL, status=503, body=huge)
    async with SearchCans(canary_key, clock=clock, retry=NEVER, max_body_bytes=1024) as client:
        error = await failure_of(client)
        assert type(error) is ResponseFormatError
        assert "max_body_bytes=1024" in error.message
        assert (error.http_status, error.charged) == (200, None)
        error = await failure_of(client)
        assert (error.http_status, error.charged) == (503, False)


async def test_a_body_under_the_cap_with_a_content_length_is_read(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """A body announcing its length within the cap is read whole."""
    body = json.dumps(envelope(0, {"organic": []}))
    mocked.post(SEARCH_URL, body=body, headers={"Content-Length": str(len(body))})
    async with SearchCans(canary_key, clock=clock, retry=NEVER, max_body_bytes=1024) as client:
        assert len(await client.search("q")) == 0


async def test_a_redirect_is_not_followed(client: SearchCans, mocked: aioresponses) -> None:
    """A 3xx answer is an error of its own; the Location is never requested."""
    mocked.post(SEARCH_URL, status=302, headers={"Location": "https://evil.example/steal"})
    mocked.get("https://evil.example/steal", payload=envelope(0, {}))
    mocked.post("https://evil.example/steal", payload=envelope(0, {}))
    error = await failure_of(client)
    assert type(error) is UnexpectedResponseError
    assert (error.http_status, error.charged, error.retryable) == (302, False, False)
    assert list(mocked.requests) == [("POST", URL(SEARCH_URL))]
    [call] = mocked.requests[("POST", URL(SEARCH_URL))]
    assert call.kwargs["allow_redirects"] is False


# -- what is sent ----------------------------------------------------------------------------


@pytest.mark.parametrize("lent", [False, True], ids=["own session", "lent session"])
async def test_every_request_carries_the_clients_headers(
    lent: bool, canary_key: str, clock: VirtualClock
) -> None:
    """Our own session sends the headers itself, a lent one gets them with each request:
    either way a real server sees the key, the JSON content type and our User-Agent."""
    from aiohttp import web  # noqa: PLC0415  # only this test serves HTTP itself
    from aiohttp.test_utils import TestServer  # noqa: PLC0415  # only this test serves HTTP itself

    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"code": 0, "data": {"remain": 5, "concurrent": 1}})

    app = web.Application()
    app.router.add_post("/api/user/key", answer)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        base_url = str(server.make_url("")).rstrip("/")
        lend = session if lent else None
        async with SearchCans(canary_key, base_url=base_url, session=lend, clock=clock) as client:
            await client.account()
            await client.account()
    assert len(seen) == 2
    for headers in seen:
        assert headers["Authorization"] == f"Bearer {canary_key}"
        assert headers["Content-Type"] == "application/json"
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"] == f"searchcans-async/{searchcans_async.__version__}"


async def test_each_attempt_gets_aiohttp_the_timeout_it_was_given(
    mocked: aioresponses, canary_key: str
) -> None:
    """The transport keeps the last ClientTimeout it built, and builds another when an
    attempt's timeout differs (a deadline shortens a retry's)."""
    transport = Transport(secret=Secret.resolve(canary_key), connect_timeout=10.0)
    for _ in range(3):
        mocked.post(SEARCH_URL, payload=envelope(0, {}))
    try:
        for timeout in (35.0, 35.0, 4.0):
            await transport.post("/api/v1/search", {"s": "q"}, timeout=timeout)
    finally:
        await transport.aclose()
    calls = mocked.requests[("POST", URL(SEARCH_URL))]
    sent = [(c.kwargs["timeout"].total, c.kwargs["timeout"].sock_connect) for c in calls]
    assert sent == [(35.0, 10.0), (35.0, 10.0), (4.0, 4.0)]


async def test_the_key_travels_only_in_the_authorization_header(
    client: SearchCans, mocked: aioresponses, canary_key: str
) -> None:
    """POST with Bearer key and JSON content type; the key is in neither URL nor body."""
    mocked.post(ACCOUNT_URL, payload=envelope(0, {"remain": 1, "concurrent": 1}))
    mocked.post(SEARCH_URL, payload=envelope(0, {}))
    await client.account()
    await client.search("asyncio", country="us")
    [account_call] = mocked.requests[("POST", URL(ACCOUNT_URL))]
    [search_call] = mocked.requests[("POST", URL(SEARCH_URL))]
    for call in (account_call, search_call):
        headers = call.kwargs["headers"]
        assert headers["Authorization"] == f"Bearer {canary_key}"
        assert headers["Content-Type"] == "application/json"
        assert canary_key not in call.kwargs["data"].decode()
    assert json.loads(account_call.kwargs["data"]) == {}
    assert json.loads(search_call.kwargs["data"]) == {
        "s": "asyncio",
        "t": "google",
        "country": "us",
    }


async def test_read_posts_to_the_v1_reader_path(client: SearchCans, mocked: aioresponses) -> None:
    """read() posts its body to /api/v1/url and returns the page with its cost."""
    mocked.post(READ_URL, payload=envelope(0, {"markdown": "# A", "title": "A"}))
    page = await client.read("https://example.com/a", proxy=1)
    assert (page.title, page.credits, page.url) == ("A", 4, "https://example.com/a")
    [call] = mocked.requests[("POST", URL(READ_URL))]
    assert json.loads(call.kwargs["data"]) == {"s": "https://example.com/a", "t": "url", "proxy": 1}


async def test_a_server_message_echoing_the_key_is_redacted(
    client: SearchCans, mocked: aioresponses, canary_key: str
) -> None:
    """A misbehaving server that quotes the key gets it scrubbed from message and request id."""
    mocked.post(
        SEARCH_URL,
        status=401,
        payload=envelope(401, None, f"bad key {canary_key}", f"id-{canary_key}"),
    )
    error = await failure_of(client)
    assert canary_key not in str(error)
    assert canary_key not in repr(error)
    assert "bad key ********" in error.message


# -- base_url and construction ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.searchcans.com",
        "https://www.searchcans.com/",
        "http://127.0.0.1:8080",
        "http://localhost:1234",
        "http://[::1]:9000",
        "http://127.5.6.7",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    """https anywhere and plain http to loopback are fine; a trailing slash is dropped."""
    assert check_base_url(url, allow_insecure_http=False) == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://www.searchcans.com", "http://10.0.0.5:8080", "http://localhost.evil.com"]
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    """Plain http to a non-loopback host would send the key in clear: refused."""
    with pytest.raises(ValueError, match="allow_insecure_http=True"):
        check_base_url(url, allow_insecure_http=False)
    assert check_base_url(url, allow_insecure_http=True) == url


@pytest.mark.parametrize(
    "url", ["https://user@www.searchcans.com", "https://user:pw@www.searchcans.com"]
)
def test_credentials_in_base_url_are_refused(url: str) -> None:
    """A base_url carrying user info is refused (the key travels separately)."""
    with pytest.raises(ValueError, match="must not carry credentials"):
        check_base_url(url, allow_insecure_http=True)


@pytest.mark.parametrize("url", ["ftp://www.searchcans.com", "www.searchcans.com", "https://"])
def test_a_base_url_must_be_http_with_a_host(url: str) -> None:
    """Other schemes, missing schemes and missing hosts are refused."""
    with pytest.raises(ValueError, match="must be an http"):
        check_base_url(url, allow_insecure_http=True)


def test_a_base_url_must_be_text() -> None:
    """A non-str base_url is a TypeError."""
    with pytest.raises(TypeError, match="base_url must be a str"):
        check_base_url(URL(BASE), allow_insecure_http=False)  # type: ignore[arg-type]  # wrong on purpose


def test_the_client_applies_the_base_url_rules(canary_key: str) -> None:
    """SearchCans refuses an insecure base_url at construction unless told otherwise."""
    with pytest.raises(ValueError, match="refusing plain http"):
        SearchCans(canary_key, base_url="http://api.example.com")
    client = SearchCans(canary_key, base_url="http://api.example.com/", allow_insecure_http=True)
    assert client.base_url == "http://api.example.com"


def test_transport_options_are_checked(canary_key: str) -> None:
    """A non-positive body cap or a session of the wrong type is refused at construction."""
    secret = Secret(canary_key)
    with pytest.raises(ValueError, match="max_body_bytes must be positive"):
        Transport(secret=secret, max_body_bytes=0)
    with pytest.raises(TypeError, match=r"aiohttp\.ClientSession"):
        Transport(secret=secret, session=object())  # type: ignore[arg-type]  # wrong on purpose
    assert repr(Transport(secret=secret)) == f"<Transport {BASE} owns_session=True>"


# -- every aiohttp client exception ----------------------------------------------------------


def all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    """cls and every subclass of it, recursively."""
    found = {cls}
    for sub in cls.__subclasses__():
        found |= all_subclasses(sub)
    return found


def aiohttp_types() -> set[type[BaseException]]:
    """Every aiohttp client exception type in the installed aiohttp, plus asyncio's timeout."""
    return {
        cls for cls in all_subclasses(aiohttp.ClientError) if cls.__module__.startswith("aiohttp")
    } | {asyncio.TimeoutError}


# Type -> (retryable, charged) when raised before any answer arrived. Not sent: charged
# False (retryable only if trying again can help); sent but unanswered: possibly charged.
NOT_SENT_RETRY = (True, False)
NOT_SENT_FINAL = (False, False)
POSSIBLY_CHARGED = (False, None)
EXPECTED: dict[type[BaseException], tuple[bool, bool | None]] = {
    aiohttp.ClientError: POSSIBLY_CHARGED,
    aiohttp.ClientConnectionError: POSSIBLY_CHARGED,
    aiohttp.ClientConnectionResetError: POSSIBLY_CHARGED,
    aiohttp.ClientOSError: POSSIBLY_CHARGED,
    aiohttp.ClientConnectorError: NOT_SENT_RETRY,
    aiohttp.ClientConnectorDNSError: NOT_SENT_RETRY,
    aiohttp.ClientProxyConnectionError: NOT_SENT_RETRY,
    client_exceptions.UnixClientConnectorError: NOT_SENT_RETRY,
    aiohttp.ClientSSLError: NOT_SENT_FINAL,
    aiohttp.ClientConnectorSSLError: NOT_SENT_FINAL,
    aiohttp.ClientConnectorCertificateError: NOT_SENT_FINAL,
    aiohttp.ServerFingerprintMismatch: NOT_SENT_FINAL,
    aiohttp.ClientHttpProxyError: NOT_SENT_FINAL,
    aiohttp.ConnectionTimeoutError: NOT_SENT_RETRY,
    aiohttp.ServerConnectionError: POSSIBLY_CHARGED,
    aiohttp.ServerDisconnectedError: POSSIBLY_CHARGED,
    aiohttp.ServerTimeoutError: POSSIBLY_CHARGED,
    aiohttp.SocketTimeoutError: POSSIBLY_CHARGED,
    aiohttp.ClientPayloadError: POSSIBLY_CHARGED,
    aiohttp.ClientResponseError: POSSIBLY_CHARGED,
    aiohttp.ContentTypeError: POSSIBLY_CHARGED,
    aiohttp.WSServerHandshakeError: POSSIBLY_CHARGED,
    aiohttp.TooManyRedirects: NOT_SENT_FINAL,
    aiohttp.RedirectClientError: NOT_SENT_FINAL,
    aiohttp.InvalidURL: NOT_SENT_FINAL,
    aiohttp.InvalidUrlClientError: NOT_SENT_FINAL,
    aiohttp.InvalidUrlRedirectClientError: NOT_SENT_FINAL,
    aiohttp.NonHttpUrlClientError: NOT_SENT_FINAL,
    aiohttp.NonHttpUrlRedirectClientError: NOT_SENT_FINAL,
    aiohttp.UploadAbortedError: NOT_SENT_RETRY,
    asyncio.TimeoutError: POSSIBLY_CHARGED,
}


def build(cls: type[BaseException], key: str) -> BaseException:
    """A realistic instance of cls whose request headers (and OS error text) hold the key."""
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {key}"}))
    info = aiohttp.RequestInfo(URL(SEARCH_URL), "POST", headers, URL(SEARCH_URL))
    connection = aiohttp.client_reqrep.ConnectionKey(
        "www.searchcans.com",
        443,
        True,
        True,
        URL("http://proxy.example:3128"),
        None,
        None,
        None,
    )
    os_error = ConnectionRefusedError(111, f"Connect call failed (Bearer {key})")
    if issubclass(cls, aiohttp.ClientResponseError):
        return cls(info, (), status=400, message="Invalid response", headers=headers)
    if cls is aiohttp.ClientConnectorCertificateError:
        return cls(connection, ssl.SSLCertVerificationError(1, "certificate verify failed"))
    if cls is client_exceptions.UnixClientConnectorError:
        return cls("/run/searchcans.sock", connection, os_error)
    if issubclass(cls, aiohttp.ClientConnectorError):
        return cls(connection, os_error)
    if cls is aiohttp.ServerFingerprintMismatch:
        return cls(b"\x01" * 32, b"\x02" * 32, "www.searchcans.com", 443)
    if cls is aiohttp.ServerDisconnectedError:
        return cls("Server disconnected")
    if issubclass(cls, aiohttp.InvalidURL):
        return cls(URL(SEARCH_URL), "not a URL")
    if issubclass(cls, aiohttp.NonHttpUrlClientError):
        return cls(URL("ftp://www.searchcans.com/"))
    if cls is aiohttp.ClientOSError:
        return cls(104, "Connection reset by peer")
    if cls is asyncio.TimeoutError:
        return cls()
    return cls(f"{cls.__name__} happened")


def test_the_exception_table_covers_every_aiohttp_exception() -> None:
    """Every aiohttp client exception type has an expected mapping: a new one fails here."""
    assert aiohttp_types() == set(EXPECTED)


@pytest.mark.parametrize("cls", sorted(EXPECTED, key=lambda cls: cls.__name__), ids=str)
async def test_every_aiohttp_exception_becomes_a_key_free_searchcans_error(
    client: SearchCans,
    mocked: aioresponses,
    canary_key: str,
    assert_key_free: Callable[[BaseException], None],
    cls: type[BaseException],
) -> None:
    """Raised from the POST, each aiohttp exception becomes a TransportError without the key."""
    mocked.post(SEARCH_URL, exception=build(cls, canary_key))
    error = await failure_of(client)
    assert type(error) is TransportError
    assert (error.retryable, error.charged) == EXPECTED[cls]
    assert error.http_status is None
    assert cls.__name__ in error.message
    assert_key_free(error)


@pytest.mark.parametrize("cls", sorted(EXPECTED, key=lambda cls: cls.__name__), ids=str)
def test_map_aiohttp_error_maps_each_type_directly(
    canary_key: str, assert_key_free: Callable[[BaseException], None], cls: type[BaseException]
) -> None:
    """map_aiohttp_error gives each type its flags, with or without a redactor."""
    for redact in (None, _Redactor(Secret(canary_key))):
        error = map_aiohttp_error(build(cls, canary_key), http_status=None, redact=redact)
        assert type(error) is TransportError
        assert (error.retryable, error.charged) == EXPECTED[cls]
        assert error.__cause__ is None
        assert error.__context__ is None
    redacted = map_aiohttp_error(
        build(cls, canary_key), http_status=None, redact=_Redactor(Secret(canary_key))
    )
    assert_key_free(redacted)


@pytest.mark.parametrize(
    ("status", "retryable"), [(503, True), (500, True), (429, True), (402, False), (400, False)]
)
def test_a_break_while_reading_an_error_answer_is_not_charged(status: int, retryable: bool) -> None:
    """A connection lost while reading a non-200 answer: not charged, retried per its status."""
    error = map_aiohttp_error(
        aiohttp.ClientPayloadError("Response payload is not completed"), http_status=status
    )
    assert (error.http_status, error.retryable, error.charged) == (status, retryable, False)


def test_a_break_while_reading_a_200_is_possibly_charged() -> None:
    """A connection lost while reading a 200 answer may have been billed."""
    error = map_aiohttp_error(aiohttp.ClientPayloadError("not completed"), http_status=200)
    assert (error.retryable, error.charged) == (False, None)
    assert "possibly charged" in error.message


async def test_a_refused_connection_is_retryable_and_not_charged(
    clock: VirtualClock,
    canary_key: str,
    assert_key_free: Callable[[BaseException], None],
    unused_tcp_port: int,
) -> None:
    """A real refused connection (nothing listens) maps to a retryable, uncharged error."""
    async with SearchCans(
        canary_key, base_url=f"http://127.0.0.1:{unused_tcp_port}", clock=clock, retry=NEVER
    ) as client:
        error = await failure_of(client)
    assert type(error) is TransportError
    assert (error.retryable, error.charged) == (True, False)
    assert "could not connect" in error.message
    assert_key_free(error)


async def test_a_lent_session_raising_for_status_still_gets_typed_errors(
    mocked: aioresponses, clock: VirtualClock, canary_key: str
) -> None:
    """A lent session with raise_for_status=True cannot turn a 402 into a transport error."""
    mocked.post(SEARCH_URL, status=402, payload=envelope(402, None, "no credits"))
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        client = SearchCans(canary_key, session=session, clock=clock, retry=NEVER)
        error = await failure_of(client)
        await client.aclose()
    assert type(error) is InsufficientCreditsError
    assert (error.http_status, error.charged, error.message) == (402, False, "no credits")


def test_only_the_transport_imports_aiohttp() -> None:
    """Outside the emulator, exactly one module of the package imports aiohttp."""
    package = Path(searchcans_async.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        if "testing" in path.relative_to(package).parts:
            continue  # the emulator is a server, not the client side
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "aiohttp" or name.startswith("aiohttp.") for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {"_client/transport.py"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"code": 0, "data": {"n": 1}}', {"code": 0, "data": {"n": 1}}),
        # orjson reads integers beyond 64 bits as floats (no SearchCans figure comes near)
        (b'{"big": 123456789012345678901234567890}', {"big": 1.2345678901234568e29}),
        (b'{"x": NaN}', "nan"),  # not JSON, but Python's json reads it: so do we
        (b"[" * 100_000 + b"]" * 100_000, None),  # nested too deep: unreadable, no crash
        (b"\xff\xfe not utf-8", None),
        (b"<html>", None),
    ],
)
def test_the_json_decoder_reads_what_json_reads(raw: bytes, expected: Any) -> None:
    """The fast decoder (orjson) falls back to json for what only json accepts (NaN)."""
    from searchcans_async._client.transport import _load_json  # noqa: PLC0415  # imported where the test needs it

    value = _load_json(raw)
    if expected == "nan":
        assert value["x"] != value["x"]  # NaN
    else:
        assert value == expected
