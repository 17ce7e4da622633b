"""Validation of request bodies: what the emulator accepts, and the 400 it answers otherwise.

The public docs do not say how the service answers a malformed body, so these are the
emulator's documented decisions (see docs/emulator.md): HTTP 400, code 400, a message naming
the field, never charged. Unknown fields are ignored, as a tolerant server would.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

__all__ = ["BadRequestError", "ReaderQuery", "SearchQuery", "parse_reader", "parse_search"]

#: Engines `t` accepts on the search endpoint.
SEARCH_ENGINES: Final = (
    "google",
    "bing",
    "google_news",
    "google_shopping",
    "google_images",
    "google_videos",
    "google_short_videos",
)
#: Boolean feature flags of a search request.
SEARCH_FLAGS: Final = (
    "knowledgeGraph",
    "peopleAlsoAsk",
    "aiSummary",
    "newsAggregation",
    "videoAggregation",
    "peopleAlsoSearchFor",
)
DEFAULT_TIMEOUT_MS: Final = 10_000


class BadRequestError(ValueError):
    """A body the emulator refuses with HTTP 400; the message names the field (internal)."""


@attrs.frozen
class SearchQuery:
    """A validated search request (internal)."""

    query: str
    engine: str
    pages: tuple[int, ...]
    country: str
    language: str
    flags: frozenset[str]
    html: bool
    timeout_ms: int
    wait_ms: int


@attrs.frozen
class ReaderQuery:
    """A validated Reader request (internal)."""

    url: str
    proxy: int
    mode: bool
    captcha: bool
    file: bool
    image: int
    html: bool
    timeout_ms: int
    wait_ms: int


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _required_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"{field}: required, a non-empty string")
    return value


def _optional_text(body: dict[str, Any], field: str) -> str:
    value = body.get(field, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{field}: must be a string")
    return value


def _int_field(body: dict[str, Any], field: str, default: int, low: int, high: int | None) -> int:
    value = body.get(field)
    if value is None:
        return default
    if not _is_int(value) or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequestError(f"{field}: must be an integer {bounds}, got {value!r}")
    return int(value)


def _flag(body: dict[str, Any], field: str, *, allowed: tuple[int, ...] = (0, 1)) -> int:
    value = body.get(field)
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if not _is_int(value) or value not in allowed:
        raise BadRequestError(
            f"{field}: must be one of {list(allowed)} or a boolean, got {value!r}"
        )
    return int(value)


def _timing(body: dict[str, Any]) -> tuple[int, int]:
    return (
        _int_field(body, "d", DEFAULT_TIMEOUT_MS, 1, None),
        _int_field(body, "w", 0, 0, None),
    )


def parse_search(body: dict[str, Any], *, deep_pages: str = "one") -> SearchQuery:
    """Validate a search body.

    `s` and `t` are required (`t` one of the seven engines). `page: N` fetches pages 1..N and
    wins over `p`; off Google, `page: N > 1` follows `deep_pages` (`WireOptions`: `"one"`
    serves page 1 only, `"all"` pages 1..N, `"refuse"` is a 400); `p` selects one page. `d`
    must be a positive integer (ms), `w` a non-negative one; flags accept booleans or 0/1.
    """
    query = _required_text(body, "s")
    engine = _required_text(body, "t")
    if engine not in SEARCH_ENGINES:
        raise BadRequestError(
            f"t: unknown engine {engine!r}, expected one of {list(SEARCH_ENGINES)}"
        )
    if body.get("page") is not None:
        last = _int_field(body, "page", 1, 1, None)
        if engine == "google" or last == 1 or deep_pages == "all":
            pages = tuple(range(1, last + 1))
        elif deep_pages == "refuse":
            raise BadRequestError(f"page: more than 1 page only with t='google', not {engine!r}")
        else:  # "one": undocumented off Google; serve (and charge) the first page only
            pages = (1,)
    else:
        pages = (_int_field(body, "p", 1, 1, None),)
    flags = frozenset(flag for flag in SEARCH_FLAGS if _flag(body, flag))
    timeout_ms, wait_ms = _timing(body)
    return SearchQuery(
        query=query,
        engine=engine,
        pages=pages,
        country=_optional_text(body, "country"),
        language=_optional_text(body, "language"),
        flags=flags,
        html=bool(_flag(body, "html")),
        timeout_ms=timeout_ms,
        wait_ms=wait_ms,
    )


def parse_reader(body: dict[str, Any]) -> ReaderQuery:
    """Validate a Reader body.

    `t` must be `"url"` and `s` an http(s) URL. `proxy` is an integer 0-3; `w` needs `mode`;
    `image` is 0, 1 (viewport) or 2 (full page); `mode`, `captcha`, `file`, `html` are flags.
    """
    url = _required_text(body, "s")
    engine = _required_text(body, "t")
    if engine != "url":
        raise BadRequestError(f"t: must be 'url' on the Reader endpoint, got {engine!r}")
    if not url.startswith(("http://", "https://")):
        raise BadRequestError(f"s: must be an http(s) URL, got {url[:80]!r}")
    mode = bool(_flag(body, "mode"))
    timeout_ms, wait_ms = _timing(body)
    if body.get("w") is not None and not mode:
        raise BadRequestError("w: only allowed together with mode: 1 (browser rendering)")
    return ReaderQuery(
        url=url,
        proxy=_int_field(body, "proxy", 0, 0, 3),
        mode=mode,
        captcha=bool(_flag(body, "captcha")),
        file=bool(_flag(body, "file")),
        image=_flag(body, "image", allowed=(0, 1, 2)),
        html=bool(_flag(body, "html")),
        timeout_ms=timeout_ms,
        wait_ms=wait_ms,
    )
