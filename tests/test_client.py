"""The client end to end against the emulator: keys, sessions, endpoints, timeouts, lanes."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from searchcans_async import (
    Account,
    AuthenticationError,
    CreditsExhausted,
    DeadlineTooShortError,
    LaneBusyError,
    LanePool,
    ReaderPage,
    ResponseFormatError,
    RetryPolicy,
    SearchCans,
    SearchResult,
    TransportError,
)
from searchcans_async._client.meter import current_lane
from searchcans_async._client.requests import ReadRequest, SearchRequest
from searchcans_async._client.secret import Secret
from searchcans_async._client.transport import Envelope
from searchcans_async.events import CallFinished, Event
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from searchcans_async._clock import VirtualClock


def client_for(emu: Emulator, clock: VirtualClock, **options: Any) -> SearchCans:
    """A client of emu on the virtual clock."""
    return SearchCans(emu.api_key, base_url=emu.base_url, clock=clock, **options)


def own_session(client: SearchCans) -> aiohttp.ClientSession | None:
    """The client's HTTP session (private; session ownership is what is under test)."""
    return client._transport._session  # the tests look inside on purpose


def drop(objects: list[Any]) -> None:
    """Let go of the last references to objects and collect them."""
    objects.clear()
    gc.collect()


# -- the key ---------------------------------------------------------------------------------


async def test_the_key_can_come_from_the_argument(
    emulator: Emulator, clock: VirtualClock, canary_key: str
) -> None:
    """api_key=... is the key sent."""
    async with SearchCans(canary_key, base_url=emulator.base_url, clock=clock) as client:
        assert (await client.account()).remain == 1_000


async def test_the_key_can_come_from_the_environment(
    emulator: Emulator, clock: VirtualClock, canary_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without api_key, SEARCHCANS_API_KEY is used."""
    monkeypatch.setenv("SEARCHCANS_API_KEY", canary_key)
    async with SearchCans(base_url=emulator.base_url, clock=clock) as client:
        assert (await client.account()).remain == 1_000
    assert emulator.stats().account_calls == 1


async def test_the_argument_wins_over_the_environment(
    emulator: Emulator, clock: VirtualClock, canary_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit api_key is used even when SEARCHCANS_API_KEY is set."""
    monkeypatch.setenv("SEARCHCANS_API_KEY", "sk_some_other_key")
    async with SearchCans(canary_key, base_url=emulator.base_url, clock=clock) as client:
        assert (await client.account()).concurrent == 3


async def test_the_base_url_can_come_from_the_environment(
    emulator: Emulator, clock: VirtualClock, canary_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without base_url, SEARCHCANS_BASE_URL is used; an explicit base_url wins over it."""
    monkeypatch.setenv("SEARCHCANS_BASE_URL", emulator.base_url)
    async with SearchCans(canary_key, clock=clock) as client:
        assert client.base_url == emulator.base_url
        assert (await client.account()).remain == 1_000
    monkeypatch.setenv("SEARCHCANS_BASE_URL", "http://127.0.0.1:9")
    async with SearchCans(canary_key, base_url=emulator.base_url, clock=clock) as client:
        assert client.base_url == emulator.base_url
    monkeypatch.delenv("SEARCHCANS_BASE_URL")
    async with SearchCans(canary_key, clock=clock) as client:
        assert client.base_url == "https://www.searchcans.com"


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_key_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """No argument and no (or an empty) SEARCHCANS_API_KEY: AuthenticationError saying how."""
    if value is None:
        monkeypatch.delenv("SEARCHCANS_API_KEY", raising=False)
    else:
        monkeypatch.setenv("SEARCHCANS_API_KEY", value)
    with pytest.raises(AuthenticationError, match="SEARCHCANS_API_KEY"):
        SearchCans()


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("", AuthenticationError, "the API key is empty"),
        ("   ", AuthenticationError, "the API key is empty"),
        ("sk_abc\ndef", AuthenticationError, "whitespace or control"),
        ("sk_abc\x00", AuthenticationError, "whitespace or control"),
        (b"sk_abc", TypeError, "must be a str"),
    ],
)
def test_a_malformed_key_fails_at_construction(
    key: Any, error: type[Exception], message: str
) -> None:
    """Empty keys, keys with control characters and non-str keys are refused up front."""
    with pytest.raises(error, match=message):
        SearchCans(key)


def test_surrounding_whitespace_is_stripped() -> None:
    """A key read from a file with a trailing newline is used without it."""
    assert Secret("  sk_abc\n").reveal() == "sk_abc"


def test_a_secret_can_be_passed_as_is() -> None:
    """A Secret is accepted as the key without being wrapped again."""
    secret = Secret("sk_abc")
    assert Secret.resolve(secret) is secret


# -- sessions --------------------------------------------------------------------------------


async def test_aclose_closes_the_clients_own_session(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """A client that created its session closes it in aclose(); aclose() is idempotent."""
    client = client_for(emulator, clock)
    await client.account()
    session = own_session(client)
    assert session is not None
    assert not session.closed
    await client.aclose()
    assert session.closed
    assert client.closed
    await client.aclose()


async def test_async_with_closes_the_clients_own_session(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Leaving `async with` closes the client's own session, even on an error."""
    client = client_for(emulator, clock)
    sessions: list[aiohttp.ClientSession | None] = []

    async def use_then_fail() -> None:
        async with client:
            await client.account()
            sessions.append(own_session(client))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await use_then_fail()
    [session] = sessions
    assert session is not None
    assert session.closed
    assert client.closed


async def test_a_lent_session_is_never_closed(emulator: Emulator, clock: VirtualClock) -> None:
    """A session given to the client stays open after aclose() and serves its owner on."""
    async with aiohttp.ClientSession() as session:
        async with client_for(emulator, clock, session=session) as client:
            await client.account()
        assert not session.closed
        async with client_for(emulator, clock, session=session) as second:
            assert (await second.account()).remain == 1_000
        assert not session.closed
    assert emulator.stats().account_calls == 2


async def test_a_closed_lent_session_gives_a_clear_error(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Using a client whose lent session was closed by its owner says so."""
    session = aiohttp.ClientSession()
    await session.close()
    client = client_for(emulator, clock, session=session)
    with pytest.raises(RuntimeError, match="session lent to this client is closed"):
        await client.account()


async def test_calls_after_aclose_raise_a_clear_error(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """A closed client refuses calls, saying to create a new one; nothing is sent."""
    client = client_for(emulator, clock)
    await client.aclose()
    with pytest.raises(RuntimeError, match="client is closed; create a new SearchCans"):
        await client.search("asyncio")
    with pytest.raises(RuntimeError, match="client is closed"):
        await client.account()
    assert emulator.stats().requests == 0
    assert own_session(client) is None


async def test_an_unclosed_client_warns(emulator: Emulator, clock: VirtualClock) -> None:
    """A client dropped with its own session open emits a ResourceWarning."""
    clients = [client_for(emulator, clock)]
    await clients[0].account()
    session = own_session(clients[0])
    assert session is not None
    with pytest.warns(ResourceWarning, match=r"unclosed <SearchCans http://127\.0\.0\.1"):
        drop(clients)
    await session.close()  # the test's own clean-up: no session leaks


async def test_closed_unused_and_borrowing_clients_do_not_warn(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Closed clients, never-used ones and ones on a lent session hold nothing: no warning."""
    closed = client_for(emulator, clock)
    await closed.account()
    await closed.aclose()
    unused = client_for(emulator, clock)
    async with aiohttp.ClientSession() as session:
        borrowing = client_for(emulator, clock, session=session)
        await borrowing.account()
        clients = [closed, unused, borrowing]
        del closed, unused, borrowing
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            drop(clients)
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_trust_env_is_off_by_default(canary_key: str) -> None:
    """The client ignores proxy environment variables unless trust_env=True."""
    assert SearchCans(canary_key)._transport._trust_env is False  # the setting itself
    assert SearchCans(canary_key, trust_env=True)._transport._trust_env is True


async def test_proxy_variables_are_ignored_by_default(
    emulator: Emulator, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    """With HTTP_PROXY pointing nowhere, the default client still reaches the server directly."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = f"http://127.0.0.1:{unused_tcp_port}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    async with client_for(emulator, clock) as client:
        assert (await client.account()).remain == 1_000
    never = RetryPolicy.never()
    async with client_for(emulator, clock, trust_env=True, retry=never) as trusting:
        with pytest.raises(TransportError, match="ClientProxyConnectionError"):
            await trusting.account()


def test_repr_shows_the_address_and_state(canary_key: str) -> None:
    """repr(client) shows the base URL and open/closed, nothing else."""
    client = SearchCans(canary_key, base_url="http://127.0.0.1:9")
    assert repr(client) == "<SearchCans http://127.0.0.1:9 open>"
    assert client.base_url == "http://127.0.0.1:9"


def test_a_non_positive_timeout_is_refused(canary_key: str) -> None:
    """timeout must be a positive number of seconds."""
    with pytest.raises(ValueError, match="timeout must be > 0"):
        SearchCans(canary_key, timeout=0)


# -- the endpoints against the emulator ------------------------------------------------------


async def test_account_reads_credits_lanes_and_keys(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """account() returns the emulator's remain, concurrent and key list, free of charge."""
    async with client_for(emulator, clock) as client:
        account = await client.account()
    assert isinstance(account, Account)
    assert (account.remain, account.concurrent, account.spendable()) == (1_000, 3, 1_000)
    [key] = account.keys
    assert (key.name, key.active, key.has_own_quota) == ("canary", True, False)
    assert emulator.stats().remain == 1_000


async def test_an_ill_typed_account_answer_names_the_field(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """An account answer with remain/concurrent as strings raises ResponseFormatError naming one."""
    emulator.set_faults(Faults(script={1: Fault.wrong_types()}, endpoints=["account"]))
    async with client_for(emulator, clock) as client:
        with pytest.raises(ResponseFormatError) as caught:
            await client.account()
        assert caught.value.field in {"remain", "concurrent"}
        assert f"field {caught.value.field!r} expected an integer, got str" in str(caught.value)
        assert (await client.account()).remain == 1_000  # the next answer is fine again


async def test_account_sees_a_keys_own_quota(clock: VirtualClock, canary_key: str) -> None:
    """A key with its own quota caps what the account says it may spend."""
    keys = [KeySpec(canary_key, name="capped", quota=30), KeySpec(name="other")]
    async with Emulator([AccountSpec(credits=500, keys=keys)], latency=0) as emu:
        async with client_for(emu, clock) as client:
            account = await client.account()
    assert account.spendable() == 30
    assert account.spendable("other") == 500


async def test_search_returns_parsed_results(emulator: Emulator, clock: VirtualClock) -> None:
    """search() returns ten organic results with the blocks asked for; one credit is charged."""
    async with client_for(emulator, clock) as client:
        result = await client.search(
            "asyncio", country="us", language="en", knowledge_graph=True, people_also_ask=True
        )
    assert isinstance(result, SearchResult)
    assert len(result) == 10
    assert [hit.position for hit in result.organic] == list(range(1, 11))
    assert all(hit.link.startswith("https://") for hit in result.organic)
    assert result.knowledge_graph is not None
    assert len(result.people_also_ask) == 3
    assert len(result.related_searches) == 4
    assert (result.credits, result.request_id) == (1, None)  # requestId null, as published
    assert emulator.stats().charged == 1
    [record] = emulator.log
    assert record.body == {
        "s": "asyncio",
        "t": "google",
        "country": "us",
        "language": "en",
        "knowledgeGraph": True,
        "peopleAlsoAsk": True,
    }


async def test_pages_n_fetches_n_pages_and_costs_n(emulator: Emulator, clock: VirtualClock) -> None:
    """pages=3 returns pages 1-3 in one call; the emulator charges 3 credits."""
    async with client_for(emulator, clock) as client:
        result = await client.search("asyncio", pages=3)
    assert len(result) == 30
    assert {hit.page for hit in result.organic} == {1, 2, 3}
    assert result.credits == 3
    assert (emulator.stats().charged, emulator.stats().remain) == (3, 997)
    assert [record.credits_charged for record in emulator.log] == [3]


async def test_a_vertical_engine_fills_its_own_list(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """engine='google_news' answers in news_results, not organic."""
    async with client_for(emulator, clock) as client:
        result = await client.search("asyncio", "google_news")
    assert (len(result.news_results), len(result.organic)) == (10, 0)
    assert result.news_results[0].date


async def test_a_legacy_list_answer_is_normalised(clock: VirtualClock) -> None:
    """Against a server answering the v0 bare list, results come out with link and snippet."""
    async with Emulator(legacy_search_shape=True, latency=0) as emu:
        async with client_for(emu, clock) as client:
            result = await client.search("asyncio")
    assert len(result) == 10
    assert all(hit.link and hit.snippet for hit in result.organic)


async def test_no_results_is_empty_and_uncharged(clock: VirtualClock) -> None:
    """A query the server finds nothing for is an empty result; nothing is charged."""
    async with Emulator(no_results={"zzzz"}, latency=0) as emu:
        async with client_for(emu, clock) as client:
            result = await client.search("zzzz")
        assert (result.no_results, result.credits, len(result)) == (True, 0, 0)
        assert emu.stats().charged == 0


async def test_a_reader_no_results_is_an_empty_uncharged_page(clock: VirtualClock) -> None:
    """A Reader call answered 9999 is an empty page marked no_results, not a charged error."""
    url = "https://example.com/empty"
    async with Emulator(no_results={url}, latency=0, wire=WireOptions(request_ids=True)) as emu:
        async with client_for(emu, clock) as client:
            page = await client.read(url, proxy=1)
        assert (page.no_results, page.markdown, page.credits, page.url) == (True, "", 0, url)
        assert page.request_id == emu.log[0].request_id
        assert emu.stats().charged == 0


@pytest.mark.parametrize(("proxy", "credits"), [(0, 2), (1, 4), (2, 7), (3, 12)])
async def test_read_charges_by_proxy_tier(
    emulator: Emulator, clock: VirtualClock, proxy: Any, credits: int
) -> None:
    """read(proxy=N) is charged 2/4/7/12 by the server, and the page says so."""
    async with client_for(emulator, clock) as client:
        page = await client.read("https://example.com/docs/asyncio-guide", proxy=proxy)
    assert isinstance(page, ReaderPage)
    assert not page.no_results
    assert page.markdown.startswith("# ")
    assert page.title
    assert page.credits == credits
    [record] = emulator.log
    assert record.credits_charged == credits
    assert emulator.stats().remain == 1_000 - credits


async def test_read_returns_what_was_asked(emulator: Emulator, clock: VirtualClock) -> None:
    """html, file and image options come back as html, file_markdown and image_url."""
    async with client_for(emulator, clock) as client:
        plain = await client.read("https://example.com/a")
        full = await client.read(
            "https://example.com/a.pdf",
            browser=True,
            wait=0.002,
            html=True,
            file=True,
            image=2,
            captcha=True,
        )
    assert (plain.html, plain.file_markdown, plain.image_url) == (None, None, None)
    assert full.html is not None
    assert full.html.startswith("<!doctype html>")
    assert full.file_markdown is not None
    assert full.image_url is not None
    assert full.image_url.endswith("fullpage.png")
    assert emulator.log[1].body == {
        "s": "https://example.com/a.pdf",
        "t": "url",
        "mode": 1,
        "w": 2,
        "html": 1,
        "captcha": 1,
        "file": 1,
        "image": 2,
    }


async def test_send_runs_a_prepared_request(emulator: Emulator, clock: VirtualClock) -> None:
    """send() takes a SearchRequest or ReadRequest, as batch runners build them."""
    async with client_for(emulator, clock) as client:
        result = await client.send(SearchRequest(query="asyncio", page=2))
        page = await client.send(ReadRequest(url="https://example.com/x"))
    assert result.organic[0].position == 11
    assert page.url == "https://example.com/x"


async def test_every_attempt_emits_call_finished(emulator: Emulator, clock: VirtualClock) -> None:
    """A successful call emits one CallFinished with its endpoint and credits."""
    events: list[Event] = []
    async with client_for(emulator, clock, on_event=events.append) as client:
        await client.account()
        await client.read("https://example.com/a", proxy=2)
    assert [(e.endpoint, e.outcome, e.credits) for e in events if isinstance(e, CallFinished)] == [
        ("account", "ok", 0),
        ("read", "ok", 7),
    ]


# -- timeouts --------------------------------------------------------------------------------


class RecordingTransport:
    """Stands in for the transport's post: records each timeout and answers code 0."""

    def __init__(self, data: Any) -> None:
        self.timeouts: list[float] = []
        self.data = data

    async def post(self, path: str, body: Mapping[str, Any], *, timeout: float) -> Envelope:
        self.timeouts.append(timeout)
        return Envelope(0, self.data, None, 200)


@pytest.mark.parametrize(
    ("client_timeout", "call", "expected"),
    [
        (1.0, {"query": "q"}, 15.0),
        (1.0, {"query": "q", "server_timeout": 20, "wait": 3}, 28.0),
        (35.0, {"query": "q", "server_timeout": 20}, 35.0),
        (35.0, {"query": "q", "server_timeout": 40}, 45.0),
        (1.0, {"query": "q", "server_timeout": 20, "timeout": 60.0}, 60.0),
        (1.0, {"query": "q", "server_timeout": 20, "timeout": 2.0}, 25.0),
        (1.0, {"query": "q", "server_timeout": 150}, 155.0),  # not cut to the deadline
    ],
)
async def test_the_attempt_timeout_outlasts_the_servers_own_wait(
    canary_key: str,
    clock: VirtualClock,
    monkeypatch: pytest.MonkeyPatch,
    client_timeout: float,
    call: dict[str, Any],
    expected: float,
) -> None:
    """Each attempt may take at least d + w + 5 s, whatever timeout= (client or call) says."""
    transport = RecordingTransport({"organic": []})
    async with SearchCans(canary_key, clock=clock, timeout=client_timeout) as client:
        monkeypatch.setattr(client._transport, "post", transport.post)
        await client.search(**call)
    assert transport.timeouts == [expected]


async def test_a_reader_wait_lengthens_the_timeout(
    canary_key: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read(browser=True, wait=5, server_timeout=30) may take 40 s (d + w + 5)."""
    transport = RecordingTransport({"markdown": "m"})
    async with SearchCans(canary_key, clock=clock, timeout=1.0) as client:
        monkeypatch.setattr(client._transport, "post", transport.post)
        await client.read("https://a.example", browser=True, wait=5, server_timeout=30)
    assert transport.timeouts == [40.0]


async def test_a_deadline_shorter_than_one_attempt_refuses_before_sending(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """deadline=0.2 s cannot cover a search's 10 s server wait: refused, never sent."""
    emulator.pause()  # were it sent, the server would hold it past the deadline
    policy = RetryPolicy(deadline=0.2)
    async with client_for(emulator, clock, retry=policy) as client:
        with pytest.raises(DeadlineTooShortError, match="cannot cover one whole attempt") as caught:
            await client.search("asyncio")
    emulator.resume()
    assert (caught.value.charged, caught.value.retryable) == (False, False)
    assert emulator.stats().requests == 0


async def test_a_deadline_shortens_a_generous_client_timeout_but_never_the_servers_wait(
    canary_key: str, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """timeout=60 with deadline=20: the attempt gets 20 s, which still covers d + 5 = 15 s."""
    transport = RecordingTransport({"organic": []})
    policy = RetryPolicy(deadline=20.0)
    async with SearchCans(canary_key, clock=clock, timeout=60.0, retry=policy) as client:
        monkeypatch.setattr(client._transport, "post", transport.post)
        await client.search("q")
        with pytest.raises(DeadlineTooShortError):
            await client.search("q", server_timeout=30)
    assert transport.timeouts == [20.0]


# -- lanes: what a call tells the lane it runs in --------------------------------------------


class FakeLane:
    """A LaneMeter recording what the client reports."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.calls: list[tuple[str, int, bool | None]] = []
        self.refuse = refuse

    def cover_nowait(self, cost: int) -> bool:
        if self.refuse:
            return False  # the client must then await cover(), which refuses
        self.calls.append(("cover", cost, None))
        return True

    async def cover(self, cost: int) -> None:
        if self.refuse:
            raise CreditsExhausted(needed=cost, available=0)
        self.calls.append(("cover", cost, None))

    def settle(self, cost: int, charged: bool | None) -> None:
        self.calls.append(("settle", cost, charged))

    def lane_busy(self) -> None:
        self.calls.append(("lane_busy", 0, None))


async def test_a_call_in_a_lane_covers_and_settles_each_attempt(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Each attempt covers its cost first; a 1010 settles uncharged and flags the lane busy."""
    emulator.set_faults(Faults(script={1: Fault.lane_busy()}))
    lane = FakeLane()
    token = current_lane.set(lane)
    try:
        async with client_for(emulator, clock) as client:
            await client.account()  # free: never touches the lane
            await client.search("asyncio", pages=2)
    finally:
        current_lane.reset(token)
    assert lane.calls == [
        ("cover", 2, None),
        ("settle", 2, False),
        ("lane_busy", 0, None),
        ("cover", 2, None),
        ("settle", 2, True),
    ]


async def test_a_possibly_charged_attempt_settles_as_unknown(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """A reset after the server charged settles the lane's cost as possibly charged."""
    emulator.set_faults(Faults(script={1: Fault.reset_after_charge()}))
    lane = FakeLane()
    token = current_lane.set(lane)
    try:
        async with client_for(emulator, clock) as client:
            with pytest.raises(TransportError):
                await client.read("https://example.com/a", proxy=1)
    finally:
        current_lane.reset(token)
    assert lane.calls == [("cover", 4, None), ("settle", 4, None)]


async def test_a_cancelled_attempt_settles_as_unknown(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Cancelling a call in flight settles its cost as possibly charged, then cancels."""
    emulator.pause()
    lane = FakeLane()
    token = current_lane.set(lane)
    try:
        async with client_for(emulator, clock) as client:
            task = asyncio.create_task(client.search("asyncio"))
            while emulator.stats().in_flight == 0:  # noqa: ASYNC110  # no event to wait on
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            emulator.resume()
    finally:
        current_lane.reset(token)
    assert lane.calls == [("cover", 1, None), ("settle", 1, None)]


async def test_a_lane_that_cannot_cover_stops_the_call_unsent(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """CreditsExhausted from the lane is raised before anything is sent, and not retried."""
    token = current_lane.set(FakeLane(refuse=True))
    try:
        async with client_for(emulator, clock) as client:
            with pytest.raises(CreditsExhausted):
                await client.search("asyncio")
    finally:
        current_lane.reset(token)
    assert emulator.stats().requests == 0
    assert clock.sleeps == []


async def test_a_closed_client_leaves_its_lane_untouched(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """A call on a closed client fails before covering anything: no phantom charge."""
    lane = FakeLane()
    client = client_for(emulator, clock)
    await client.aclose()
    token = current_lane.set(lane)
    try:
        with pytest.raises(RuntimeError, match="client is closed"):
            await client.search("asyncio")
    finally:
        current_lane.reset(token)
    assert lane.calls == []


async def test_a_lane_busy_error_without_a_lane_is_just_retried(
    emulator: Emulator, clock: VirtualClock
) -> None:
    """Outside any lane, a 1010 is retried with nothing else to report."""
    emulator.set_faults(Faults(script={1: Fault.lane_busy(), 2: Fault.lane_busy()}))
    async with client_for(emulator, clock, retry=RetryPolicy(attempts=2)) as client:
        with pytest.raises(LaneBusyError):
            await client.search("asyncio")
    assert emulator.stats().requests == 2


def test_lanes_builds_a_pool_on_this_clients_account(canary_key: str) -> None:
    """client.lanes() returns a LanePool (entered with async with)."""
    assert isinstance(SearchCans(canary_key).lanes(budget=10), LanePool)
