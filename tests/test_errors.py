"""The exception hierarchy and the one table that classifies the API's answers."""

from __future__ import annotations

import pickle

import pytest

import searchcans_async
from searchcans_async import (
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    CreditsExhausted,
    InsufficientCreditsError,
    LaneBusyError,
    NoLanesError,
    RateLimitedError,
    ResponseFormatError,
    SearchCansError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from searchcans_async._client.errors import error_from_answer

# (http_status, code) -> (class, retryable, charged): API.md's table of codes, row by row.
# The client "classifies on both": a status in the body's code means what the status means.
ANSWER_TABLE = [
    (200, 1010, LaneBusyError, True, False),
    (429, None, RateLimitedError, True, False),
    (429, 429, RateLimitedError, True, False),
    (200, 429, RateLimitedError, True, False),
    (200, 1001, ApiTimeoutError, True, False),
    (200, -1001, ApiTimeoutError, True, False),
    *[(200, code, RateLimitedError, True, False) for code in (1002, 1003, 1004, 1005, 1006)],
    (200, 1009, RateLimitedError, True, False),
    (200, 443, ServerError, True, False),
    (200, 10054, ServerError, True, False),
    *[(status, None, ServerError, True, False) for status in (500, 502, 503, 504)],
    *[(status, status, ServerError, True, False) for status in (500, 502, 503, 504)],
    *[(200, code, ServerError, True, False) for code in (500, 502, 503, 504)],
    (400, 400, BadRequestError, False, False),
    (400, None, BadRequestError, False, False),
    (401, 401, AuthenticationError, False, False),
    (403, 403, AuthenticationError, False, False),
    (401, None, AuthenticationError, False, False),
    (200, 401, AuthenticationError, False, False),
    (200, 403, AuthenticationError, False, False),
    (200, -2008, AuthenticationError, False, False),
    (402, 402, InsufficientCreditsError, False, False),
    (402, None, InsufficientCreditsError, False, False),
    (200, 402, InsufficientCreditsError, False, False),
    (200, 7777, UnexpectedResponseError, False, None),
    (418, 7777, UnexpectedResponseError, False, False),
    (301, None, UnexpectedResponseError, False, False),
]


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "charged"), ANSWER_TABLE)
def test_every_row_of_the_code_table_gives_its_error(
    status: int, code: int | None, cls: type[SearchCansError], retryable: bool, charged: bool | None
) -> None:
    """Each (HTTP status, code) of API.md's table maps to its class and flags."""
    error = error_from_answer(http_status=status, code=code, message="", request_id="req-1")
    assert type(error) is cls
    assert (error.retryable, error.charged) == (retryable, charged)
    assert (error.http_status, error.code, error.request_id) == (status, code, "req-1")
    assert error.message  # a default message when the server gave none


def test_the_servers_message_is_kept() -> None:
    """The envelope's msg becomes the error's message."""
    error = error_from_answer(http_status=400, code=400, message="s: required")
    assert error.message == "s: required"
    assert str(error) == "s: required (HTTP 400, code 400)"


def test_a_rate_limit_carries_retry_after() -> None:
    """A 429's Retry-After (in seconds) is kept on the RateLimitedError."""
    error = error_from_answer(http_status=429, code=None, message="", retry_after=2.5)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.5


def test_a_503_carries_retry_after_too() -> None:
    """A 503's Retry-After is kept as well (proxies send it with maintenance pages)."""
    error = error_from_answer(http_status=503, code=None, message="", retry_after=2.5)
    assert isinstance(error, ServerError)
    assert error.retry_after == 2.5
    assert error_from_answer(http_status=500, code=None, message="").retry_after is None


@pytest.mark.parametrize(
    ("cls", "retryable", "charged"),
    [
        (SearchCansError, False, False),
        (AuthenticationError, False, False),
        (InsufficientCreditsError, False, False),
        (BadRequestError, False, False),
        (LaneBusyError, True, False),
        (RateLimitedError, True, False),
        (ApiTimeoutError, True, False),
        (ServerError, True, False),
        (TransportError, False, False),
        (ResponseFormatError, False, False),
        (UnexpectedResponseError, False, False),
        (NoLanesError, False, False),
    ],
)
def test_each_class_has_billing_aware_defaults(
    cls: type[SearchCansError], retryable: bool, charged: bool | None
) -> None:
    """Only the never-charged server refusals retry by default; nothing defaults to charged."""
    error = cls("boom")
    assert isinstance(error, SearchCansError)
    assert (error.retryable, error.charged) == (retryable, charged)


def test_flags_can_be_overridden() -> None:
    """A TransportError says per instance whether it may retry and may have been charged."""
    error = TransportError("reset", retryable=False, charged=None)
    assert (error.retryable, error.charged) == (False, None)


def test_str_lists_status_code_and_request_id() -> None:
    """str() shows the message and, when known, HTTP status, code and request id."""
    error = LaneBusyError("busy", code=1010, http_status=200, request_id="abc")
    assert str(error) == "busy (HTTP 200, code 1010, request abc)"
    assert str(SearchCansError("plain")) == "plain"


def test_repr_shows_the_flags() -> None:
    """repr() names the class and shows code, status and both flags."""
    error = TransportError("reset", http_status=None, retryable=False, charged=None)
    assert repr(error) == (
        "TransportError('reset', code=None, http_status=None, retryable=False, charged=None)"
    )


@pytest.mark.parametrize(
    "error",
    [
        LaneBusyError("busy", code=1010, http_status=200, request_id="r"),
        RateLimitedError("slow", retry_after=3.0, http_status=429),
        ResponseFormatError("bad", field="keys[0].total", charged=True),
        TransportError("reset", retryable=False, charged=None),
        CreditsExhausted(needed=12, available=5),
        UnexpectedResponseError("odd", code=7777, http_status=200, charged=None),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickling(error: SearchCansError) -> None:
    """Errors cross process boundaries intact: class, message, flags and extra attributes."""
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own bytes
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_credits_exhausted_says_what_was_needed() -> None:
    """CreditsExhausted is client-side: never charged, never retried, and explains itself."""
    error = CreditsExhausted(needed=12, available=5)
    assert (error.needed, error.available, error.retryable, error.charged) == (12, 5, False, False)
    assert str(error) == "the credit budget cannot cover this: needs 12 credits, 5 left"
    assert CreditsExhausted("custom", needed=1, available=0).message == "custom"


def test_response_format_error_names_its_field() -> None:
    """ResponseFormatError carries the offending field and its charged flag."""
    error = ResponseFormatError("bad remain", field="remain", charged=None)
    assert (error.field, error.charged) == ("remain", None)


def test_every_public_error_derives_from_the_base() -> None:
    """Catching SearchCansError catches every error class the package exports."""
    exported = [
        getattr(searchcans_async, name)
        for name in searchcans_async.__all__
        if isinstance(getattr(searchcans_async, name), type)
        and issubclass(getattr(searchcans_async, name), BaseException)
    ]
    assert {SearchCansError, TransportError, CreditsExhausted, NoLanesError} <= set(exported)
    assert all(issubclass(cls, SearchCansError) for cls in exported)
