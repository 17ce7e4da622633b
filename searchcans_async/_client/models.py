"""Frozen value objects: the account, its keys, SERP results and Reader pages.

Why one module: every frozen model users read is declared here with its docstring;
conversion lives in convert.py, vertical results in verticals.py.

Field names are snake_case here; the one converter in ``_convert`` maps them to the API's
camelCase (``json`` metadata names the few that do not follow the simple rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from .errors import AuthenticationError

__all__ = [
    "Account",
    "ApiKey",
    "ImageResult",
    "NewsResult",
    "NewsSource",
    "OrganicResult",
    "ReaderPage",
    "SearchResult",
    "ShoppingResult",
    "ShortVideoResult",
    "VideoResult",
]

SHARED_POOL: Final = -1
"""``ApiKey.total`` value meaning "no own cap: draws on the account's credits"."""

_EMPTY: Final[Mapping[str, Any]] = {}


class FieldValueError(ValueError):
    """A field's value is out of range; ``field`` names it (for error messages)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise FieldValueError(attribute.name, f"must be >= 0, got {value}")


@attrs.frozen
class ApiKey:
    """One API key of the account, as ``/api/user/key`` lists it.

    Attributes:
        name: The key's display name.
        id: The key's id (``uk_...``).
        key: The key itself, masked by the server (opaque text with bullet characters).
        active: Whether the key may be used.
        total: Its own credit quota, or ``-1`` when it draws on the account's pool.
        remain: What is left of its own quota; meaningless when ``total == -1``.

    Example:
        >>> ApiKey(name="crawler", total=-1, remain=0).has_own_quota
        False
    """

    name: str = ""
    id: str = ""
    key: str = attrs.field(default="", repr=False)
    active: bool = True
    total: int = SHARED_POOL
    remain: int = 0

    @property
    def has_own_quota(self) -> bool:
        """Whether this key has its own cap (``total != -1``) besides the account's credits."""
        return self.total != SHARED_POOL


@attrs.frozen
class Account:
    """The SearchCans account as seen through one API key.

    ``remain`` already includes the non-expiring ``permanent_*`` credits, which the
    service spends first. ``concurrent`` is the number of Parallel Lanes; ``0`` means the
    account cannot run anything (a :class:`LanePool` refuses to open on it with
    :class:`NoLanesError` rather than wait forever).

    Personal fields (``nickname``, ``email``) are kept out of ``repr`` so that logging an
    account never logs who owns it.

    Example:
        >>> account = Account(remain=1098, concurrent=1, keys=(ApiKey(name="demo"),))
        >>> account.spendable()
        1098
    """

    remain: int = attrs.field(validator=_non_negative)
    concurrent: int = attrs.field(validator=_non_negative)
    total: int = 0
    current: int = 0
    month: int = 0
    permanent_remain: int = 0
    permanent_current: int = 0
    permanent_month: int = 0
    permanent_total: int = 0
    keys: tuple[ApiKey, ...] = ()
    key: str = attrs.field(default="", repr=False)
    nickname: str | None = attrs.field(default=None, repr=False, metadata={"json": "nickName"})
    email: str | None = attrs.field(default=None, repr=False)

    def calling_key(self, for_key: str | ApiKey | None = None) -> ApiKey | None:
        """Find the key that spends: ``for_key`` (id, name or masked key), else the caller.

        Returns ``None`` when the account lists no matching key; then only the account's
        ``remain`` limits spending.

        Raises:
            ValueError: ``for_key`` names no key of this account.
        """
        if isinstance(for_key, ApiKey):
            return for_key
        if for_key is not None:
            if not for_key:
                raise ValueError("for_key must name a key (its id, name or masked key)")
            for attribute in ("id", "name", "key"):
                found = [k for k in self.keys if getattr(k, attribute) == for_key]
                if found:
                    return found[0]
            names = ", ".join(repr(k.name) for k in self.keys) or "none"
            raise ValueError(f"this account has no API key {for_key!r} (keys: {names})")
        candidates = [k for k in self.keys if self.key and k.key == self.key]
        if not candidates and len(self.keys) == 1:
            candidates = list(self.keys)
        if not candidates:
            return None
        if len(candidates) > 1:
            # Masks can collide; assume the most restrictive of the look-alikes.
            active = [k for k in candidates if k.active] or candidates
            return min(active, key=self._cap)
        return candidates[0]

    @property
    def consumed(self) -> int:
        """All-time consumption as the counters show it: ``current + permanent_current``.

        Bonus credits are spent first and counted in ``permanent_current`` only. The
        counters are evidence, never billing (only ``remain`` is): they may lag or stand
        still, so a pool trusts their growth only as far as it matches its own spending.

        Example:
            >>> Account(remain=1098, concurrent=1, current=2, permanent_current=3).consumed
            5
        """
        return self.current + self.permanent_current

    def spendable(self, for_key: str | ApiKey | None = None) -> int:
        """Credits the calling key may spend now.

        That is the account's ``remain``, capped by the key's own ``remain`` when the key
        has its own quota (``total != -1``).

        Args:
            for_key: The spending key's id, name or masked key, or an :class:`ApiKey`.
                Default: the key that read this account.

        Raises:
            AuthenticationError: The key is inactive, so it can spend nothing.
            ValueError: ``for_key`` names no key of this account.

        Example:
            >>> shared = ApiKey(name="a", total=-1, remain=0)
            >>> capped = ApiKey(name="b", total=100, remain=40)
            >>> account = Account(remain=1098, concurrent=1, keys=(shared, capped))
            >>> account.spendable("a"), account.spendable("b")
            (1098, 40)
        """
        key = self.calling_key(for_key)
        if key is None:
            return self.remain
        if not key.active:
            raise AuthenticationError(
                f"API key {key.name!r} is inactive: it cannot spend credits "
                "(activate it in the SearchCans dashboard or use another key)"
            )
        return self._cap(key)

    def _cap(self, key: ApiKey) -> int:
        return min(self.remain, max(0, key.remain)) if key.has_own_quota else self.remain


@attrs.frozen
class OrganicResult:
    """One web result of a SERP (``organic[]``; legacy ``url``/``content`` normalised).

    Example:
        >>> OrganicResult(title="Python", link="https://python.org").snippet
        ''
    """

    title: str = ""
    link: str = ""
    snippet: str = ""
    position: int | None = None
    source: str | None = None
    page: int | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False, eq=False)


# -- the vertical engines' results ----------------------------------------------------------
# Field names are the wire's own (snake_case already). Every field is optional: a missing or
# null field is None (``""`` for title and link, as on organic results); a field the model does
# not know, or cannot read (an unexpected type), is kept in ``extra``; ``raw`` is the item whole.


def _kept() -> Any:
    return attrs.field(default=_EMPTY, repr=False, eq=False)


@attrs.frozen
class ImageResult:
    """One result of ``google_images`` (``images_results[]``).

    Attributes:
        original: The full-size image's URL; ``original_width``/``original_height`` its size.
        thumbnail: A small preview's URL.
        source: The site showing the image.
        is_product: Whether the image shows a product for sale.

    Example:
        >>> ImageResult(title="Ferris", original="https://i.example/f.png").original_width is None
        True
    """

    title: str = ""
    link: str = ""
    position: int | None = None
    source: str | None = None
    thumbnail: str | None = None
    original: str | None = None
    original_width: int | None = None
    original_height: int | None = None
    is_product: bool | None = None
    extra: Mapping[str, Any] = _kept()
    raw: Mapping[str, Any] = _kept()


@attrs.frozen
class ShoppingResult:
    """One result of ``google_shopping`` (``shopping_results[]``).

    Attributes:
        source: The merchant.
        price: The price as shown (text, with its currency); ``extracted_price`` as a number.
        rating: The average rating; ``reviews`` how many reviews it averages.
        multiple_sources: Whether several merchants sell the product.

    Example:
        >>> ShoppingResult(title="Mug", price="$12.50", extracted_price=12.5).extracted_price
        12.5
    """

    title: str = ""
    link: str = ""
    position: int | None = None
    product_id: str | None = None
    product_link: str | None = None
    source: str | None = None
    price: str | None = None
    extracted_price: float | None = None
    rating: float | None = None
    reviews: int | None = None
    thumbnail: str | None = None
    multiple_sources: bool | None = None
    delivery: str | None = None
    extra: Mapping[str, Any] = _kept()
    raw: Mapping[str, Any] = _kept()


@attrs.frozen
class NewsSource:
    """The publisher of a news result (the wire sends an object with ``name``).

    Its other fields (``icon``, ...) are kept in ``extra``.

    Example:
        >>> NewsSource(name="BBC").name
        'BBC'
    """

    name: str = ""
    extra: Mapping[str, Any] = _kept()


@attrs.frozen
class NewsResult:
    """One result of ``google_news`` (``news_results[]``).

    Attributes:
        source: The publisher (a :class:`NewsSource`; an older plain string becomes its name).
        date: When it was published, as shown (``"3 hours ago"``); ``iso_date`` in ISO 8601.

    Example:
        >>> NewsResult(title="Rust 2.0", source=NewsSource(name="LWN")).source.name
        'LWN'
    """

    title: str = ""
    link: str = ""
    position: int | None = None
    source: NewsSource | None = None
    date: str | None = None
    iso_date: str | None = None
    snippet: str | None = None
    thumbnail: str | None = None
    extra: Mapping[str, Any] = _kept()
    raw: Mapping[str, Any] = _kept()


@attrs.frozen
class VideoResult:
    """One result of ``google_videos`` (``video_results[]``).

    Example:
        >>> VideoResult(title="Rust in 100 seconds", duration="1:40").channel is None
        True
    """

    title: str = ""
    link: str = ""
    position: int | None = None
    source: str | None = None
    snippet: str | None = None
    duration: str | None = None
    channel: str | None = None
    thumbnail: str | None = None
    extra: Mapping[str, Any] = _kept()
    raw: Mapping[str, Any] = _kept()


@attrs.frozen
class ShortVideoResult:
    """One result of ``google_short_videos`` (``short_video_results[]``).

    Example:
        >>> ShortVideoResult(title="Rust tip", source="YouTube").duration is None
        True
    """

    title: str = ""
    link: str = ""
    position: int | None = None
    source: str | None = None
    channel: str | None = None
    duration: str | None = None
    extra: Mapping[str, Any] = _kept()
    raw: Mapping[str, Any] = _kept()


#: What ``SearchResult.results`` holds, whatever the engine.
AnyResult = (
    OrganicResult | NewsResult | ShoppingResult | ImageResult | VideoResult | ShortVideoResult
)


def _blocks() -> Any:
    return attrs.field(default=(), repr=False)


@attrs.frozen
class SearchResult:
    """A SERP answer: web results, the optional blocks, and the vertical engines' lists.

    The vertical engines' lists hold typed results (:class:`NewsResult`,
    :class:`ShoppingResult`, :class:`ImageResult`, :class:`VideoResult`,
    :class:`ShortVideoResult`); ``results`` is the engine's own list. Blocks the client
    does not model are kept in ``extra``; the whole answer is in
    ``raw``. ``no_results`` is ``True`` for the API's "no results" code (9999), which
    is an empty result, not an error.

    Example:
        >>> result = SearchResult(query="q", engine="google")
        >>> (len(result), result.no_results)
        (0, False)
    """

    query: str
    engine: str
    organic: tuple[OrganicResult, ...] = ()
    people_also_ask: tuple[Mapping[str, Any], ...] = _blocks()
    related_searches: tuple[Mapping[str, Any], ...] = _blocks()
    knowledge_graph: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    top_stories: tuple[Mapping[str, Any], ...] = _blocks()
    suggested_searches: tuple[Mapping[str, Any], ...] = _blocks()
    news_results: tuple[NewsResult, ...] = _blocks()
    shopping_results: tuple[ShoppingResult, ...] = _blocks()
    images_results: tuple[ImageResult, ...] = _blocks()
    video_results: tuple[VideoResult, ...] = _blocks()
    short_video_results: tuple[ShortVideoResult, ...] = _blocks()
    no_results: bool = False
    credits: int = 0
    request_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False, eq=False)
    raw: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def results(self) -> tuple[AnyResult, ...]:
        """The engine's main results: ``organic`` for web engines, else its vertical list.

        Every kind of result has ``title``, ``link`` and ``position``.

        Example:
            >>> story = NewsResult(title="Rust 2.0")
            >>> news = SearchResult(query="q", engine="google_news", news_results=(story,))
            >>> news.results[0].title, len(news)
            ('Rust 2.0', 1)
        """
        vertical = _VERTICAL_LISTS.get(self.engine)
        return getattr(self, vertical) if vertical is not None else self.organic

    def __len__(self) -> int:
        return len(self.results)


_VERTICAL_LISTS: Final = {
    "google_news": "news_results",
    "google_shopping": "shopping_results",
    "google_images": "images_results",
    "google_videos": "video_results",
    "google_short_videos": "short_video_results",
}


@attrs.frozen
class ReaderPage:
    """A page read by the Reader API (URL to markdown).

    ``html``, ``file_markdown`` and ``image_url`` are set only when the request asked for
    them (``html=True``, ``file=True``, ``image=...``). ``no_results`` is ``True`` (and the
    page empty) when the API answered "no results" (code 9999), which is not an error.

    Example:
        >>> ReaderPage(url="https://example.com", markdown="# Hi").title
        ''
    """

    url: str
    markdown: str = attrs.field(default="", repr=False)
    title: str = ""
    description: str = attrs.field(default="", repr=False)
    html: str | None = attrs.field(default=None, repr=False)
    file_markdown: str | None = attrs.field(default=None, repr=False)
    image_url: str | None = None
    no_results: bool = False
    credits: int = 0
    request_id: str | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)
