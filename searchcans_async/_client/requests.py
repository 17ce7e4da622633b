"""Validated request options for the SERP and Reader endpoints, and their wire bodies.

Every option is checked here, before anything is sent: an unknown engine, ``proxy=5`` or
a browser wait without browser mode is a :class:`ValueError` naming the option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from .costs import Costs

__all__ = ["ENGINES", "MAX_QUERY_CHARS", "MAX_URL_CHARS", "ReadRequest", "SearchRequest"]

ENGINES: Final = (
    "google",
    "bing",
    "google_news",
    "google_shopping",
    "google_images",
    "google_videos",
    "google_short_videos",
)

#: The longest query sent (characters). Search engines cut queries far shorter; a longer
#: one is a mistake (a file pasted as a query) that would be sent, and billed, for nothing.
MAX_QUERY_CHARS: Final = 2_048
#: The longest URL sent to the Reader (characters), beyond what browsers and servers take.
MAX_URL_CHARS: Final = 8_192

SEARCH_PATH: Final = "/api/v1/search"
READ_PATH: Final = "/api/v1/url"

# Python option name -> wire name of the SERP feature flags.
_SEARCH_FLAGS: Final = {
    "knowledge_graph": "knowledgeGraph",
    "people_also_ask": "peopleAlsoAsk",
    "ai_summary": "aiSummary",
    "news_aggregation": "newsAggregation",
    "video_aggregation": "videoAggregation",
    "people_also_search_for": "peopleAlsoSearchFor",
}


_FLAG_OPTIONS: Final = ("html", *_SEARCH_FLAGS)


def _text(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")


def _length(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValueError(
            f"{name} must be at most {limit:,} characters, got {len(value):,} (nothing was sent)"
        )


def _count(name: str, value: object, *, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def _seconds(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= 600:
        raise ValueError(f"{name} must be between 0 and 600 seconds, got {value}")


def _flag(name: str, value: object) -> None:
    if type(value) is not bool:  # bool has no subclasses: isinstance would say the same
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@attrs.frozen(kw_only=True)
class SearchRequest:
    """One SERP call's options (see ``SearchCans.search`` for their meaning)."""

    query: str
    engine: str = "google"
    country: str | None = None
    language: str | None = None
    page: int | None = None
    pages: int | None = None
    server_timeout: float | None = None
    wait: float | None = None
    html: bool = False
    knowledge_graph: bool = False
    people_also_ask: bool = False
    ai_summary: bool = False
    news_aggregation: bool = False
    video_aggregation: bool = False
    people_also_search_for: bool = False

    def __attrs_post_init__(self) -> None:
        _text("query", self.query)
        _length("query", self.query, MAX_QUERY_CHARS)
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        _text("country", self.country, optional=True)
        _text("language", self.language, optional=True)
        _count("page", self.page, low=1)
        _count("pages", self.pages, low=1, high=100)
        if self.page is not None and self.pages is not None:
            raise ValueError("give page (one page) or pages (pages 1..N), not both")
        if self.pages is not None and self.pages > 1 and self.engine != "google":
            # pages=1 is what the vendor's own scripts send with every engine.
            raise ValueError(f"pages=N > 1 works with engine 'google' only, not {self.engine!r}")
        _seconds("server_timeout", self.server_timeout)
        _seconds("wait", self.wait)
        for name in _FLAG_OPTIONS:
            _flag(name, getattr(self, name))

    path: ClassVar[str] = SEARCH_PATH

    @property
    def subject(self) -> str:
        """What the call is about (the query), for logs and reports."""
        return self.query

    @property
    def server_wait(self) -> float:
        """Seconds the server may legitimately spend (its ``d`` plus ``w``)."""
        return (self.server_timeout or 10.0) + (self.wait or 0.0)

    def cost(self, costs: Costs) -> int:
        """Credits this call costs when it succeeds."""
        return costs.search(self.pages or 1)

    def body(self) -> dict[str, Any]:
        """The JSON body sent to ``/api/v1/search``: only the options that were set."""
        body: dict[str, Any] = {"s": self.query, "t": self.engine}
        if self.country is not None:
            body["country"] = self.country
        if self.language is not None:
            body["language"] = self.language
        if self.page is not None:
            body["p"] = self.page
        if self.pages is not None:
            body["page"] = self.pages
        if self.server_timeout:
            body["d"] = _ms(self.server_timeout)
        if self.wait:
            body["w"] = _ms(self.wait)
        if self.html:
            body["html"] = 1
        for name, wire in _SEARCH_FLAGS.items():
            if getattr(self, name):
                body[wire] = True
        return body


@attrs.frozen(kw_only=True)
class ReadRequest:
    """One Reader call's options (see ``SearchCans.read`` for their meaning)."""

    url: str
    proxy: int = 0
    browser: bool = False
    wait: float | None = None
    server_timeout: float | None = None
    html: bool = False
    captcha: bool = False
    file: bool = False
    image: int = 0

    def __attrs_post_init__(self) -> None:
        _text("url", self.url)
        _length("url", self.url, MAX_URL_CHARS)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be an absolute http(s) URL, got {self.url!r:.200}")
        _count("proxy", self.proxy, low=0, high=3)
        _count("image", self.image, low=0, high=2)
        for name in ("browser", "html", "captcha", "file"):
            _flag(name, getattr(self, name))
        _seconds("wait", self.wait)
        _seconds("server_timeout", self.server_timeout)
        if self.wait is not None and not self.browser:
            raise ValueError("wait applies after browser rendering: pass browser=True with it")

    path: ClassVar[str] = READ_PATH

    @property
    def subject(self) -> str:
        """What the call is about (the URL), for logs and reports."""
        return self.url

    @property
    def server_wait(self) -> float:
        """Seconds the server may legitimately spend (its ``d`` plus ``w``)."""
        return (self.server_timeout or 10.0) + (self.wait or 0.0)

    def cost(self, costs: Costs) -> int:
        """Credits this call costs when it succeeds."""
        return costs.read(
            self.proxy, browser=self.browser, captcha=self.captcha, file=self.file, image=self.image
        )

    def body(self) -> dict[str, Any]:
        """The JSON body sent to ``/api/v1/url``."""
        body: dict[str, Any] = {"s": self.url, "t": "url"}
        optional = {
            "proxy": self.proxy or None,
            "d": _ms(self.server_timeout) if self.server_timeout else None,
            "mode": 1 if self.browser else None,
            "w": _ms(self.wait) if self.wait else None,
            "html": 1 if self.html else None,
            "captcha": 1 if self.captcha else None,
            "file": 1 if self.file else None,
            "image": self.image or None,
        }
        body.update((k, v) for k, v in optional.items() if v is not None)
        return body
