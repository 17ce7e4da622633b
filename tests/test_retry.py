"""Billing-aware retries against the emulator's scripted faults, on a virtual clock."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import pytest

from searchcans_async import (
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    DeadlineTooShortError,
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
from searchcans_async.events import CallFinished, Event, RetryScheduled
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec

if TYPE_CHECKING:
    from searchcans_async._clock import VirtualClock
    from searchcans_async.testing.pytest_plugin import EmulatorFactory


@pytest.fixture
def serve(searchcans_emulator_factory: EmulatorFactory, canary_key: str) -> Any:
    """Start an emulator whose requests 1, 2, ... get the given faults (None: no fault)."""

    async def start(*script: Fault | None, **options: Any) -> Emulator:
        spec = options.pop(
            "account", AccountSpec(credits=1_000, lanes=3, keys=[KeySpec(canary_key)])
        )
        faults = Faults(script={n: f for n, f in enumerate(script, 1) if f is not None})
        return await searchcans_emulator_factory([spec], faults=faults, latency=0, **options)

    return start


def client_for(emu: Emulator, clock: VirtualClock, **options: Any) -> SearchCans:
    """A client of emu on the virtual clock."""
    return SearchCans(emu.api_key, base_url=emu.base_url, clock=clock, **options)


# -- what is retried, and after how long -----------------------------------------------------


async def test_a_busy_lane_is_retried_after_100_to_500_ms(serve: Any, clock: VirtualClock) -> None:
    """1010 is retried after a random 0.1-0.5 s; the second try succeeds and is charged once."""
    emu = await serve(Fault.lane_busy())
    async with client_for(emu, clock) as client:
        result = await client.search("asyncio")
    assert len(result) == 10
    [delay] = clock.sleeps
    assert 0.1 <= delay <= 0.5
    stats = emu.stats()
    assert (stats.requests, stats.successes, stats.charged) == (2, 1, 1)
    assert stats.refusals == {1010: 1}


async def test_lane_busy_delays_are_jittered(serve: Any, clock: VirtualClock) -> None:
    """Consecutive 1010 retries wait different random delays, all within 0.1-0.5 s."""
    emu = await serve(*[Fault.lane_busy()] * 4)
    async with client_for(emu, clock) as client:
        await client.search("asyncio")
    assert len(clock.sleeps) == 4
    assert all(0.1 <= delay <= 0.5 for delay in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


async def test_retry_after_seconds_is_honoured(serve: Any, clock: VirtualClock) -> None:
    """A 429 with Retry-After: 3 waits exactly 3 s before the retry."""
    emu = await serve(Fault.rate_limited(3))
    async with client_for(emu, clock) as client:
        await client.search("asyncio")
    assert clock.sleeps == [3.0]
    assert emu.stats().requests == 2


async def test_retry_after_is_capped(serve: Any, clock: VirtualClock) -> None:
    """A Retry-After longer than retry_after_max waits only the cap."""
    emu = await serve(Fault.rate_limited(100))
    async with client_for(emu, clock, retry=RetryPolicy(retry_after_max=7.5)) as client:
        await client.search("asyncio")
    assert clock.sleeps == [7.5]


async def test_retry_after_as_an_http_date_is_honoured(serve: Any, clock: VirtualClock) -> None:
    """A Retry-After HTTP-date 20 s ahead waits about 20 s (1 s date resolution)."""
    emu = await serve(Fault.rate_limited(20, http_date=True))
    async with client_for(emu, clock) as client:
        await client.search("asyncio")
    [delay] = clock.sleeps
    assert 18.0 <= delay <= 20.0


@pytest.mark.parametrize("retry_after", ["soon", None])
async def test_a_429_without_a_usable_retry_after_backs_off(
    serve: Any, clock: VirtualClock, retry_after: str | None
) -> None:
    """Garbage or absent Retry-After: the usual jittered backoff applies."""
    emu = await serve(Fault.rate_limited(retry_after))
    policy = RetryPolicy(backoff_initial=0.25)
    async with client_for(emu, clock, retry=policy) as client:
        await client.search("asyncio")
    [delay] = clock.sleeps
    assert 0.0 <= delay <= 0.25


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.api_timeout(1001), ApiTimeoutError),
        (Fault.api_timeout(-1001), ApiTimeoutError),
        *[(Fault.throttled(code), RateLimitedError) for code in (1002, 1005, 1009)],
        (Fault.network_code(443), ServerError),
        (Fault.network_code(10054), ServerError),
        *[(Fault.server_error(status), ServerError) for status in (500, 502, 503, 504)],
        (Fault.server_error(502, html=True), ServerError),
    ],
    ids=repr,
)
async def test_uncharged_failures_are_retried(
    serve: Any, clock: VirtualClock, fault: Fault, error: type[SearchCansError]
) -> None:
    """Server timeouts, throttling, network codes and 5xx are retried, then succeed."""
    events: list[Event] = []
    emu = await serve(fault)
    async with client_for(emu, clock, on_event=events.append) as client:
        await client.search("asyncio")
    assert emu.stats().requests == 2
    assert emu.stats().charged == 1
    [scheduled] = [e for e in events if isinstance(e, RetryScheduled)]
    assert scheduled.reason == error.__name__


async def test_backoff_grows_exponentially_under_its_cap(serve: Any, clock: VirtualClock) -> None:
    """Retry n waits a random time in [0, min(backoff_max, initial * 2**(n-1))]."""
    emu = await serve(*[Fault.server_error()] * 7)
    policy = RetryPolicy(attempts=8, backoff_initial=0.5, backoff_max=3.0, deadline=None)
    async with client_for(emu, clock, retry=policy) as client:
        await client.search("asyncio")
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert len(clock.sleeps) == len(ceilings)
    assert all(0.0 <= d <= c for d, c in zip(clock.sleeps, ceilings, strict=True))


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    """Backoff delays are uniform over [0, ceiling]: small and large waits both occur."""
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=4.0)
    rng = random.Random(7)
    error = ServerError("down")
    delays = [policy.delay(error, 3, rng) for _ in range(2_000)]
    assert min(delays) >= 0.0
    assert max(delays) <= 4.0
    assert min(delays) < 0.2
    assert max(delays) > 3.8
    assert 1.8 < sum(delays) / len(delays) < 2.2


def test_the_ceiling_never_passes_backoff_max() -> None:
    """Even at retry 50, the delay stays within backoff_max (no overflow, no minutes)."""
    policy = RetryPolicy(backoff_initial=0.25, backoff_max=8.0)
    rng = random.Random(1)
    assert all(policy.delay(ServerError("x"), 50, rng) <= 8.0 for _ in range(100))


def test_a_503_with_retry_after_waits_as_asked() -> None:
    """A server error that says Retry-After is retried after that wait (capped)."""
    error = ServerError("maintenance", http_status=503)
    error.retry_after = 4.0
    policy = RetryPolicy(retry_after_max=3.0)
    assert policy.delay(error, 1, random.Random(0)) == 3.0
    error.retry_after = 1.5
    assert policy.delay(error, 1, random.Random(0)) == 1.5


async def test_attempts_limit_the_tries(serve: Any, clock: VirtualClock) -> None:
    """attempts=3 sends three times, waits twice, then raises the last error."""
    emu = await serve(*[Fault.server_error()] * 5)
    policy = RetryPolicy(attempts=3)
    async with client_for(emu, clock, retry=policy) as client:
        with pytest.raises(ServerError) as caught:
            await client.search("asyncio")
    assert caught.value.http_status == 503
    assert emu.stats().requests == 3
    assert len(clock.sleeps) == 2
    assert emu.stats().charged == 0


async def test_the_deadline_stops_retrying(serve: Any, clock: VirtualClock) -> None:
    """No retry starts unless the server's own wait still fits before the deadline."""
    emu = await serve(*[Fault.rate_limited(2)] * 50)
    # The server may take its default 10 s plus the client's 5 s margin: a retry starts
    # only while 15 s of the deadline remain after its backoff.
    policy = RetryPolicy(attempts=50, deadline=22.0)
    async with client_for(emu, clock, retry=policy) as client:
        with pytest.raises(RateLimitedError):
            await client.search("asyncio")
    assert clock.sleeps == [2.0, 2.0, 2.0]  # a 4th would leave 22 - 8 = 14 s < 15 s
    assert emu.stats().requests == 4
    assert clock.now() < 7.0


async def test_a_retry_after_beyond_the_deadline_is_not_waited(
    serve: Any, clock: VirtualClock
) -> None:
    """When the asked wait alone passes the deadline, the error is raised at once."""
    emu = await serve(Fault.rate_limited(30))
    async with client_for(emu, clock, retry=RetryPolicy(deadline=20.0)) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.search("asyncio")
    assert caught.value.retry_after == 30.0
    assert clock.sleeps == []
    assert emu.stats().requests == 1


async def test_without_a_deadline_only_attempts_limit(serve: Any, clock: VirtualClock) -> None:
    """deadline=None lets every attempt run, however long the waits."""
    emu = await serve(*[Fault.rate_limited(25)] * 4)
    policy = RetryPolicy(attempts=5, deadline=None, retry_after_max=25.0)
    async with client_for(emu, clock, retry=policy) as client:
        await client.search("asyncio")
    assert clock.sleeps == [25.0] * 4


# -- what is never retried -------------------------------------------------------------------


async def test_bad_request_is_never_retried(serve: Any, clock: VirtualClock) -> None:
    """HTTP 400 is raised after one request."""
    emu = await serve(Fault.bad_request())
    async with client_for(emu, clock) as client:
        with pytest.raises(BadRequestError):
            await client.search("asyncio")
    assert (emu.stats().requests, clock.sleeps) == (1, [])


async def test_an_unknown_code_is_never_retried(serve: Any, clock: VirtualClock) -> None:
    """An unknown code is raised as UnexpectedResponseError after one request."""
    emu = await serve(Fault.unknown_code(7777))
    async with client_for(emu, clock, retry=RetryPolicy(retry_possibly_charged=True)) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.search("asyncio")
    assert (caught.value.code, caught.value.charged) == (7777, None)
    assert (emu.stats().requests, clock.sleeps) == (1, [])


async def test_an_unknown_key_is_never_retried(serve: Any, clock: VirtualClock) -> None:
    """HTTP 401 fails fast: one request, no wait."""
    emu = await serve()
    async with SearchCans("sk_wrong_key", base_url=emu.base_url, clock=clock) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.search("asyncio")
    assert caught.value.http_status == 401
    assert (emu.stats().requests, clock.sleeps) == (1, [])


async def test_an_inactive_key_is_never_retried(
    serve: Any, clock: VirtualClock, canary_key: str
) -> None:
    """HTTP 403 fails fast: one request, no wait."""
    spec = AccountSpec(keys=[KeySpec(canary_key, active=False)])
    emu = await serve(account=spec)
    async with client_for(emu, clock) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.search("asyncio")
    assert caught.value.http_status == 403
    assert (emu.stats().requests, clock.sleeps) == (1, [])


async def test_insufficient_credits_are_never_retried(
    serve: Any, clock: VirtualClock, canary_key: str
) -> None:
    """HTTP 402 fails fast: one request, no wait, nothing charged."""
    emu = await serve(account=AccountSpec(credits=1, keys=[KeySpec(canary_key)]))
    async with client_for(emu, clock) as client:
        with pytest.raises(InsufficientCreditsError) as caught:
            await client.search("asyncio", pages=2)
    assert (caught.value.http_status, caught.value.charged) == (402, False)
    assert (emu.stats().requests, emu.stats().remain, clock.sleeps) == (1, 1, [])


# -- possibly charged ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.reset_after_charge(), TransportError),
        (Fault.truncated_json(), ResponseFormatError),
        (Fault.truncated_json(cut_connection=True), TransportError),
    ],
    ids=repr,
)
async def test_a_possibly_charged_failure_is_not_retried_by_default(
    serve: Any, clock: VirtualClock, fault: Fault, error: type[SearchCansError]
) -> None:
    """A call that may have been served is raised as possibly charged, not sent again."""
    emu = await serve(fault)
    async with client_for(emu, clock) as client:
        with pytest.raises(error) as caught:
            await client.search("asyncio")
    assert caught.value.charged is None
    assert (emu.stats().requests, emu.stats().charged, clock.sleeps) == (1, 1, [])


@pytest.mark.parametrize(
    "fault",
    [Fault.reset_after_charge(), Fault.truncated_json(), Fault.reset_before()],
    ids=repr,
)
async def test_possibly_charged_failures_are_retried_when_opted_in(
    serve: Any, clock: VirtualClock, fault: Fault
) -> None:
    """retry_possibly_charged=True sends the call again (at the risk of paying twice)."""
    emu = await serve(fault)
    policy = RetryPolicy(retry_possibly_charged=True)
    async with client_for(emu, clock, retry=policy) as client:
        result = await client.search("asyncio")
    assert len(result) == 10
    assert emu.stats().requests == 2
    assert len(clock.sleeps) == 1


async def test_a_charged_malformed_answer_is_never_retried(serve: Any, clock: VirtualClock) -> None:
    """Wrong types in a code-0 answer were billed: raised as charged, never sent again."""
    emu = await serve(Fault.wrong_types())
    policy = RetryPolicy(retry_possibly_charged=True)
    async with client_for(emu, clock, retry=policy) as client:
        with pytest.raises(ResponseFormatError) as caught:
            await client.search("asyncio")
    assert (caught.value.field, caught.value.charged) == ("organic", True)
    assert (emu.stats().requests, clock.sleeps) == (1, [])


def test_should_retry_follows_the_flags() -> None:
    """Retryable errors retry; possibly-charged transport/format errors only when opted in."""
    default, opted_in = RetryPolicy(), RetryPolicy(retry_possibly_charged=True)
    possibly = [
        TransportError("reset", charged=None),
        ResponseFormatError("truncated", charged=None),
    ]
    never = [
        UnexpectedResponseError("odd", charged=None),
        ResponseFormatError("wrong types", charged=True),
        AuthenticationError("no"),
    ]
    assert default.should_retry(LaneBusyError("busy"))
    assert all(not default.should_retry(e) and opted_in.should_retry(e) for e in possibly)
    assert all(not default.should_retry(e) and not opted_in.should_retry(e) for e in never)


def test_next_wait_is_the_whole_retry_decision() -> None:
    """Give up on the last attempt, on what must not be retried, and when the wait plus one
    whole attempt would pass the deadline; otherwise wait the policy's delay."""
    rng = random.Random(7)
    policy = RetryPolicy(attempts=3, deadline=60.0, retry_after_max=30.0)
    limited = RateLimitedError("slow down", retry_after=4.0)

    def wait(error: SearchCansError, attempt: int, elapsed: float = 0.0) -> float | None:
        return policy.next_wait(error, attempt, elapsed=elapsed, min_attempt=15.0, rng=rng)

    assert wait(limited, 1) == 4.0
    assert wait(limited, 2) == 4.0
    assert wait(limited, 3) is None  # the third attempt was the last
    assert wait(AuthenticationError("no"), 1) is None  # never retried
    assert wait(limited, 1, elapsed=40.0) == 4.0  # 40 + 4 + 15 < 60
    assert wait(limited, 1, elapsed=41.0) is None  # 41 + 4 + 15 reaches the deadline
    assert (
        RetryPolicy(deadline=None).next_wait(limited, 1, elapsed=1e6, min_attempt=15.0, rng=rng)
        == 4.0
    )


def test_check_deadline_refuses_what_one_attempt_cannot_fit() -> None:
    """A deadline shorter than one whole attempt refuses the call; none or a longer one not."""
    RetryPolicy(deadline=15.0).check_deadline(15.0, "search")
    RetryPolicy(deadline=None).check_deadline(1e6, "search")
    too_short = r"\(14 s\) cannot cover one whole attempt at search"
    with pytest.raises(DeadlineTooShortError, match=too_short):
        RetryPolicy(deadline=14.0).check_deadline(15.0, "search")


# -- connection failures ---------------------------------------------------------------------


async def test_a_refused_connection_is_retried(
    clock: VirtualClock, canary_key: str, unused_tcp_port: int
) -> None:
    """Nothing listening: the call never left, so it is retried up to the attempts."""
    events: list[Event] = []
    async with SearchCans(
        canary_key,
        base_url=f"http://127.0.0.1:{unused_tcp_port}",
        clock=clock,
        retry=RetryPolicy(attempts=3),
        on_event=events.append,
    ) as client:
        with pytest.raises(TransportError) as caught:
            await client.search("asyncio")
    assert caught.value.charged is False
    assert len(clock.sleeps) == 2
    assert [e.outcome for e in events if isinstance(e, CallFinished)] == ["TransportError"] * 3


# -- per-call policy and events --------------------------------------------------------------


async def test_a_per_call_policy_overrides_the_clients(serve: Any, clock: VirtualClock) -> None:
    """retry= on the call wins over the client's policy, in both directions."""
    emu = await serve(Fault.lane_busy(), Fault.lane_busy())
    async with client_for(emu, clock, retry=RetryPolicy.never()) as client:
        with pytest.raises(LaneBusyError):
            await client.search("asyncio")
        result = await client.search("asyncio", retry=RetryPolicy(attempts=2))
    assert len(result) == 10
    assert emu.stats().requests == 3

    emu = await serve(Fault.lane_busy())
    async with client_for(emu, clock, retry=RetryPolicy(attempts=5)) as client:
        with pytest.raises(LaneBusyError):
            await client.read("https://example.com/a", retry=RetryPolicy.never())
    assert emu.stats().requests == 1


async def test_account_calls_are_retried_too(serve: Any, clock: VirtualClock) -> None:
    """account() goes through the same retry path as search() and read()."""
    emu = await serve()
    emu.set_faults(Faults(script={1: Fault.server_error(502)}, endpoints=["account"]))
    async with client_for(emu, clock) as client:
        account = await client.account()
    assert account.remain == 1_000
    assert emu.stats().account_calls == 2


async def test_retries_emit_retry_scheduled_and_call_finished(
    serve: Any, clock: VirtualClock
) -> None:
    """Each attempt emits CallFinished; each wait a RetryScheduled with its delay and reason."""
    events: list[Event] = []
    emu = await serve(Fault.lane_busy(), Fault.rate_limited(2))
    async with client_for(emu, clock, on_event=events.append) as client:
        await client.search("asyncio", pages=2)
    assert [type(e) for e in events] == [
        CallFinished,
        RetryScheduled,
        CallFinished,
        RetryScheduled,
        CallFinished,
    ]
    first, busy, second, limited, third = events
    assert isinstance(first, CallFinished)
    assert (first.endpoint, first.attempt, first.outcome, first.code, first.credits) == (
        "search",
        1,
        "LaneBusyError",
        1010,
        0,
    )
    assert isinstance(busy, RetryScheduled)
    assert (busy.endpoint, busy.attempt, busy.reason) == ("search", 1, "LaneBusyError")
    assert busy.delay == clock.sleeps[0]
    assert isinstance(limited, RetryScheduled)
    assert (limited.attempt, limited.delay, limited.reason) == (2, 2.0, "RateLimitedError")
    assert isinstance(second, CallFinished)
    assert (second.http_status, second.outcome) == (429, "RateLimitedError")
    assert isinstance(third, CallFinished)
    assert (third.attempt, third.outcome, third.http_status, third.code, third.credits) == (
        3,
        "ok",
        200,
        0,
        2,
    )


async def test_a_failing_event_hook_never_breaks_the_call(
    serve: Any, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_event hook that raises is logged; the call and its retries go on."""

    def broken(_event: Event) -> None:
        raise RuntimeError("monitoring is down")

    emu = await serve(Fault.lane_busy())
    async with client_for(emu, clock, on_event=broken) as client:
        assert len(await client.search("asyncio")) == 10
    assert "an on_event hook raised" in caplog.text


# -- the policy itself -----------------------------------------------------------------------


def test_the_defaults_survive_a_bad_minute() -> None:
    """Defaults: at least 3 retries, caps of seconds (not minutes), a finite deadline."""
    policy = RetryPolicy()
    assert policy.attempts >= 4
    assert policy.backoff_max <= 30
    assert policy.retry_after_max <= 60
    assert policy.lane_busy_delay == (0.1, 0.5)
    assert policy.deadline is not None
    assert 60 <= policy.deadline <= 300
    assert not policy.retry_possibly_charged


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, "attempts counts the first try"),
        ({"backoff_initial": 0}, "backoff_initial must be > 0"),
        ({"backoff_max": -1}, "backoff_max must be > 0"),
        ({"backoff_multiplier": 0}, "backoff_multiplier must be > 0"),
        ({"retry_after_max": 0}, "retry_after_max must be > 0"),
        ({"deadline": 0}, "deadline must be > 0 seconds or None"),
        ({"deadline": -1.0}, "deadline must be > 0 seconds or None"),
        ({"lane_busy_delay": (0.5, 0.1)}, "lane_busy_delay must be"),
        ({"lane_busy_delay": (-0.1, 0.5)}, "lane_busy_delay must be"),
    ],
)
def test_a_nonsensical_policy_is_refused(options: dict[str, Any], message: str) -> None:
    """Zero attempts, non-positive timings or a reversed delay range: ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**options)


def test_never_sends_once() -> None:
    """RetryPolicy.never() makes exactly one attempt."""
    assert RetryPolicy.never().attempts == 1
