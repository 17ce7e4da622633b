"""Helpers for the tests that talk to the emulator over real HTTP (aiohttp on 127.0.0.1).

The ``session`` fixture (an ``aiohttp.ClientSession``) is in ``conftest.py``. Each test
module keeps a small ``post`` of its own shape on top of :func:`send`.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp

SEARCH = "/api/v1/search"
READER = "/api/v1/url"
ACCOUNT = "/api/user/key"
BULLET = "\u2022"  # the published account answer masks keys with these

#: API.md "Vertical engines' result fields": each engine's list and what its items carry
#: beyond ``position``, ``title`` and ``link``.
VERTICAL_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "google_images": (
        "images_results",
        ("source", "thumbnail", "original", "original_width", "original_height", "is_product"),
    ),
    "google_shopping": (
        "shopping_results",
        (
            "product_id",
            "product_link",
            "source",
            "price",
            "extracted_price",
            "rating",
            "reviews",
            "thumbnail",
            "multiple_sources",
            "delivery",
        ),
    ),
    "google_news": ("news_results", ("source", "date", "iso_date", "snippet", "thumbnail")),
    "google_videos": ("video_results", ("snippet", "duration", "channel", "thumbnail")),
    "google_short_videos": ("short_video_results", ("source", "channel", "duration")),
}


@attrs.frozen
class Reply:
    """One HTTP answer: status, headers and the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON, whatever its content type."""
        return json.loads(self.body)


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: Any = None,
    *,
    key: str | None,
    data: bytes | None = None,
    authorization: str | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> Reply:
    """POST ``body`` as JSON (or ``data`` as it is) with a bearer ``key``.

    ``authorization`` replaces the whole header; ``""`` sends none.
    """
    headers = {"Authorization": authorization or f"Bearer {key}"}
    if authorization == "":
        headers = {}
    async with session.post(
        url, json=body if data is None else None, data=data, headers=headers, timeout=timeout
    ) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.read())


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (on a condition, not a duration) until the server reaches a state."""
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the emulator never reached the expected state")
