"""The account watch: read the account every N seconds, follow the burn rate, warn in time.

Polling is sequential (at most one account request in flight, however many callers ask),
a failed check backs off with :class:`RetryPolicy`'s capped, jittered delays, and all
timing goes through an injectable :class:`Clock`, so tests run hours of polling at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeVar

import attrs

from .._client import Account, AuthenticationError, RetryPolicy, SearchCansError
from .._clock import Clock, LoopClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AccountObserver", "AccountReading", "AccountWatch", "CreditWarning", "format_duration"]

logger = logging.getLogger("searchcans_async")

T = TypeVar("T")
WarningKind = Literal["below", "runout"]

_DEFAULT_MAX_BACKOFF: Final = 300.0


def format_duration(seconds: float) -> str:
    """A short human duration: ``"42s"``, ``"3m05s"``, ``"2h10m"``, ``"3d04h"``.

    Example:
        >>> format_duration(185), format_duration(7800), format_duration(273600)
        ('3m05s', '2h10m', '3d04h')
    """
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


class AccountObserver(Protocol):
    """Anything that wants each account the watch reads (e.g. ``PrometheusMetrics``)."""

    def observe_account(self, account: Account) -> None:
        """Take note of a freshly read account."""
        ...


@attrs.frozen
class CreditWarning:
    """Credits are low (``kind="below"``) or will run out soon (``kind="runout"``).

    Attributes:
        kind: ``"below"``: ``remain`` is under ``threshold`` credits; ``"runout"``: at the
            current burn rate ``remain`` lasts ``runout`` seconds, at most ``threshold``.
        remain: The account's ``remain`` when the warning was raised.
        threshold: The limit crossed: credits (``below``) or seconds (``runout``).
        burn_rate: Credits spent per second over the watch's window, if known.
        runout: Seconds until ``remain`` reaches 0 at that rate, if it is spending.
    """

    kind: WarningKind
    remain: int
    threshold: float
    burn_rate: float | None = None
    runout: float | None = None

    @property
    def message(self) -> str:
        """The warning in one line, e.g. ``remain 80 credits is below 100``."""
        if self.kind == "below":
            return f"remain {self.remain} credits is below {self.threshold:g}"
        rate = f"{self.burn_rate:.2f}" if self.burn_rate is not None else "?"
        lasts = format_duration(self.runout) if self.runout is not None else "?"
        return (
            f"remain {self.remain} credits runs out in about {lasts} at {rate} credits/s "
            f"(warning threshold {format_duration(self.threshold)})"
        )


@attrs.frozen
class AccountReading:
    """One successful account check, with what the watch derived from the recent ones.

    Attributes:
        account: The account as read, without its personal fields (``nickname`` and
            ``email`` are ``None``): readings get logged and shipped to dashboards.
        at: The watch clock's time of the reading.
        burn_rate: Credits spent per second over the window, ``None`` until two
            readings span some time.
        runout: Seconds until ``remain`` reaches 0 at ``burn_rate``; ``None`` when
            nothing is being spent (or the rate is not known yet).
        warnings: The warnings that hold for this reading.
    """

    account: Account
    at: float
    burn_rate: float | None = None
    runout: float | None = None
    warnings: tuple[CreditWarning, ...] = ()

    @property
    def remain(self) -> int:
        """The account's ``remain``."""
        return self.account.remain


@attrs.frozen
class _Sample:
    at: float
    remain: int
    current: int
    spent: int  # credits spent since the watch's first reading (a running estimate)


class AccountWatch:
    """Reads the account every ``interval`` seconds and warns before the credits run out.

    The burn rate is the credits spent per second over the last ``window`` seconds. A
    reading's spending is the larger of the drop in ``remain`` and the rise in ``current``
    (both are lower bounds: a top-up hides part of a drop in ``remain``, and the real
    service's ``current`` is not documented in detail), so a top-up never shows as
    negative spending.

    Warnings are raised when ``remain`` falls under ``warn_below`` credits, or when at
    the burn rate it would last at most ``warn_runout`` seconds. Each is logged (WARNING)
    and passed to ``on_warning`` once when it starts; its end is logged (INFO).

    At most one account request is in flight: :meth:`poll` joins a check already running.
    In :meth:`run`, a failed check is logged and the next one waits ``interval`` plus a
    backoff that grows with each consecutive failure (``backoff.delay``, by default
    capped exponential with full jitter from ``interval`` up to ``max_backoff``, and a
    ``Retry-After`` honoured up to ``max_backoff``). A refused key
    (:class:`AuthenticationError`) ends it.

    Args:
        source: Async callable returning the :class:`Account`, e.g. ``client.account``.
        interval: Seconds between two checks.
        warn_below: Warn when ``remain`` is under this many credits.
        warn_runout: Warn when the credits would run out within this many seconds.
        window: Seconds of readings behind the burn rate.
        on_reading: Called with each :class:`AccountReading`.
        on_warning: Called with each :class:`CreditWarning` when it starts.
        on_error: Called with the error of each failed check in :meth:`run`, once
            :attr:`next_check_at` says when the next one is due.
        metrics: Receives each account (``observe_account``), e.g. ``PrometheusMetrics``.
        backoff: The policy whose ``delay`` spaces checks after failures.
        max_backoff: Most seconds added to ``interval`` after failures (default policy).
        clock: Time source (a ``VirtualClock`` in tests).
        rng: Random source for the backoff's jitter.

    Callbacks that raise are logged and ignored: the watch keeps watching.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with SearchCans() as client:
        ...         watch = AccountWatch(client.account, interval=60, warn_below=1_000,
        ...                              on_warning=lambda w: print(w.message))
        ...         await watch.run()
    """

    def __init__(
        self,
        source: Callable[[], Awaitable[Account]],
        *,
        interval: float = 30.0,
        warn_below: int | None = None,
        warn_runout: float | None = None,
        window: float = 600.0,
        on_reading: Callable[[AccountReading], object] | None = None,
        on_warning: Callable[[CreditWarning], object] | None = None,
        on_error: Callable[[SearchCansError], object] | None = None,
        metrics: AccountObserver | None = None,
        backoff: RetryPolicy | None = None,
        max_backoff: float = _DEFAULT_MAX_BACKOFF,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0 seconds, got {window!r}")
        if warn_below is not None and warn_below < 0:
            raise ValueError(f"warn_below must be >= 0 credits or None, got {warn_below!r}")
        if warn_runout is not None and not warn_runout > 0:
            raise ValueError(f"warn_runout must be > 0 seconds or None, got {warn_runout!r}")
        if not max_backoff > 0:
            raise ValueError(f"max_backoff must be > 0 seconds, got {max_backoff!r}")
        self._source = source
        self.interval = interval
        self.warn_below = warn_below
        self.warn_runout = warn_runout
        self.window = window
        self._on_reading = on_reading
        self._on_warning = on_warning
        self._on_error = on_error
        self._metrics = metrics
        cap = max(interval, max_backoff)
        self.backoff = backoff or RetryPolicy(
            backoff_initial=interval, backoff_max=cap, retry_after_max=cap
        )
        self.clock: Clock = clock or LoopClock()
        self._rng = rng or random.Random()  # jitter only
        self._samples: collections.deque[_Sample] = collections.deque()
        self._active: frozenset[WarningKind] = frozenset()
        self._pending: asyncio.Future[AccountReading] | None = None
        self.latest: AccountReading | None = None
        """The last successful reading, or ``None`` before the first."""
        self.last_error: SearchCansError | None = None
        """The error of the last check, or ``None`` if it succeeded."""
        self.failures = 0
        """Consecutive failed checks (0 after a success)."""
        self.checks = 0
        """Account checks made (successful or not)."""
        self.next_check_at: float | None = None
        """When :meth:`run` checks next (watch clock), while it waits."""

    def __repr__(self) -> str:
        remain = "?" if self.latest is None else str(self.latest.remain)
        return (
            f"<AccountWatch interval={self.interval:g}s remain={remain} checks={self.checks} "
            f"failures={self.failures}>"
        )

    # -- polling ------------------------------------------------------------------------

    async def poll(self) -> AccountReading:
        """Read the account now, or join the check already in flight.

        Raises:
            SearchCansError: The account could not be read.
        """
        while (pending := self._pending) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not pending.cancelled() or (current is not None and current.cancelling()):
                    raise
                # The caller that was making the check was cancelled, not us: check anew.
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_mark_retrieved)
        self._pending = future
        try:
            reading = await self._check()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            raise
        else:
            future.set_result(reading)
            return reading
        finally:
            self._pending = None

    async def run(self, *, checks: int | None = None) -> AccountReading | None:
        """Check the account every ``interval`` seconds until cancelled.

        Args:
            checks: Stop after this many checks (successful or not), e.g. for cron.

        Returns:
            The last successful reading (when ``checks`` ran out).

        Raises:
            AuthenticationError: The key was refused: watching cannot succeed.
        """
        if checks is not None and checks < 1:
            raise ValueError(f"checks must be >= 1 or None, got {checks!r}")
        made = 0
        try:
            while True:
                made += 1
                last = checks is not None and made >= checks
                try:
                    await self.poll()
                except AuthenticationError:
                    raise
                except SearchCansError as error:
                    delay = self.interval + self.backoff.delay(error, self.failures, self._rng)
                    self.next_check_at = None if last else self.clock.now() + delay
                    logger.warning(
                        "account check failed (%d in a row): %s%s",
                        self.failures,
                        error,
                        "" if last else f"; next check in {delay:.1f}s",
                    )
                    if self._on_error is not None:
                        _call_safely(self._on_error, error)
                else:
                    delay = self.interval
                if last:
                    break
                self.next_check_at = self.clock.now() + delay
                await self.clock.sleep(delay)
        finally:
            self.next_check_at = None
        return self.latest

    async def _check(self) -> AccountReading:
        self.checks += 1
        try:
            account = await self._source()
        except SearchCansError as error:
            self.failures += 1
            self.last_error = error
            raise
        self.failures = 0
        self.last_error = None
        if account.nickname is not None or account.email is not None:
            account = attrs.evolve(account, nickname=None, email=None)
        reading = self._read(account, self.clock.now())
        if self._metrics is not None:
            _call_safely(self._metrics.observe_account, account)
        self.latest = reading
        if self._on_reading is not None:
            _call_safely(self._on_reading, reading)
        self._follow_warnings(reading)
        return reading

    # -- burn rate and warnings -----------------------------------------------------------

    def _read(self, account: Account, now: float) -> AccountReading:
        samples = self._samples
        spent = 0
        if samples:
            last = samples[-1]
            step = max(0, last.remain - account.remain, account.current - last.current)
            spent = last.spent + step
        samples.append(_Sample(now, account.remain, account.current, spent))
        # Keep one reading at or before the window's start, so the rate spans the window.
        while len(samples) > 2 and samples[1].at <= now - self.window:
            samples.popleft()
        first, last = samples[0], samples[-1]
        span = last.at - first.at
        burn_rate = (last.spent - first.spent) / span if span > 0 else None
        runout = account.remain / burn_rate if burn_rate else None
        warnings: list[CreditWarning] = []
        if self.warn_below is not None and account.remain < self.warn_below:
            warnings.append(
                CreditWarning("below", account.remain, self.warn_below, burn_rate, runout)
            )
        if self.warn_runout is not None and runout is not None and runout <= self.warn_runout:
            warnings.append(
                CreditWarning("runout", account.remain, self.warn_runout, burn_rate, runout)
            )
        logger.debug(
            "account: remain %d, month %d, %d lanes, burn %s credits/s",
            account.remain,
            account.month,
            account.concurrent,
            "?" if burn_rate is None else f"{burn_rate:.3f}",
        )
        return AccountReading(account, now, burn_rate, runout, tuple(warnings))

    def _follow_warnings(self, reading: AccountReading) -> None:
        kinds = frozenset(warning.kind for warning in reading.warnings)
        for warning in reading.warnings:
            if warning.kind not in self._active:
                logger.warning("credits warning: %s", warning.message)
                if self._on_warning is not None:
                    _call_safely(self._on_warning, warning)
        for kind in sorted(self._active - kinds):
            logger.info("credits warning over (%s): remain %d", kind, reading.remain)
        self._active = kinds


def _call_safely(callback: Callable[[T], object], value: T) -> None:
    try:
        callback(value)
    except Exception:
        logger.exception("an account watch callback raised; the watch goes on")


def _mark_retrieved(future: asyncio.Future[AccountReading]) -> None:
    # The caller making a check raises its error itself; joiners are optional.
    if not future.cancelled():
        future.exception()
