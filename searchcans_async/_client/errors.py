"""The exception hierarchy and the one table that classifies the API's answers.

Every error the client raises is a :class:`SearchCansError`. Two flags on it drive
everything downstream (retries, the lane pool's credit ledger, batch reports):

* ``retryable``: the call may be sent again without risk (it was never charged).
* ``charged``: ``False`` (the server did not bill it), ``True`` (it did) or ``None``
  (possibly charged: the client gave up after the request may already have been served).

No exception here ever holds a request's headers, so none can carry the API key.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, ClassVar, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CreditsExhausted",
    "InsufficientCreditsError",
    "LaneBusyError",
    "LeaseExpiredError",
    "NoLanesError",
    "RateLimitedError",
    "ResponseFormatError",
    "SearchCansError",
    "ServerError",
    "TransportError",
    "UnexpectedResponseError",
    "error_from_answer",
]


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


class SearchCansError(Exception):
    """Base class of every error raised by ``searchcans_async``.

    Attributes:
        message: What went wrong, in words (never contains the API key).
        code: The API's own code from the response envelope, if there was one.
        http_status: The HTTP status, if a response arrived.
        request_id: The server's ``requestId``, handy when talking to support.
        retry_after: Seconds the server asked us to wait (``Retry-After``), if it did.
        retryable: Whether sending the call again is safe and may succeed.
        charged: ``True``/``False`` when known, ``None`` when the call was possibly charged.

    Example:
        >>> try:
        ...     raise LaneBusyError("all lanes busy", code=1010, http_status=200)
        ... except SearchCansError as error:
        ...     (error.retryable, error.charged)
        (True, False)
    """

    default_retryable: ClassVar[bool] = False
    default_charged: ClassVar[bool | None] = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        charged: bool | _Unset | None = _UNSET,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after: float | None = None
        self.retryable = self.default_retryable if retryable is None else retryable
        self.charged: bool | None = self.default_charged if charged is _UNSET else charged

    def __str__(self) -> str:
        details = []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.request_id:
            details.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
            f"http_status={self.http_status!r}, retryable={self.retryable!r}, "
            f"charged={self.charged!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors do not pickle by default; errors cross process
        # boundaries in multi-process batches, so keep them picklable.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(
    cls: type[SearchCansError], message: str, state: Mapping[str, object]
) -> SearchCansError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class AuthenticationError(SearchCansError):
    """The API key is missing, unknown or inactive (HTTP 401/403, codes 401/403/-2008).

    Never retried: the same key will fail the same way. A batch stops with reason ``auth``.
    """


class InsufficientCreditsError(SearchCansError):
    """The server refused the call for billing reasons (HTTP or code 402).

    Never retried. A batch stops with reason ``billing``.
    """


class BadRequestError(SearchCansError):
    """The server rejected the request as malformed (HTTP 400); the message says why."""


class LaneBusyError(SearchCansError):
    """Every Parallel Lane of the account is busy (code 1010). Not charged; retried."""

    default_retryable = True


class RateLimitedError(SearchCansError):
    """A rate or load limit (HTTP or code 429, codes 1002-1006 and 1009). Not charged; retried.

    Attributes:
        retry_after: Seconds the server asked us to wait, when it said so.
    """

    default_retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: int | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, request_id=request_id)
        self.retry_after = retry_after


class ApiTimeoutError(SearchCansError):
    """The server timed out on its side (code 1001/-1001). Not charged; retried."""

    default_retryable = True


class ServerError(SearchCansError):
    """The service failed (HTTP 5xx or such a code, or a network error: codes 443, 10054).

    Not charged; retried with backoff.
    """

    default_retryable = True


class TransportError(SearchCansError):
    """The connection failed or the client's own deadline passed.

    ``charged`` says whether the request could have reached the server: ``False`` when it
    never left (connection refused, DNS), ``None`` when it may have been served (a reset
    or a timeout after sending). Only the first kind is retried by default.
    """


class ResponseFormatError(SearchCansError):
    """The response was not what the API documents (not JSON, truncated, wrong types).

    Attributes:
        field: The offending field, when one field is to blame.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: int | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        charged: bool | None = False,
    ) -> None:
        super().__init__(
            message, code=code, http_status=http_status, request_id=request_id, charged=charged
        )
        self.field = field


class UnexpectedResponseError(SearchCansError):
    """An API code or HTTP status this client does not know. Not retried.

    ``charged`` is ``None`` for an unknown code on HTTP 200 (the docs say only HTTP 200
    responses are billed, so it may have been) and ``False`` otherwise.
    """


class CreditsExhausted(SearchCansError):  # noqa: N818  # the name DESIGN.md promises users
    """The credit budget, not the server, refused the work (raised client-side).

    Attributes:
        needed: Credits the refused work would have reserved.
        available: Credits the budget had left for it.

    Example:
        >>> error = CreditsExhausted(needed=12, available=5)
        >>> str(error)
        'the credit budget cannot cover this: needs 12 credits, 5 left'
    """

    def __init__(self, message: str | None = None, *, needed: int, available: int) -> None:
        text = message or (
            f"the credit budget cannot cover this: needs {_credits(needed)}, {available} left"
        )
        super().__init__(text, retryable=False, charged=False)
        self.needed = needed
        self.available = available


class DeadlineTooShortError(SearchCansError):
    """The retry deadline cannot cover one whole attempt, so the call was not sent.

    An attempt may take as long as the server's own wait (``server_timeout`` plus
    ``wait``) plus a margin; a deadline cut shorter would give up while the server still
    works (and bills), with the lane still busy. Raise ``RetryPolicy.deadline`` or ask the
    server for a shorter wait. Not charged.

    Example:
        >>> DeadlineTooShortError("deadline 1 s < one attempt (15 s)").charged
        False
    """


class LeaseExpiredError(SearchCansError):
    """A shared lane's lease ran out before the request was sent, so it was not sent.

    Happens when a process sharing an account's lanes (Redis backend) was paused or
    stalled past its lease: its lane may already belong to another process. Not charged.
    """


def _credits(count: int) -> str:
    return f"{count} credit" if count == 1 else f"{count} credits"


class NoLanesError(SearchCansError):
    """The account reports ``concurrent == 0``: it has no Parallel Lanes, so nothing can run.

    Raised where lanes are sized (opening a :class:`LanePool`), never as a silent hang.
    Check the plan in the SearchCans dashboard.
    """


_THROTTLE_CODES: Final = frozenset({1002, 1003, 1004, 1005, 1006, 1009})
_TIMEOUT_CODES: Final = frozenset({1001, -1001})
_NETWORK_CODES: Final = frozenset({443, 10054})
_AUTH_CODES: Final = frozenset({401, 403, -2008})
_SERVER_FAILURE_CODES: Final = frozenset({500, 502, 503, 504})

# API.md's table of codes, in the order it is read: the first matching row wins. The
# client "classifies on both" status and code, so an HTTP status echoed as the body's code
# (429, 5xx, like 400/401/402/403) means the same on an HTTP 200.
# Each row: (matches(http_status, code), error class, message when the server gave none).
_ANSWER_TABLE: Final[
    tuple[tuple[Callable[[int, int | None], bool], type[SearchCansError], str], ...]
] = (
    (
        lambda status, code: status in (401, 403) or code in _AUTH_CODES,
        AuthenticationError,
        "the API key is missing, unknown or inactive",
    ),
    (lambda status, code: 402 in (status, code), InsufficientCreditsError, "insufficient credits"),
    (lambda status, code: 400 in (status, code), BadRequestError, "bad request"),
    (lambda _status, code: code == 1010, LaneBusyError, "all Parallel Lanes are busy"),
    (
        lambda status, code: 429 in (status, code) or code in _THROTTLE_CODES,
        RateLimitedError,
        "rate limited",
    ),
    (lambda _status, code: code in _TIMEOUT_CODES, ApiTimeoutError, "the server timed out"),
    (
        lambda _status, code: code in _NETWORK_CODES,
        ServerError,
        "the server reported a network error",
    ),
    (
        lambda status, code: 500 <= status <= 599 or code in _SERVER_FAILURE_CODES,
        ServerError,
        "the server failed",
    ),
)


def error_from_answer(
    *,
    http_status: int,
    code: int | None,
    message: str,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> SearchCansError:
    """Classify a failed answer (non-zero code or non-200 status) into a typed error.

    This is the one place where API.md's table of codes lives. ``code`` is ``None`` when
    the body had no usable envelope (e.g. a proxy's HTML error page).

    Example:
        >>> type(error_from_answer(http_status=200, code=1010, message="busy")).__name__
        'LaneBusyError'
    """
    for matches, cls, default_message in _ANSWER_TABLE:
        if matches(http_status, code):
            error = cls(
                message or default_message,
                code=code,
                http_status=http_status,
                request_id=request_id,
            )
            error.retry_after = retry_after
            return error
    # The docs bill only HTTP 200 answers, so an unknown code on 200 may have cost credits.
    return UnexpectedResponseError(
        message or "unexpected answer",
        code=code,
        http_status=http_status,
        request_id=request_id,
        charged=None if http_status == 200 else False,
    )
