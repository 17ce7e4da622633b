"""Billing-aware retries: retry only what the server never charged.

Written by hand rather than with stamina: stamina's jitter is additive (we want AWS-style
full jitter), its testing switch is process-global (we inject a clock per client), and
the decision here depends on the error's *value* (1010's short fixed window, a capped
``Retry-After``, the possibly-charged opt-in) rather than only its type. The loop is
small and lives in the client's one request path; every decision in it is the policy's, a
frozen value users can read and override per call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .errors import (
    DeadlineTooShortError,
    LaneBusyError,
    ResponseFormatError,
    SearchCansError,
    TransportError,
)

if TYPE_CHECKING:
    import random

__all__ = ["RetryPolicy"]


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before sending a failed call again.

    Retried (never charged): lane busy (1010), rate limits (429, codes 1002-1006/1009),
    server timeouts (1001), server failures (5xx, codes 443/10054) and connections that
    never reached the server. Never retried: 400, 401/403, 402 and unknown codes. A call
    that may have been served (a timeout or reset after sending, a truncated body) is
    retried only with ``retry_possibly_charged=True``, since it may be billed twice.

    Delays: 1010 waits a random 100-500 ms; a ``Retry-After`` is honoured up to
    ``retry_after_max``; anything else backs off exponentially with full jitter
    (a random wait between 0 and ``min(backoff_max, backoff_initial * 2**retry)``).
    An attempt starts only if it can run whole before ``deadline`` seconds after the first
    one started (whole: the server's own wait ``server_timeout + wait`` plus 5 s); the
    deadline never cuts an attempt short, since the server would still work on it, and
    bill it. A deadline shorter than one whole attempt refuses the call before sending
    (:class:`DeadlineTooShortError`, not charged). The default, 300 s, covers a 295 s
    server wait.

    Example:
        >>> RetryPolicy().attempts
        5
        >>> RetryPolicy.never().attempts
        1
        >>> patient = RetryPolicy(attempts=10, deadline=600.0)
    """

    attempts: int = attrs.field(default=5)
    backoff_initial: float = attrs.field(default=0.25, validator=_positive)
    backoff_max: float = attrs.field(default=8.0, validator=_positive)
    backoff_multiplier: float = attrs.field(default=2.0, validator=_positive)
    lane_busy_delay: tuple[float, float] = attrs.field(default=(0.1, 0.5))
    retry_after_max: float = attrs.field(default=30.0, validator=_positive)
    deadline: float | None = attrs.field(default=300.0)
    retry_possibly_charged: bool = False

    @attempts.validator
    def _check_attempts(self, _attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"attempts must be an int, not {type(value).__name__}")
        if value < 1:
            raise ValueError(f"attempts counts the first try too, so it must be >= 1, got {value}")

    @lane_busy_delay.validator
    def _check_lane_busy_delay(
        self, _attribute: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
    ) -> None:
        low, high = value
        if not 0 <= low <= high:
            raise ValueError(
                f"lane_busy_delay must be (low, high) seconds with 0 <= low <= high, got {value}"
            )

    @deadline.validator
    def _check_deadline(
        self, _attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        # A deadline already spent would cut every first attempt short: possibly charged.
        if value is not None and not value > 0:
            raise ValueError(f"deadline must be > 0 seconds or None (no deadline), got {value}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that sends each call once."""
        return cls(attempts=1)

    def should_retry(self, error: SearchCansError) -> bool:
        """Whether ``error`` may be retried under this policy (ignoring attempts and time)."""
        if error.retryable:
            return True
        possibly_served = error.charged is None and isinstance(
            error, TransportError | ResponseFormatError
        )
        return self.retry_possibly_charged and possibly_served

    def delay(self, error: SearchCansError, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if isinstance(error, LaneBusyError):
            low, high = self.lane_busy_delay
            return rng.uniform(low, high)
        if error.retry_after is not None:  # a 429 or 503 that said how long to wait
            return min(error.retry_after, self.retry_after_max)
        ceiling = min(
            self.backoff_max, self.backoff_initial * self.backoff_multiplier ** (retry - 1)
        )
        return rng.uniform(0.0, ceiling)

    def check_deadline(self, min_attempt: float, endpoint: str) -> None:
        """Refuse a call whose first attempt could not run whole before the deadline.

        ``min_attempt`` is one whole attempt's length (the server's own wait plus a
        margin): an attempt cut shorter would give up while the server still works, leaving
        the call possibly charged and its lane busy.

        Raises:
            DeadlineTooShortError: The deadline is shorter than ``min_attempt``; nothing
                is sent, so nothing is charged.
        """
        if self.deadline is not None and self.deadline < min_attempt:
            raise DeadlineTooShortError(
                f"the retry deadline ({self.deadline:g} s) cannot cover one whole attempt at "
                f"{endpoint} ({min_attempt:g} s: the server's own wait plus a margin), so the "
                "call was not sent; raise RetryPolicy.deadline or ask for a shorter server wait"
            )

    def next_wait(
        self,
        error: SearchCansError,
        attempt: int,
        *,
        elapsed: float,
        min_attempt: float,
        rng: random.Random,
    ) -> float | None:
        """Seconds to wait before sending again, or ``None`` to give up and raise ``error``.

        ``attempt`` is the number of the attempt that failed (1 for the first),
        ``elapsed`` the seconds since the first one started and ``min_attempt`` one whole
        attempt's length: a retry starts only if it can run whole before the deadline.

        Example:
            >>> import random
            >>> from searchcans_async import LaneBusyError
            >>> busy = LaneBusyError("all lanes busy", code=1010)
            >>> wait = RetryPolicy().next_wait(
            ...     busy, 1, elapsed=0.0, min_attempt=15.0, rng=random.Random(1))
            >>> 0.1 <= wait <= 0.5
            True
            >>> RetryPolicy.never().next_wait(
            ...     busy, 1, elapsed=0.0, min_attempt=15.0, rng=random.Random(1)) is None
            True
        """
        if attempt >= self.attempts or not self.should_retry(error):
            return None
        wait = self.delay(error, attempt, rng)
        if self.deadline is not None and elapsed + wait + min_attempt >= self.deadline:
            return None
        return wait
