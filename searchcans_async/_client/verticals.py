"""Reading the vertical engines' result items (news, shopping, images, videos, short videos).

Kept out of the organic path: these readers run only for an answer that has such a list (the
converter structures a block only when the answer carries it), so a web search pays nothing.

Unlike organic results, the vertical fields are known only from what the vendor's scripts
read (API.md), so a field of an unexpected type is not fatal: it is kept in ``extra`` (and
``raw``) and the model's field stays ``None``. An item that is not an object still fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from .models import (
    ImageResult,
    NewsResult,
    NewsSource,
    ShoppingResult,
    ShortVideoResult,
    VideoResult,
)

__all__ = ["VERTICAL_READERS"]

T = TypeVar("T")
_UNREADABLE: Final = object()
_EMPTY: Final[Mapping[str, Any]] = {}


def _text(value: object) -> object:
    return value if type(value) is str else _UNREADABLE


def _count(value: object) -> object:
    return value if type(value) is int else _UNREADABLE


def _number(value: object) -> object:
    return float(value) if type(value) is int or type(value) is float else _UNREADABLE


def _flag(value: object) -> object:
    return value if type(value) is bool else _UNREADABLE


def _news_source(value: object) -> object:
    if type(value) is str:  # older answers sent the publisher's name as text
        return NewsSource(name=value)
    if isinstance(value, Mapping):
        name = value.get("name")
        if name is None or type(name) is str:
            rest = {k: v for k, v in value.items() if k != "name"}
            return NewsSource(name=name or "", extra=rest or _EMPTY)
    return _UNREADABLE


_COMMON: Final = {"title": _text, "link": _text, "position": _count}


def _reader(
    cls: Callable[..., T], fields: Mapping[str, Callable[[object], object]]
) -> Callable[..., T]:
    readers = {**_COMMON, **fields}

    def read(data: Any, _type: object = None) -> T:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue  # null means absent: the default applies
            reader = readers.get(name)
            got = _UNREADABLE if reader is None else reader(value)
            if got is _UNREADABLE:
                extra[name] = value
            else:
                values[name] = got
        return cls(**values, extra=extra or _EMPTY, raw=data)

    return read


#: One reader per vertical model, registered as the converter's structure hooks.
VERTICAL_READERS: Final[Mapping[type[Any], Callable[..., Any]]] = {
    ImageResult: _reader(
        ImageResult,
        {
            "source": _text,
            "thumbnail": _text,
            "original": _text,
            "original_width": _count,
            "original_height": _count,
            "is_product": _flag,
        },
    ),
    ShoppingResult: _reader(
        ShoppingResult,
        {
            "product_id": _text,
            "product_link": _text,
            "source": _text,
            "price": _text,
            "extracted_price": _number,
            "rating": _number,
            "reviews": _count,
            "thumbnail": _text,
            "multiple_sources": _flag,
            "delivery": _text,
        },
    ),
    NewsResult: _reader(
        NewsResult,
        {
            "source": _news_source,
            "date": _text,
            "iso_date": _text,
            "snippet": _text,
            "thumbnail": _text,
        },
    ),
    VideoResult: _reader(
        VideoResult,
        {
            "source": _text,
            "snippet": _text,
            "duration": _text,
            "channel": _text,
            "thumbnail": _text,
        },
    ),
    ShortVideoResult: _reader(
        ShortVideoResult,
        {"source": _text, "channel": _text, "duration": _text},
    ),
}
