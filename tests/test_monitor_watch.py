"""The account watch on a virtual clock: burn rate, warnings, backoff, one request in flight."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

import pytest

from searchcans_async import (
    Account,
    AuthenticationError,
    RateLimitedError,
    SearchCans,
    ServerError,
    TransportError,
)
from searchcans_async._clock import VirtualClock
from searchcans_async._monitor.watch import format_duration
from searchcans_async.monitor import AccountReading, AccountWatch, CreditWarning

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from searchcans_async.testing import Emulator


class Ceiling(random.Random):
    """A random source whose uniform() always returns its upper bound (worst-case jitter)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Script:
    """An account source answering from a script: an int is ``remain``, an error is raised."""

    def __init__(self, steps: Iterable[int | Exception | Account], *, current: int = 0) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.current = current

    async def __call__(self) -> Account:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Account):
            return step
        return Account(remain=step, concurrent=3, current=self.current, month=self.current)


def watch_for(source: Callable[[], object], clock: VirtualClock, **options: object) -> AccountWatch:
    return AccountWatch(source, clock=clock, **options)  # type: ignore[arg-type]  # the script source is duck-typed, as the watch allows


async def test_the_burn_rate_follows_the_remain_over_the_window(clock: VirtualClock) -> None:
    """10 credits a minute: the rate is 1/6 credit/s and the run-out is remain over that."""
    readings: list[AccountReading] = []
    watch = watch_for(Script([1000, 990, 980, 970]), clock, interval=60, on_reading=readings.append)
    assert await watch.run(checks=4) is watch.latest
    assert clock.sleeps == [60, 60, 60]  # no sleep after the last check
    assert readings[0].burn_rate is None  # one reading tells no rate
    assert readings[-1].burn_rate == pytest.approx(1 / 6)
    assert readings[-1].runout == pytest.approx(970 * 6)
    assert readings[-1].at == 180


async def test_a_top_up_is_not_negative_spending(clock: VirtualClock) -> None:
    """remain jumps up by 500 between checks: the rate stays at what was spent, never below 0."""
    watch = watch_for(Script([1000, 990, 1480, 1470]), clock, interval=10)
    await watch.run(checks=4)
    assert watch.latest is not None
    assert watch.latest.burn_rate == pytest.approx(20 / 30)


async def test_current_rising_shows_spending_a_top_up_hides(clock: VirtualClock) -> None:
    """Spent 30 and topped up 30 in one interval: ``current`` still shows the 30 spent."""
    spent = [
        Account(remain=100, concurrent=1, current=0),
        Account(remain=100, concurrent=1, current=30),
    ]
    watch = watch_for(Script(spent), clock, interval=10)
    await watch.run(checks=2)
    assert watch.latest is not None
    assert watch.latest.burn_rate == pytest.approx(3.0)


async def test_only_the_window_counts_for_the_rate(clock: VirtualClock) -> None:
    """A burst long ago drops out of the window; an idle account ends with no run-out."""
    steps = [1000, 500, *([500] * 12)]  # 500 spent in the first minute, then nothing
    watch = watch_for(Script(steps), clock, interval=60, window=300)
    await watch.run(checks=len(steps))
    assert watch.latest is not None
    assert watch.latest.burn_rate == 0
    assert watch.latest.runout is None


async def test_warnings_fire_once_when_they_start_and_log_when_they_end(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Below 100: one callback while it lasts; over again after a top-up; again when it returns."""
    raised: list[CreditWarning] = []
    steps = [150, 90, 80, 500, 50]
    watch = watch_for(Script(steps), clock, interval=60, warn_below=100, on_warning=raised.append)
    with caplog.at_level(logging.INFO, logger="searchcans_async"):
        await watch.run(checks=len(steps))
    assert [(w.kind, w.remain) for w in raised] == [("below", 90), ("below", 50)]
    assert raised[0].message == "remain 90 credits is below 100"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "credits warning: remain 90 credits is below 100",
        "credits warning: remain 50 credits is below 100",
    ]
    assert "credits warning over (below): remain 500" in caplog.text


async def test_a_runout_within_the_threshold_warns(clock: VirtualClock) -> None:
    """1 credit/s with 630 left lasts 10m30s: within a 15-minute threshold it warns, once."""
    raised: list[CreditWarning] = []
    steps = [660, 630, 600]
    watch = watch_for(Script(steps), clock, interval=30, warn_runout=900, on_warning=raised.append)
    await watch.run(checks=3)
    assert len(raised) == 1
    assert (raised[0].kind, raised[0].remain) == ("runout", 630)
    assert raised[0].runout == pytest.approx(630)
    assert raised[0].burn_rate == pytest.approx(1.0)
    assert raised[0].message == (
        "remain 630 credits runs out in about 10m30s at 1.00 credits/s (warning threshold 15m00s)"
    )
    assert watch.latest is not None
    assert [w.kind for w in watch.latest.warnings] == ["runout"]  # still holds, not re-raised


async def test_failures_back_off_then_the_interval_returns(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failure in a row waits longer (capped); a success goes back to the interval."""
    errors: list[Exception] = []
    steps: list[int | Exception] = [1000, *[ServerError("down", http_status=503)] * 5, 990, 980]
    watch = watch_for(
        Script(steps), clock, interval=10, max_backoff=30, rng=Ceiling(), on_error=errors.append
    )
    await watch.run(checks=len(steps))
    # interval + min(max_backoff, interval * 2**(n-1)) with the jitter at its ceiling
    assert clock.sleeps == [10, 20, 30, 40, 40, 40, 10]
    assert len(errors) == 5
    assert watch.failures == 0
    assert watch.last_error is None
    assert watch.checks == 8
    assert "account check failed (5 in a row): down (HTTP 503); next check in 40.0s" in caplog.text


async def test_a_retry_after_is_honoured_on_top_of_the_interval(clock: VirtualClock) -> None:
    """A 429 with Retry-After: 45 waits the interval plus those 45 s."""
    steps: list[int | Exception] = [RateLimitedError("slow down", retry_after=45.0), 1000]
    watch = watch_for(Script(steps), clock, interval=10)
    await watch.run(checks=2)
    assert clock.sleeps == [55]


async def test_a_refused_key_ends_the_watch(clock: VirtualClock) -> None:
    """401 is not retried: run() raises it and the source is not asked again."""
    source = Script([1000, AuthenticationError("invalid key", code=401, http_status=401), 900])
    watch = watch_for(source, clock, interval=10)
    with pytest.raises(AuthenticationError):
        await watch.run()
    assert source.calls == 2
    assert watch.next_check_at is None


async def test_the_watch_sleeps_on_its_clock_until_cancelled(clock: VirtualClock) -> None:
    """run() without a count keeps checking; cancelling it leaves no check due."""
    source = Script([1000])
    watch = watch_for(source, clock, interval=30)
    task = asyncio.ensure_future(watch.run())
    while source.calls < 5:  # noqa: ASYNC110  # each virtual sleep yields once; no event to wait on
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(clock.sleeps) == {30}
    assert watch.next_check_at is None


async def test_at_most_one_account_request_is_in_flight() -> None:
    """Three callers at once share one request and one reading."""
    release = asyncio.Event()
    calls = 0

    async def slow_source() -> Account:
        nonlocal calls
        calls += 1
        await release.wait()
        return Account(remain=7, concurrent=1)

    watch = AccountWatch(slow_source, clock=VirtualClock())
    polls = [asyncio.ensure_future(watch.poll()) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    readings = await asyncio.gather(*polls)
    assert calls == 1
    assert readings[0] is readings[1] is readings[2]
    assert watch.checks == 1


async def test_a_joiner_shares_the_error_and_checks_anew_if_the_first_caller_is_cancelled() -> None:
    """An error reaches every caller; a cancelled first caller does not cancel the others."""
    gate = asyncio.Event()
    answers: list[Account | Exception] = [TransportError("refused", charged=False)]

    async def source() -> Account:
        await gate.wait()
        answer = answers.pop(0) if answers else Account(remain=5, concurrent=1)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch = AccountWatch(source, clock=VirtualClock())
    first, second = asyncio.ensure_future(watch.poll()), asyncio.ensure_future(watch.poll())
    await asyncio.sleep(0)
    gate.set()
    for outcome in await asyncio.gather(first, second, return_exceptions=True):
        assert isinstance(outcome, TransportError)

    gate.clear()
    leader, joiner = asyncio.ensure_future(watch.poll()), asyncio.ensure_future(watch.poll())
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    gate.set()
    reading = await joiner
    assert reading.remain == 5
    assert leader.cancelled()


async def test_callbacks_that_raise_are_logged_and_the_watch_goes_on(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken on_reading / on_warning / metrics does not stop the checks."""

    def broken(_value: object) -> None:
        raise RuntimeError("callback bug")

    class BrokenMetrics:
        def observe_account(self, account: Account) -> None:
            raise RuntimeError("metrics bug")

    watch = watch_for(
        Script([50, 40]),
        clock,
        warn_below=100,
        on_reading=broken,
        on_warning=broken,
        metrics=BrokenMetrics(),
    )
    await watch.run(checks=2)
    assert watch.checks == 2
    assert caplog.text.count("an account watch callback raised") == 5


async def test_the_watch_reads_the_emulator_and_sees_a_drain(
    emulator: Emulator, canary_key: str
) -> None:
    """Against the emulator: another consumer spends 300 between checks; remain follows."""
    clock = VirtualClock()
    async with SearchCans(canary_key, base_url=emulator.base_url, clock=clock) as client:
        watch = AccountWatch(client.account, interval=60, clock=clock, warn_runout=3600)
        first = await watch.poll()
        emulator.drain(300)
        clock.advance(60)
        second = await watch.poll()
    assert (first.remain, second.remain) == (1000, 700)
    assert second.burn_rate == pytest.approx(5.0)
    assert second.runout == pytest.approx(140.0)
    assert [w.kind for w in second.warnings] == ["runout"]
    assert emulator.stats().account_calls == 2
    assert canary_key not in repr(second)
    assert (second.account.nickname, second.account.email) == (None, None)  # personal: dropped


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 0}, "interval must be > 0"),
        ({"window": -1}, "window must be > 0"),
        ({"warn_below": -5}, "warn_below must be >= 0"),
        ({"warn_runout": 0}, "warn_runout must be > 0"),
        ({"max_backoff": 0}, "max_backoff must be > 0"),
    ],
)
def test_nonsense_options_are_refused(options: dict[str, float], message: str) -> None:
    """Each bad option says what is wrong."""
    with pytest.raises(ValueError, match=message):
        AccountWatch(Script([1]), **options)  # type: ignore[arg-type]  # deliberately the wrong type, to test the refusal


def test_durations_read_like_a_human_wrote_them() -> None:
    """Seconds, minutes, hours and days, two units at most."""
    assert [format_duration(s) for s in (0, 59.6, 61, 3600, 90061)] == [
        "0s",
        "1m00s",
        "1m01s",
        "1h00m",
        "1d01h",
    ]
