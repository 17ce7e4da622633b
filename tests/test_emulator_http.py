"""The emulator over real HTTP: auth, envelope, validation, shapes and determinism."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from emulator_support import ACCOUNT, BULLET, READER, SEARCH, send

from searchcans_async.testing import AccountSpec, Emulator, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(latency=0.001) as emulator:
        yield emulator


async def post(
    session: aiohttp.ClientSession,
    emu: Emulator,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
    data: bytes | None = None,
    authorization: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    if body is None and data is None:
        data = b"{}"
    reply = await send(
        session, emu.base_url + path, body,
        key=key or emu.api_key, data=data, authorization=authorization,
    )  # fmt: skip
    return reply.status, reply.json(), reply.headers


async def test_default_emulator_is_one_account_with_three_lanes_and_a_key() -> None:
    """Emulator() serves one account: 10 000 credits, 3 lanes, one active key, a few ms."""
    async with Emulator() as emu, aiohttp.ClientSession() as session:
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert emu.keys == (emu.api_key,)
        assert emu.accounts == ("main",)
        status, envelope, _ = await post(session, emu, ACCOUNT)
        data = envelope["data"]
        assert (status, data["remain"], data["concurrent"]) == (200, 10_000, 3)
        assert [key["active"] for key in data["keys"]] == [True]
        assert 0 < emu.log[0].latency < 0.1


async def test_account_endpoint_matches_the_documented_shape(
    session: aiohttp.ClientSession,
) -> None:
    """/api/user/key answers the whole account in camelCase with masked keys, free of charge."""
    spec = AccountSpec(
        credits=100,
        permanent_credits=5,
        lanes=2,
        keys=[KeySpec(name="shared"), KeySpec(name="capped", quota=40, active=False)],
    )
    async with Emulator([spec]) as emu:
        status, envelope, _ = await post(session, emu, ACCOUNT)
    assert status == 200
    assert set(envelope) == {"code", "data", "msg", "requestId"}
    assert envelope["code"] == 0
    assert envelope["requestId"] is None  # as in the published example
    data = envelope["data"]
    expected = {
        "nickName",
        "email",
        "origin",
        "faceUrl",
        "id",
        "type",
        "lang",
        "expire",
        "token",
        "refreshToken",
        "keys",
        "key",
        "remain",
        "current",
        "month",
        "total",
        "permanentRemain",
        "permanentCurrent",
        "permanentMonth",
        "permanentTotal",
        "seq",
        "concurrent",
        "recommend",
    }
    assert set(data) == expected
    assert (data["remain"], data["total"], data["permanentRemain"], data["concurrent"]) == (
        105,
        100,
        5,
        2,
    )
    assert data["token"] == ""
    shared, capped = data["keys"]
    assert set(shared) == {
        "uid",
        "name",
        "email",
        "nickName",
        "faceUrl",
        "key",
        "total",
        "remain",
        "type",
        "id",
        "active",
    }
    assert (shared["name"], shared["total"], shared["remain"], shared["active"]) == (
        "shared",
        -1,
        0,
        True,
    )
    assert (capped["name"], capped["total"], capped["remain"], capped["active"]) == (
        "capped",
        40,
        40,
        False,
    )
    assert data["key"] == shared["key"] == capped["key"] == "sk_" + BULLET * 6  # as published
    assert all(key not in str(envelope) for key in emu.keys)
    stats = emu.stats()
    assert (stats.account_calls, stats.requests, stats.charged, stats.remain) == (1, 0, 0, 105)


@pytest.mark.parametrize("path", [ACCOUNT, SEARCH, READER])
async def test_missing_or_unknown_keys_get_401(
    session: aiohttp.ClientSession, emu: Emulator, path: str
) -> None:
    """A missing, unknown or non-Bearer key answers HTTP 401 with code 401 on every endpoint."""
    body = {"s": "q", "t": "google"}
    for authorization in ("", "Bearer sk_wrong_0123456789", f"Token {emu.api_key}"):
        status, envelope, _ = await post(session, emu, path, body, authorization=authorization)
        assert (status, envelope["code"]) == (401, 401)
    assert emu.stats().refusals[401] == 3
    assert emu.stats().charged == 0


@pytest.mark.parametrize("path", [ACCOUNT, SEARCH, READER])
async def test_inactive_key_gets_403(
    session: aiohttp.ClientSession, emu: Emulator, path: str
) -> None:
    """An inactive key answers HTTP 403 with code 403, uncharged, on every endpoint."""
    emu.set_key_active(emu.api_key, False)
    status, envelope, _ = await post(session, emu, path, {"s": "https://a.example", "t": "url"})
    assert (status, envelope["code"]) == (403, 403)
    assert emu.stats().refusals == {403: 1}
    emu.set_key_active(emu.api_key, True)
    status, envelope, _ = await post(session, emu, ACCOUNT)
    assert status == 200


async def test_every_answer_carries_a_fresh_request_id(session: aiohttp.ClientSession) -> None:
    """With WireOptions(request_ids=True), requestId is a new string each time, as logged."""
    ids = set()
    async with Emulator(latency=0, wire=WireOptions(request_ids=True)) as emu:
        for _ in range(3):
            _, envelope, _ = await post(session, emu, SEARCH, {"s": "q", "t": "google"})
            ids.add(envelope["requestId"])
    assert len(ids) == 3
    assert {record.request_id for record in emu.log} == ids


INVALID_BODIES = [
    (SEARCH, {"t": "google"}, "s:"),
    (SEARCH, {"s": "", "t": "google"}, "s:"),
    (SEARCH, {"s": "q"}, "t:"),
    (SEARCH, {"s": "q", "t": "yahoo"}, "t:"),
    (SEARCH, {"s": "q", "t": "google", "p": 0}, "p:"),
    (SEARCH, {"s": "q", "t": "google", "page": "2"}, "page:"),
    (SEARCH, {"s": "q", "t": "google", "d": -5}, "d:"),
    (SEARCH, {"s": "q", "t": "google", "country": 3}, "country:"),
    (SEARCH, {"s": "q", "t": "google", "peopleAlsoAsk": "yes"}, "peopleAlsoAsk:"),
    (READER, {"s": "https://a.example"}, "t:"),
    (READER, {"s": "https://a.example", "t": "google"}, "t:"),
    (READER, {"s": "ftp://a.example", "t": "url"}, "s:"),
    (READER, {"s": "https://a.example", "t": "url", "proxy": 4}, "proxy:"),
    (READER, {"s": "https://a.example", "t": "url", "proxy": -1}, "proxy:"),
    (READER, {"s": "https://a.example", "t": "url", "proxy": True}, "proxy:"),
    (READER, {"s": "https://a.example", "t": "url", "w": 500}, "w:"),
    (READER, {"s": "https://a.example", "t": "url", "image": 3}, "image:"),
    (READER, ["https://a.example"], "body:"),
]


@pytest.mark.parametrize(("path", "body", "field"), INVALID_BODIES)
async def test_invalid_bodies_get_400_naming_the_field(
    session: aiohttp.ClientSession, emu: Emulator, path: str, body: Any, field: str
) -> None:
    """A malformed body answers HTTP 400 with code 400, names the field, and is not charged."""
    status, envelope, _ = await post(session, emu, path, body)
    assert (status, envelope["code"]) == (400, 400)
    assert envelope["msg"].startswith(field)
    stats = emu.stats()
    assert (stats.charged, stats.refusals[400], stats.in_flight) == (0, 1, 0)


@pytest.mark.parametrize("data", [b"not json", b"", b"[1, 2", b'"text"'])
async def test_non_object_json_gets_400(
    session: aiohttp.ClientSession, emu: Emulator, data: bytes
) -> None:
    """A body that is not a JSON object answers 400 naming the body."""
    status, envelope, _ = await post(session, emu, SEARCH, data=data)
    assert (status, envelope["code"], envelope["msg"]) == (400, 400, "body: must be a JSON object")


async def test_unknown_fields_and_valid_options_are_accepted(
    session: aiohttp.ClientSession, emu: Emulator
) -> None:
    """Unknown fields are ignored; d, w, flags as booleans or 0/1 are valid."""
    body = {"s": "q", "t": "google", "d": 20000, "w": 0, "aiSummary": True, "html": 0, "x": [1]}
    status, envelope, _ = await post(session, emu, SEARCH, body)
    assert (status, envelope["code"]) == (200, 0)
    reader = {"s": "https://a.example/doc.pdf", "t": "url", "mode": 1, "w": 1, "proxy": 0}
    status, envelope, _ = await post(session, emu, READER, reader)
    assert (status, envelope["code"]) == (200, 0)


@pytest.mark.parametrize(("old", "new"), [("/api/search", SEARCH), ("/api/url", READER)])
async def test_deprecated_v0_paths_answer_with_a_deprecation_header(
    session: aiohttp.ClientSession, emu: Emulator, old: str, new: str
) -> None:
    """/api/url answers as v1 does, /api/search the v0 list; both add Deprecation and Sunset."""
    body = {"s": "https://a.example/x", "t": "url"} if new == READER else {"s": "q", "t": "google"}
    _, v0, v0_headers = await post(session, emu, old, body)
    _, v1, v1_headers = await post(session, emu, new, body)
    if new == READER:
        assert v0["data"] == v1["data"]
    else:
        assert [item["url"] for item in v0["data"]] == [r["link"] for r in v1["data"]["organic"]]
    assert v0_headers["Deprecation"] == "true"
    assert "2026" in v0_headers["Sunset"]
    assert "Deprecation" not in v1_headers
    assert [record.endpoint for record in emu.log] == [new.rsplit("/", 1)[1]] * 2


async def test_search_returns_ten_organic_results_per_page(
    session: aiohttp.ClientSession, emu: Emulator
) -> None:
    """page=N returns pages 1..N (10 results each, carrying their page); p selects one page."""
    _, envelope, _ = await post(
        session, emu, SEARCH, {"s": "asyncio lanes", "t": "google", "page": 3}
    )
    organic = envelope["data"]["organic"]
    assert [item["page"] for item in organic] == [1] * 10 + [2] * 10 + [3] * 10
    assert [item["position"] for item in organic] == list(range(1, 31))
    assert all(
        set(item) == {"position", "title", "link", "snippet", "source", "page"} for item in organic
    )
    assert all(item["link"].startswith("https://") for item in organic)
    assert isinstance(envelope["data"]["relatedSearches"], list)
    _, envelope, _ = await post(session, emu, SEARCH, {"s": "asyncio lanes", "t": "google", "p": 2})
    assert envelope["data"]["organic"] == organic[10:20]


async def test_search_adds_the_optional_blocks_asked_for(
    session: aiohttp.ClientSession, emu: Emulator
) -> None:
    """Feature flags add their blocks; html: 1 adds the page's HTML."""
    flags = [
        "knowledgeGraph",
        "peopleAlsoAsk",
        "aiSummary",
        "newsAggregation",
        "videoAggregation",
        "peopleAlsoSearchFor",
    ]
    _, plain, _ = await post(session, emu, SEARCH, {"s": "q", "t": "bing"})
    assert set(plain["data"]) == {"organic", "relatedSearches"}
    body = {"s": "q", "t": "bing", "html": 1, **dict.fromkeys(flags, True)}
    _, full, _ = await post(session, emu, SEARCH, body)
    assert set(full["data"]) == {
        "organic",
        "relatedSearches",
        "knowledgeGraph",
        "peopleAlsoAsk",
        "aiSummary",
        "topStories",
        "videos",
        "suggestedSearches",
        "html",
    }


@pytest.mark.parametrize(
    ("engine", "block", "field"),
    [
        ("google_news", "news_results", "date"),
        ("google_shopping", "shopping_results", "price"),
        ("google_images", "images_results", "original"),
        ("google_videos", "video_results", "duration"),
        ("google_short_videos", "short_video_results", "channel"),
    ],
)
async def test_vertical_engines_answer_their_own_lists(
    session: aiohttp.ClientSession, emu: Emulator, engine: str, block: str, field: str
) -> None:
    """Vertical engines return their own result list (10 items with their own fields)."""
    _, envelope, _ = await post(session, emu, SEARCH, {"s": "rust", "t": engine})
    items = envelope["data"][block]
    assert len(items) == 10
    assert all(field in item and item["link"] for item in items)
    assert "organic" not in envelope["data"]


async def test_reader_returns_markdown_and_the_extras_asked_for(
    session: aiohttp.ClientSession, emu: Emulator
) -> None:
    """Reader data has markdown/title/description, plus html, fileMarkdown, imageUrl on request."""
    url = "https://blog.example.com/posts/async-python-lanes"
    _, plain, _ = await post(session, emu, READER, {"s": url, "t": "url"})
    assert set(plain["data"]) == {"markdown", "title", "description"}
    assert plain["data"]["markdown"].startswith("# ")
    assert url in plain["data"]["markdown"]
    assert "blog.example.com" in plain["data"]["title"]
    body = {"s": url, "t": "url", "html": 1, "file": 1, "image": 2}
    _, full, _ = await post(session, emu, READER, body)
    assert set(full["data"]) == {
        "markdown",
        "title",
        "description",
        "html",
        "fileMarkdown",
        "imageUrl",
    }
    assert full["data"]["imageUrl"].endswith("fullpage.png")


async def test_same_seed_gives_the_same_keys_and_answers(session: aiohttp.ClientSession) -> None:
    """Two emulators with one seed generate the same keys and the same results."""
    bodies = [
        (SEARCH, {"s": "same", "t": "google", "page": 2}),
        (READER, {"s": "https://x.example/a", "t": "url"}),
    ]
    answers = []
    for seed in (7, 7, 8):
        async with Emulator(seed=seed) as emu:
            answers.append(
                (
                    emu.api_key,
                    [(await post(session, emu, path, body))[1]["data"] for path, body in bodies],
                )
            )
    assert answers[0] == answers[1]
    assert answers[0][0] != answers[2][0]
    assert answers[0][1] == answers[2][1]  # results derive from the request, not the seed


async def test_legacy_shape_answers_a_bare_list(session: aiohttp.ClientSession) -> None:
    """legacy_search_shape=True answers the v0 list of {title, url, content}."""
    async with Emulator(legacy_search_shape=True, latency=0) as emu:
        _, envelope, _ = await post(session, emu, SEARCH, {"s": "q", "t": "google", "page": 2})
    data = envelope["data"]
    assert isinstance(data, list)
    assert len(data) == 20
    assert all(set(item) == {"title", "url", "content"} for item in data)


async def test_no_results_queries_answer_9999_uncharged(session: aiohttp.ClientSession) -> None:
    """Queries in no_results answer HTTP 200, code 9999, data [] and cost nothing."""
    async with Emulator(no_results={"nothing here"}, latency=0) as emu:
        status, envelope, _ = await post(session, emu, SEARCH, {"s": "nothing here", "t": "google"})
        stats = emu.stats()
    assert (status, envelope["code"], envelope["data"]) == (200, 9999, [])
    assert (stats.charged, stats.successes, stats.refusals[9999], stats.remain) == (0, 0, 1, 10_000)


async def test_the_api_key_never_appears_in_records_reprs_or_errors(
    session: aiohttp.ClientSession,
) -> None:
    """Keys show up masked or by name only: log, stats, reprs, specs and error messages."""
    secret = "sk_live_0123456789abcdef0123"
    spec = AccountSpec(keys=[KeySpec(secret, name="prod")])
    async with Emulator([spec], latency=0) as emu:
        await post(session, emu, SEARCH, {"s": "q", "t": "google"})
        await post(session, emu, ACCOUNT)
        await post(session, emu, SEARCH, {"s": "q"}, key=secret + "x")
        with pytest.raises(KeyError) as missing:
            emu.set_key_active(secret + "x", False)
        texts = [repr(emu), repr(emu.stats()), repr(emu.log), repr(spec), str(missing.value)]
        texts += [repr(state) for state in emu._service.accounts[0].keys]
        texts.append(repr(emu._service.accounts[0]))
    assert emu.log[0].key_name == "prod"
    for text in texts:
        assert secret not in text
        assert secret[:-4] not in text
