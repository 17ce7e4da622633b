"""The emulator's answers, replayed by a bare HTTP server in its own process (benchmarks only).

At zero latency on a two-core machine the emulator (an aiohttp server with lanes, billing
and records) needs about as much CPU per request as the client: both cores saturate, and
the rate measures the server as much as the client. This server answers every search with
the emulator's own page and every account read with its own account, recorded once at
start from a real :class:`~searchcans_async.testing.Emulator`, in a few microseconds per
request, so that the client is the one bottleneck of the zero-latency measure.

It understands just what aiohttp sends: HTTP/1.1 keep-alive POSTs with a Content-Length.
It bills nothing and checks no key; the lane-bound case and every other measure use the
real emulator.

``python -m benchmarks._replay_server '{}' [CPU]`` prints ``SEARCHCANS_BASE_URL`` and
``SEARCHCANS_API_KEY`` like ``benchmarks._emulator_process``, serves until SIGINT, then
prints ``STATS=<json>`` (requests answered, by path).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import sys
from typing import Any, Final

import aiohttp

from searchcans_async.testing import Emulator

SEARCH: Final = b"/api/v1/search"
ACCOUNT: Final = b"/api/user/key"
_LENGTH: Final = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_NOT_FOUND: Final = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def http_answer(body: bytes, content_type: str) -> bytes:
    """A whole HTTP/1.1 200 answer with ``body``."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


async def record() -> tuple[dict[bytes, bytes], str]:
    """The emulator's answer to one search and one account read, and its API key."""
    answers: dict[bytes, bytes] = {}
    async with Emulator(credits=10**12, lanes=64) as emulator, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {emulator.api_key}"}
        for path, body in ((SEARCH, {"s": "benchmark query 0", "t": "google"}), (ACCOUNT, {})):
            async with session.post(
                emulator.base_url + path.decode(), json=body, headers=headers
            ) as response:
                assert response.status == 200, response.status
                answers[path] = http_answer(await response.read(), response.headers["Content-Type"])
        return answers, emulator.api_key


class _Replay(asyncio.Protocol):
    """One connection: answers each complete request in the order it came."""

    def __init__(self, answers: dict[bytes, bytes], counts: collections.Counter[str]) -> None:
        self.answers = answers
        self.counts = counts
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = _LENGTH.search(head)
            request_end = end + 4 + (int(length.group(1)) if length else 0)
            if len(buffer) < request_end:
                break  # the body is still on its way
            path = head.split(b" ", 2)[1]
            self.transport.write(self.answers.get(path, _NOT_FOUND))
            self.counts[path.decode("ascii", "replace")] += 1
            buffer = buffer[request_end:]
        self.buffer = buffer


async def serve() -> None:
    answers, api_key = await record()
    counts: collections.Counter[str] = collections.Counter()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(lambda: _Replay(answers, counts), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"SEARCHCANS_BASE_URL=http://127.0.0.1:{port}\nSEARCHCANS_API_KEY={api_key}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()
    stats: dict[str, Any] = {"requests": sum(counts.values()), "by_path": dict(counts)}
    sys.stdout.write("STATS=" + json.dumps(stats) + "\n")
    sys.stdout.flush()


def main() -> None:
    if len(sys.argv) > 2 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(sys.argv[2])})
    asyncio.run(serve())


if __name__ == "__main__":
    main()
