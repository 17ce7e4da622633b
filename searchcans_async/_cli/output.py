"""What the command line prints: results, errors and accounts as compact JSON or as text.

The JSON shapes here are the command line's public output format (``batch`` writes one
record per line, ``search --json`` / ``read --json`` / ``account --json`` print one), so
they use the Python attribute names (snake_case), like the batch input's fields.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Final, cast

from .._client import (
    ImageResult,
    NewsResult,
    SearchCansError,
    SearchResult,
    ShoppingResult,
    ShortVideoResult,
    VideoResult,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._client import Account, ApiKey, OrganicResult, ReaderPage

__all__ = [
    "Scrub",
    "ScrubbedStream",
    "account_payload",
    "dumps",
    "error_payload",
    "page_payload",
    "quota_text",
    "result_payload",
    "scrubbed",
    "search_payload",
    "search_text",
]

# SearchResult blocks copied into the JSON when the answer has them.
_BLOCKS: Final = (
    "people_also_ask",
    "related_searches",
    "knowledge_graph",
    "top_stories",
    "suggested_searches",
    "news_results",
    "shopping_results",
    "images_results",
    "video_results",
    "short_video_results",
)
_MESSAGE_CHARS: Final = 500
_VERTICAL_MODELS: Final = (NewsResult, ShoppingResult, ImageResult, VideoResult, ShortVideoResult)


def dumps(payload: object) -> str:
    """One line of compact JSON (non-ASCII kept readable, anything odd as a string)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    """Mappings and tuples of an answer's blocks as JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, _VERTICAL_MODELS):  # a typed vertical result: the item as sent
        return _plain(value.raw)
    return value


def _organic(hit: OrganicResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "position": hit.position,
        "title": hit.title,
        "link": hit.link,
        "snippet": hit.snippet,
    }
    if hit.source is not None:
        payload["source"] = hit.source
    if hit.page is not None:
        payload["page"] = hit.page
    return payload


def search_payload(result: SearchResult) -> dict[str, Any]:
    """A SERP answer: web results, any other block it has, credits and request id.

    Example:
        >>> search_payload(SearchResult(query="q", engine="google"))["organic"]
        []
    """
    payload: dict[str, Any] = {
        "engine": result.engine,
        "no_results": result.no_results,
        "organic": [_organic(hit) for hit in result.organic],
    }
    for name in _BLOCKS:
        value = getattr(result, name)
        if value:
            payload[name] = _plain(value)
    if result.extra:
        payload["extra"] = _plain(result.extra)
    payload["credits"] = result.credits
    payload["request_id"] = result.request_id
    return payload


#: The top-level names of a result's JSON, per kind (what --fields may name).
RESULT_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "search": frozenset({"engine", "no_results", "organic", *_BLOCKS, "extra", "credits",
                         "request_id"}),
    "read": frozenset({"url", "title", "description", "markdown", "html", "file_markdown",
                       "image_url", "credits", "request_id"}),
}  # fmt: skip


def page_payload(page: ReaderPage) -> dict[str, Any]:
    """A Reader page: title, description, markdown (and what else was asked for)."""
    payload: dict[str, Any] = {
        "url": page.url,
        "title": page.title,
        "description": page.description,
        "markdown": page.markdown,
    }
    for name in ("html", "file_markdown", "image_url"):
        value = getattr(page, name)
        if value is not None:
            payload[name] = value
    payload["credits"] = page.credits
    payload["request_id"] = page.request_id
    return payload


def result_payload(result: SearchResult | ReaderPage) -> dict[str, Any]:
    """The JSON of a search result or a Reader page."""
    if isinstance(result, SearchResult):
        return search_payload(result)
    return page_payload(result)


def error_payload(error: BaseException) -> dict[str, Any]:
    """Why an item failed: type, code, status, whether it was charged, and the message.

    ``charged`` is ``true``/``false`` when known and ``null`` when the call was possibly
    charged (the client gave up after the server may have served it).

    Example:
        >>> error_payload(asyncio.CancelledError())["charged"] is None
        True
    """
    if isinstance(error, SearchCansError):
        return {
            "type": type(error).__name__,
            "code": error.code,
            "http_status": error.http_status,
            "charged": error.charged,
            "retryable": error.retryable,
            "message": error.message[:_MESSAGE_CHARS],
            "request_id": error.request_id,
        }
    if isinstance(error, asyncio.CancelledError):
        message = "cancelled while in flight; possibly charged"
    else:
        message = str(error)[:_MESSAGE_CHARS] or type(error).__name__
    return {"type": type(error).__name__, "charged": None, "message": message}


def quota_text(key: ApiKey) -> str:
    """A key's quota in words: ``"shared pool"`` when it draws on the account's credits."""
    if not key.has_own_quota:
        return "shared pool"
    return f"{key.remain} of {key.total} left"


def account_payload(account: Account, *, personal: bool = False) -> dict[str, Any]:
    """The account as JSON; ``nickname``/``email`` only when ``personal`` is set.

    The masked keys are left out: the key ``name`` and ``id`` identify them, and
    ``calling`` marks the key that read the account.
    """
    calling = account.calling_key()
    try:
        spendable: int | None = account.spendable()
    except SearchCansError:  # the calling key is inactive
        spendable = None
    payload: dict[str, Any] = {
        "remain": account.remain,
        "spendable": spendable,
        "concurrent": account.concurrent,
        "month": account.month,
        "current": account.current,
        "total": account.total,
        "permanent_remain": account.permanent_remain,
        "permanent_current": account.permanent_current,
        "permanent_month": account.permanent_month,
        "permanent_total": account.permanent_total,
        "keys": [
            {
                "name": key.name,
                "id": key.id,
                "active": key.active,
                "total": key.total,
                "remain": key.remain if key.has_own_quota else None,
                "quota": quota_text(key),
                "calling": key is calling,
            }
            for key in account.keys
        ],
    }
    if personal:
        payload["nickname"] = account.nickname
        payload["email"] = account.email
    return payload


# --with FEATURE: the block's heading, and where the answer keeps it.
_FEATURE_BLOCKS: Final[Mapping[str, tuple[str, Callable[[SearchResult], Any]]]] = {
    "knowledge-graph": ("Knowledge graph", lambda r: r.knowledge_graph),
    "people-also-ask": ("People also ask", lambda r: r.people_also_ask),
    "ai-summary": ("AI summary", lambda r: r.extra.get("aiSummary")),
    "news-aggregation": ("Top stories", lambda r: r.top_stories),
    "video-aggregation": ("Videos", lambda r: r.extra.get("videos")),
    "people-also-search-for": ("People also search for", lambda r: r.suggested_searches),
}
_ENTRY_NAMES: Final = ("question", "title", "query", "text", "name")
_ENTRY_DETAILS: Final = ("type", "snippet", "description", "link", "website", "source", "date")


def _block_lines(heading: str, value: Any) -> list[str]:
    """One asked-for block (a mapping or a list of them) as indented lines."""
    if not value:
        return [f"{heading}: none in this answer"]
    lines = [f"{heading}:"]
    for entry in value if isinstance(value, list | tuple) else [value]:
        if not isinstance(entry, Mapping):
            lines.append(f"- {entry}")
            continue
        name = next((str(entry[k]) for k in _ENTRY_NAMES if entry.get(k)), "")
        lines.append(f"- {name}")
        lines.extend(f"   {entry[k]}" for k in _ENTRY_DETAILS if entry.get(k))
    return lines


def search_text(result: SearchResult, features: Iterable[str] = ()) -> str:
    """A SERP answer as numbered, readable lines, then each block asked for with --with."""
    if result.no_results:
        return f"no results for {result.query!r}"
    text = _results_text(result)
    for feature in features:
        heading, block = _FEATURE_BLOCKS[feature]
        text += "\n\n" + "\n".join(_block_lines(heading, block(result)))
    return text


def _results_text(result: SearchResult) -> str:
    lines: list[str] = []
    hits: list[Mapping[str, Any]] = [_organic(hit) for hit in result.organic]
    if not hits:
        for name in _BLOCKS[5:]:  # a vertical engine's own list, as the service sent it
            hits = [item.raw for item in getattr(result, name)]
            if hits:
                break
    for number, hit in enumerate(hits, 1):
        lines.append(f"{hit.get('position') or number}. {hit.get('title', '')}")
        if hit.get("link"):
            lines.append(f"   {hit['link']}")
        if hit.get("snippet"):
            lines.append(f"   {hit['snippet']}")
    return "\n".join(lines) if lines else f"no web results for {result.query!r}"


class Scrub:
    """Replaces the API key with ``********`` in any text (a last line of defence).

    The library never puts the key in a message; the command line checks once more
    before anything reaches a terminal, a log or a results file.

    Example:
        >>> Scrub("sk_live_canary")("oops sk_live_canary")
        'oops ********'
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | None) -> None:
        self._key = key or None

    def __call__(self, text: str) -> str:
        key = self._key
        return text.replace(key, "********") if key and key in text else text


class ScrubbedStream(io.TextIOBase):
    """A text stream that scrubs the key out of everything written through it."""

    def __init__(self, stream: IO[str], scrub: Scrub) -> None:
        super().__init__()
        self._stream = stream
        self._scrub = scrub

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only in TextIOBase's stub
        return getattr(self._stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        """Write ``text`` without the key."""
        self._stream.write(self._scrub(text))
        return len(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()

    def isatty(self) -> bool:
        """Whether the underlying stream is a terminal (rich asks)."""
        return self._stream.isatty()

    def fileno(self) -> int:
        """The underlying stream's file descriptor."""
        return self._stream.fileno()

    def writable(self) -> bool:
        """Always: this is an output stream."""
        return True


def scrubbed(stream: IO[str], scrub: Scrub) -> IO[str]:
    """``stream`` behind a :class:`ScrubbedStream` (typed as the text stream it stands for)."""
    return cast("IO[str]", ScrubbedStream(stream, scrub))
