"""How the emulator writes its answers: envelopes, fault pages, dropped and dribbled bodies."""

from __future__ import annotations

import asyncio
import json
from email.utils import formatdate
from time import time
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ._results import wrong_types

if TYPE_CHECKING:
    from ._faults import Fault
    from ._state import AccountState, KeyState

__all__ = ["FAULT_MESSAGES", "Call", "deliver_damaged", "drop", "refusal_fault", "reply", "sleep"]

_DEPRECATED_HEADERS: Final = {"Deprecation": "true", "Sunset": "Thu, 31 Dec 2026 23:59:59 GMT"}
_HTML_ERROR: Final = (
    "<html><head><title>{status} {reason}</title></head><body>"
    "<center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>"
)
_REASONS: Final = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
FAULT_MESSAGES: Final = {
    "lane_busy": "all Parallel Lanes are busy, retry shortly",
    "rate_limited": "Too Many Requests",
    "api_timeout": "server-side timeout",
    "throttled": "request frequency limited, slow down",
    "network_code": "upstream network error",
    "no_results": "no results",
    "bad_request": "bad request (injected)",
    "unknown_code": "unknown error (injected)",
}


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, as the service sends it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Call:
    """What the server learnt about one request while handling it."""

    __slots__ = (
        "account",
        "body",
        "charged",
        "code",
        "endpoint",
        "fault",
        "headers",
        "http_status",
        "key",
        "latency",
        "ordinal",
        "path",
        "planned",
        "request_id",
        "started",
        "subject",
        "wire_id",
    )

    def __init__(self, ordinal: int, endpoint: str, path: str, key: KeyState | None) -> None:
        self.ordinal = ordinal
        self.endpoint = endpoint
        self.path = path
        self.key = key
        self.account: AccountState | None = key.account if key is not None else None
        self.planned: Fault | None = None
        self.fault: str | None = None
        self.body: dict[str, Any] | None = None
        self.subject: str | None = None
        self.http_status: int | None = None
        self.code: int | None = None
        self.charged = 0
        self.latency: float | None = None
        self.started = 0
        self.request_id = ""
        self.wire_id: str | None = None  # the `requestId` sent: null, as published
        self.headers: dict[str, str] = (
            dict(_DEPRECATED_HEADERS)
            if not path.startswith("/api/v1/") and endpoint != "account"
            else {}
        )


def reply(call: Call, status: int, code: int, message: str, data: Any = None) -> web.Response:
    """An envelope answer; records its status and code on `call`."""
    call.http_status, call.code = status, code
    envelope = {"code": code, "data": data, "msg": message, "requestId": call.wire_id}
    return web.Response(
        body=dumps(envelope),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=call.headers,
    )


def refusal_fault(call: Call, fault: Fault, *, empty: Any) -> web.Response:
    """The answer of an uncharged fault (its status, code and headers).

    `empty` is the `data` of a "no results" answer (`[]` or `{}`, see `WireOptions`).
    """
    kind, code = fault.kind, fault.code or 0
    if kind == "server_error":
        if fault.html:
            call.http_status = code
            text = _HTML_ERROR.format(status=code, reason=_REASONS[code])
            return web.Response(
                text=text, status=code, content_type="text/html", headers=call.headers
            )
        return reply(call, code, code, _REASONS[code])
    if kind == "rate_limited":
        response = reply(call, 429, 429, FAULT_MESSAGES[kind])
        if fault.retry_after is not None:
            response.headers["Retry-After"] = _retry_after(fault)
        return response
    if kind == "bad_request":
        return reply(call, 400, 400, FAULT_MESSAGES[kind])
    data = empty if kind == "no_results" else None
    return reply(call, 200, code, FAULT_MESSAGES[kind], data)


async def deliver_damaged(
    request: web.Request, call: Call, fault: Fault, data: Any
) -> web.StreamResponse:
    """Deliver a charged success the way a charged fault damages it."""
    if fault.kind == "wrong_types":
        return reply(call, 200, 0, "success", wrong_types(call.endpoint, data))
    if fault.kind == "reset_after_charge":
        return drop(request)
    call.http_status, call.code = 200, 0
    envelope = {"code": 0, "data": data, "msg": "success", "requestId": call.wire_id}
    body = dumps(envelope)
    chunks = [body]
    delay, close = 0.0, False
    if fault.kind == "huge_body":
        body = chunks[0] = _padded(envelope, fault.size)
    elif fault.kind == "truncated_json":
        cut = min(max(1, int(len(body) * fault.keep)), len(body) - 1)
        chunks = [body[:cut]]
        if not fault.cut_connection:
            body = chunks[0]
        close = fault.cut_connection
    else:  # slow_body
        size = fault.chunk_size
        chunks = [body[start : start + size] for start in range(0, len(body), size)]
        delay = fault.chunk_delay
    return await _stream(request, call, len(body), chunks, delay, close=close)


async def sleep(seconds: float) -> None:
    """Sleep, without even a loop turn for zero (the benchmark runs at zero latency)."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def drop(request: web.Request) -> web.Response:
    """Drop the connection without an answer; aiohttp then finds nothing to write to."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=200)


def _retry_after(fault: Fault) -> str:
    value = fault.retry_after
    if isinstance(value, str):
        return value
    seconds = float(value or 0)
    if fault.http_date:
        return formatdate(time() + seconds, usegmt=True)
    return str(int(seconds)) if seconds.is_integer() else f"{seconds:g}"


def _padded(envelope: dict[str, Any], size: int) -> bytes:
    """The envelope, valid JSON, padded to about `size` bytes."""
    base = len(dumps(envelope))
    padding = "x" * max(0, size - base - len(',"padding":""'))
    data = envelope["data"]
    if isinstance(data, dict):
        envelope = {**envelope, "data": {**data, "padding": padding}}
    else:
        envelope = {**envelope, "padding": padding}
    return dumps(envelope)


async def _stream(
    request: web.Request,
    call: Call,
    length: int,
    chunks: list[bytes],
    delay: float,
    *,
    close: bool,
) -> web.StreamResponse:
    """Send `chunks` under headers announcing `length` bytes, `delay` apart; maybe hang up."""
    response = web.StreamResponse(status=200, headers=call.headers)
    response.content_type = "application/json"
    response.content_length = length
    try:
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if index:
                await sleep(delay)
            await response.write(chunk)
        if close:
            # close(), not abort(): the partial body must reach the client before the FIN.
            if request.transport is not None:
                request.transport.close()
        else:
            await response.write_eof()
    except ConnectionError:
        # The client gave up (its deadline fired): the server had charged all the same.
        pass
    return response
