"""One aiohttp POST, envelope decoding, error classification and key redaction.

Why one module: sending, decoding and error mapping keep one promise together (nothing
of aiohttp's, and so no key, escapes), which is easiest to check when it is in one place.

This is the only client-side module that imports aiohttp, and :func:`map_aiohttp_error`
is the only place where aiohttp's exceptions become ours. aiohttp's exceptions carry the
request's headers (the API key), so none of them, nor anything chained to them, may
leave this module: errors are built inside ``except`` blocks and raised outside them, so
their ``__context__`` is empty.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import time
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeAlias
from urllib.parse import urlsplit

import aiohttp
import orjson

from .._version import __version__
from .errors import (
    ResponseFormatError,
    SearchCansError,
    TransportError,
    error_from_answer,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .secret import Secret

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_BODY_BYTES",
    "Envelope",
    "Session",
    "Transport",
    "map_aiohttp_error",
    "parse_retry_after",
]

DEFAULT_BASE_URL: Final = "https://www.searchcans.com"
DEFAULT_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
NO_RESULTS_CODES: Final = frozenset({9999, -9999})
_SNIPPET_CHARS: Final = 160

Session: TypeAlias = aiohttp.ClientSession
"""The session type a caller may lend to :class:`SearchCans`."""


class Envelope(NamedTuple):
    """A successful answer: code 0, or a "no results" code (9999/-9999)."""

    code: int
    data: Any
    request_id: str | None
    http_status: int


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Validate ``base_url``; plain http is refused unless loopback or explicitly allowed."""
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must be an http(s) URL like {DEFAULT_BASE_URL}, got {base_url!r}"
        )
    if parts.username or parts.password:
        raise ValueError("base_url must not carry credentials; the API key is passed separately")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain http to {parts.hostname}: the API key would travel unencrypted. "
            "Use https, or pass allow_insecure_http=True if you really mean it"
        )
    return base_url.rstrip("/")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date).

    Returns ``None`` for an absent or unreadable header.

    Example:
        >>> parse_retry_after("3")
        3.0
        >>> parse_retry_after("soon") is None
        True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class _Redactor:
    """Scrubs the key out of any text we quote (a misbehaving proxy might echo it)."""

    __slots__ = ("_key",)

    def __init__(self, secret: Secret) -> None:
        self._key = secret.reveal()

    def __call__(self, text: str, limit: int = _SNIPPET_CHARS) -> str:
        if len(text) <= limit and text.isprintable() and self._key not in text:
            return text  # the common case (a request id, a short message): nothing to do
        cleaned = text.replace(self._key, "********")
        cleaned = "".join(ch if ch.isprintable() else " " for ch in cleaned[: limit * 2])
        cleaned = " ".join(cleaned.split())
        return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


# aiohttp's failures that leave the request unserved (so unbilled), in match order:
# (exception types, what happened, whether sending again can help).
_NEVER_SERVED: Final[tuple[tuple[tuple[type[BaseException], ...], str, bool], ...]] = (
    (
        (
            aiohttp.ClientConnectorCertificateError,
            aiohttp.ClientConnectorSSLError,
            aiohttp.ClientSSLError,
            aiohttp.ServerFingerprintMismatch,
        ),
        "TLS failed before the request was sent",
        False,
    ),
    (
        (aiohttp.ClientHttpProxyError,),
        "the proxy refused to connect; the request was not sent",
        False,
    ),
    (
        (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError),
        "could not connect; the request was not sent",
        True,
    ),
    # The server cannot act on a JSON body it never fully received.
    ((aiohttp.UploadAbortedError,), "the request body was not fully sent", True),
    (
        (aiohttp.RedirectClientError, aiohttp.TooManyRedirects),
        "the server redirected the request; redirects are never followed",
        False,
    ),
    (
        (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError),
        "invalid URL; the request was not sent",
        False,
    ),
)


def map_aiohttp_error(
    error: BaseException, *, http_status: int | None, redact: _Redactor | None = None
) -> SearchCansError:
    """Translate an aiohttp (or timeout) exception into a key-free :class:`TransportError`.

    ``http_status`` is the status of a response whose headers had already arrived, or
    ``None`` when the failure came before any answer. That decides ``charged``: nothing is
    billed without an HTTP 200, and before an answer the request may or may not have been
    served.
    """
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    detail = detail.replace(" ssl:default", "")  # aiohttp's default TLS setting: noise here
    detail = redact(detail) if redact is not None else detail[:_SNIPPET_CHARS]
    answered_not_200 = http_status is not None and http_status != 200

    def failed(message: str, *, retryable: bool, charged: bool | None) -> TransportError:
        return TransportError(
            f"{message} ({detail})",
            http_status=http_status,
            retryable=retryable,
            charged=charged,
        )

    for types, what, retryable in _NEVER_SERVED:
        if isinstance(error, types):
            return failed(what, retryable=retryable, charged=False)
    if answered_not_200:
        # A failing non-200 answer is never billed; retry it as its status deserves.
        retryable = http_status is not None and (http_status == 429 or http_status >= 500)
        return failed(
            "the connection broke while reading an error answer", retryable=retryable, charged=False
        )
    if isinstance(error, TimeoutError):
        return failed(
            "no complete answer before the deadline; possibly charged",
            retryable=False,
            charged=None,
        )
    return failed(
        "the connection broke after the request was sent; possibly charged",
        retryable=False,
        charged=None,
    )


class Transport:
    """Sends one POST and returns the decoded envelope, or raises a typed error.

    A transport that creates its session owns it and closes it in :meth:`aclose`; a
    session passed in is borrowed and never closed here.
    """

    def __init__(
        self,
        *,
        secret: Secret,
        base_url: str = DEFAULT_BASE_URL,
        session: Session | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connect_timeout: float = 10.0,
        allow_insecure_http: bool = False,
        trust_env: bool = False,
    ) -> None:
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        if max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.base_url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self._redact = _Redactor(secret)
        self._headers = {
            "Authorization": f"Bearer {secret.reveal()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"searchcans-async/{__version__}",
        }
        self._session = session
        self._owns_session = session is None
        # Our own session sends these headers itself (aiohttp merging four headers into
        # each request costs 1.0 us); a lent session gets them with every request.
        self._request_headers = None if session is None else self._headers
        # The last attempt's timeout, kept: ClientTimeout costs 0.6 us to build, and
        # nearly every attempt uses the same.
        self._timeout = aiohttp.ClientTimeout()
        self._max_body_bytes = max_body_bytes
        self._connect_timeout = connect_timeout
        self._trust_env = trust_env
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def has_open_session(self) -> bool:
        """Whether this transport owns a session that is still open."""
        return self._owns_session and self._session is not None and not self._session.closed

    def _get_session(self) -> Session:
        if self._closed:
            raise RuntimeError("this client is closed; create a new SearchCans to make calls")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=self._trust_env,
                raise_for_status=False,
            )
        if self._session.closed:
            raise RuntimeError("the aiohttp session lent to this client is closed")
        return self._session

    def ensure_open(self) -> None:
        """Raise ``RuntimeError`` now if nothing can be sent (closed client or lent session)."""
        self._get_session()

    async def aclose(self) -> None:
        """Close the session if this transport created it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if self._owns_session and session is not None and not session.closed:
            await session.close()

    async def post(self, path: str, body: Mapping[str, Any], *, timeout: float) -> Envelope:
        """POST ``body`` to ``path`` and decode the answer.

        Raises:
            SearchCansError: A typed error for every failure; never an aiohttp exception.
        """
        session = self._get_session()
        if self._timeout.total != timeout:
            self._timeout = aiohttp.ClientTimeout(
                total=timeout, sock_connect=min(self._connect_timeout, timeout)
            )
        status: int | None = None
        failure: SearchCansError | None = None
        try:
            # aiohttp's own total timeout covers the connection, the headers and the body
            # (it raises TimeoutError); sock_connect marks a timeout before anything was sent.
            async with session.post(
                self.base_url + path,
                data=orjson.dumps(body),  # 0.2 us, json.dumps().encode() 1.8 us
                headers=self._request_headers,
                allow_redirects=False,
                # A lent session may raise for 4xx/5xx itself; we classify them instead.
                raise_for_status=False,
                timeout=self._timeout,
            ) as response:
                status = response.status
                raw = await self._read_body(response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            failure = map_aiohttp_error(error, http_status=status, redact=self._redact)
        except SearchCansError as error:
            failure = error
        if failure is not None:
            raise failure  # outside the except block: nothing of aiohttp's is chained
        return self._decode(status or 0, raw, retry_after)

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._max_body_bytes
        length = response.content_length
        if length is not None and length <= limit:
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise ResponseFormatError(
                    f"the answer is larger than max_body_bytes={limit}",
                    http_status=response.status,
                    charged=None if response.status == 200 else False,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, status: int, raw: bytes, retry_after: float | None) -> Envelope:
        envelope = _load_json(raw)
        code = envelope.get("code") if isinstance(envelope, dict) else None
        if not isinstance(envelope, dict) or isinstance(code, bool) or not isinstance(code, int):
            snippet = self._redact(raw.decode("utf-8", "replace"))
            if status != 200:
                raise error_from_answer(
                    http_status=status,
                    code=None,
                    message=f"HTTP {status} without an API envelope: {snippet!r}",
                    retry_after=retry_after,
                )
            raise ResponseFormatError(
                f"the answer is not the API's JSON envelope: {snippet!r}",
                http_status=status,
                charged=None,
            )
        request_id = envelope.get("requestId")
        request_id = None if request_id is None else self._redact(str(request_id), 80)
        if status == 200 and (code == 0 or code in NO_RESULTS_CODES):
            return Envelope(code, envelope.get("data"), request_id, status)
        message = envelope.get("msg")
        raise error_from_answer(
            http_status=status,
            code=code,
            message=self._redact(str(message)) if message else "",
            request_id=request_id,
            retry_after=retry_after,
        )

    def __repr__(self) -> str:
        return f"<Transport {self.base_url} owns_session={self._owns_session}>"


def _load_json(raw: bytes) -> Any:
    """Parse JSON, or return ``None``; never lets the parser's error (and the body) chain.

    orjson reads the bytes directly, about 2.5x faster than ``json.loads`` on a SERP page
    (4.3 vs 10.6 us for the emulator's 2.8 kB answer); what only Python's json accepts
    (``NaN``, ``Infinity``) is read by json as before. Integers beyond 64 bits become
    floats (orjson's rule); no figure of the API comes near.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        # JSON on the wire is UTF-8 (RFC 8259): decoding first skips json's own detection.
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
        return None  # UnicodeDecodeError is a ValueError too
