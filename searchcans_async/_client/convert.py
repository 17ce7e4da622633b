"""The one cattrs converter: API camelCase <-> model snake_case, strict where it matters.

Why one module: the converter and its hand-written hot paths (organic results, a web
search's answer) share one set of wire names and type rules, and must not drift apart.

Everything that turns an API ``data`` payload into a model goes through here, so there
is a single place that knows the wire names, the legacy shapes and the type rules:

* integers must be JSON integers (``"12"``, ``12.0``, ``true`` and ``null`` are refused);
* strings must be JSON strings (``null`` becomes the field's default);
* unknown fields and blocks are ignored by the models and kept in ``raw`` / ``extra``.

A payload that breaks a rule raises :class:`ResponseFormatError` naming the wire field.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import ResponseFormatError
from .models import (
    Account,
    ApiKey,
    FieldValueError,
    NewsSource,
    OrganicResult,
    ReaderPage,
    SearchResult,
)
from .verticals import VERTICAL_READERS

__all__ = ["parse_account", "parse_page", "parse_search", "to_json"]

T = TypeVar("T")

# Fields that come from the request, not the wire. The parse functions pass them under
# an "@"-prefixed key, so each model is built in one pass by the generated hook.
_FROM_REQUEST: Final[Mapping[type, frozenset[str]]] = {
    Account: frozenset(),
    ApiKey: frozenset(),
    OrganicResult: frozenset({"raw"}),
    SearchResult: frozenset(
        {"query", "engine", "no_results", "credits", "request_id", "extra", "raw"}
    ),
    ReaderPage: frozenset({"url", "no_results", "credits", "request_id", "raw"}),
}


# The vertical engines' result lists are snake_case on the wire already.
_SNAKE_CASE_ON_THE_WIRE: Final = frozenset(
    {"news_results", "shopping_results", "images_results", "video_results", "short_video_results"}
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire_name(attribute: attrs.Attribute[Any], cls: type[Any] | None = None) -> str:
    if cls is not None and attribute.name in _FROM_REQUEST.get(cls, ()):
        return f"@{attribute.name}"
    explicit = attribute.metadata.get("json")
    if explicit is not None:
        return str(explicit)
    return attribute.name if attribute.name in _SNAKE_CASE_ON_THE_WIRE else _camel(attribute.name)


def _shown(value: object) -> str:
    """How an error may show a wrong value: numbers and booleans only.

    Strings could be personal data (an email in the wrong field), so only their type shows.
    """
    if isinstance(value, bool | int | float):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def _strict_int(value: object, _type: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {_shown(value)}")
    return value


def _strict_bool(value: object, _type: object) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected true or false, got {_shown(value)}")
    return value


def _strict_str(value: object, _type: object) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {_shown(value)}")
    return value


def _optional_int(value: object, _type: object) -> int | None:
    return None if value is None else _strict_int(value, _type)


def _optional_str(value: object, _type: object) -> str | None:
    return None if value is None else _strict_str(value, _type)


def _json_object(value: object, _type: object) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _build_converter(*, detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=detailed)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _strict_str)
    # Direct hooks for the optional scalars (cattrs' generic Optional dispatch costs more
    # than the rest of a SERP result's parsing).
    converter.register_structure_hook_func(lambda t: t == int | None, _optional_int)
    converter.register_structure_hook_func(lambda t: t == str | None, _optional_str)
    converter.register_structure_hook_func(lambda t: t == Mapping[str, Any], _json_object)

    def list_only(annotation: Any) -> Callable[[Any, Any], Any]:
        # cattrs would happily build a tuple from a string's characters.
        build = homogenous_tuple_structure_factory(annotation, converter)

        def structure(value: Any, target: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return build(value, target)

        return structure

    converter.register_structure_hook_factory(is_sequence, list_only)

    def structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        overrides: dict[str, Any] = {
            a.name: override(rename=_wire_name(a, cls)) for a in attrs.fields(cls)
        }
        generated = make_dict_structure_fn(cls, converter, **overrides)
        keeps_raw = "raw" in _FROM_REQUEST.get(cls, ())

        def structure(data: Any, target: Any) -> Any:
            if type(data) is not dict and not isinstance(data, Mapping):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            # JSON null means "absent": let the attribute's default apply.
            present: Mapping[str, Any]
            if None in data.values():
                present = {k: v for k, v in data.items() if v is not None}
            else:
                present = data
            if keeps_raw and "@raw" not in present:
                present = {**present, "@raw": data}
            return generated(present, target)

        return structure

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        overrides: dict[str, Any] = {
            a.name: override(omit=True)
            if a.name in {"raw", "extra"}
            else override(rename=_wire_name(a))
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, converter, **overrides)

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return converter


def _organic(data: Any, _type: Any) -> OrganicResult:
    """Build one organic result: the hot path of every SERP answer (ten per page).

    The same rules as the generated hooks (which the explainer keeps using, and a test
    holds the two to the same results), without a hook call per field.
    """
    if type(data) is not dict:
        raise TypeError("an organic result must be an object")
    get = data.get
    title, link, snippet = get("title"), get("link"), get("snippet")
    position, source, page = get("position"), get("source"), get("page")
    none, text, count = None, str, int
    if not (
        (title is none or type(title) is text)
        and (link is none or type(link) is text)
        and (snippet is none or type(snippet) is text)
        and (source is none or type(source) is text)
        and (position is none or type(position) is count)
        and (page is none or type(page) is count)
    ):
        raise TypeError("an organic result has a field of the wrong type")
    return OrganicResult(title or "", link or "", snippet or "", position, source, page, data)


def _wire_item(item: Any) -> dict[str, Any]:
    """A vertical result back as JSON: its wire (snake_case) names, its ``extra`` fields too."""
    wire = dict(item.extra)
    for attribute in attrs.fields(type(item)):
        value = getattr(item, attribute.name)
        if attribute.name in {"extra", "raw"} or value is None:
            continue
        if isinstance(value, NewsSource):
            value = {**value.extra, "name": value.name}
        wire[attribute.name] = value
    return wire


# Two builds of the same rules: the fast one reads well-formed answers; when it fails, the
# detailed one reads the same data again to name the field at fault (cattrs' detailed
# validation costs about half the parsing time of a SERP answer).
_converter: Final = _build_converter(detailed=False)
_converter.register_structure_hook(OrganicResult, _organic)
_explainer: Final = _build_converter(detailed=True)
for _converter_of_both in (_converter, _explainer):
    # Vertical results: hand readers (see _verticals), called only when the list is present.
    for _model, _read in VERTICAL_READERS.items():
        _converter_of_both.register_structure_hook(_model, _read)
        _converter_of_both.register_unstructure_hook(_model, _wire_item)


def _failure(error: BaseException, cls: type[Any], path: str = "") -> tuple[str, BaseException]:
    """Walk cattrs' nested validation errors down to the first field that failed."""
    if isinstance(error, FieldValueError):
        field = next((a for a in attrs.fields(cls) if a.name == error.field), None)
        wire = _wire_name(field, cls) if field is not None else error.field
        return (f"{path}.{wire}" if path else wire), error
    if isinstance(error, ClassValidationError | IterableValidationError):
        for sub in error.exceptions:
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    field = next((a for a in attrs.fields(cls) if a.name == note.name), None)
                    wire = _wire_name(field, cls) if field is not None else note.name
                    inner = _inner_class(note.type)
                    return _failure(sub, inner or cls, f"{path}.{wire}" if path else wire)
                if isinstance(note, IterableValidationNote):
                    return _failure(sub, _inner_class(note.type) or cls, f"{path}[{note.index}]")
            return _failure(sub, cls, path)
    return path, error


def _inner_class(annotation: Any) -> type[Any] | None:
    if isinstance(annotation, type) and attrs.has(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_class(arg)
        if found is not None:
            return found
    return None


def _structure(data: Any, cls: type[T], what: str) -> T:
    with contextlib.suppress(Exception):  # anything wrong: read it again, with details
        return _converter.structure(data, cls)
    try:
        return _explainer.structure(data, cls)
    except (ClassValidationError, IterableValidationError, TypeError, ValueError) as error:
        path, cause = _failure(error, cls)
        problem = "is missing" if isinstance(cause, KeyError) else str(cause)
        where = f"field {path!r}" if path else "its data"
        raise ResponseFormatError(
            f"malformed {what}: {where} {problem}", field=path or None
        ) from None


def parse_account(data: Any) -> Account:
    """Build an :class:`Account` from ``/api/user/key``'s ``data``.

    Raises:
        ResponseFormatError: ``data`` is not an object, or a field has the wrong type
            (e.g. ``remain`` missing, negative or not an integer); the error names it.
    """
    return _structure(data, Account, "account")


def _normalise_organic(item: Any, index: int) -> Any:
    if type(item) is not dict and not isinstance(item, Mapping):
        return item  # the converter reports it with its index
    if "link" in item and "snippet" in item:
        return item
    normalised = dict(item)
    if "link" not in normalised and "url" in normalised:
        normalised["link"] = normalised["url"]
    if "snippet" not in normalised and "content" in normalised:
        normalised["snippet"] = normalised["content"]
    normalised.setdefault("position", index + 1)
    return normalised


# Only the blocks the wire fills: a block named like a request-side field ("query",
# "credits", ...) is unknown to the model and belongs in ``extra``.
_KNOWN_BLOCKS: Final = frozenset(
    _wire_name(a) for a in attrs.fields(SearchResult) if a.name not in _FROM_REQUEST[SearchResult]
)


# The blocks a web search answers with, each a list of JSON objects kept as they are.
_OBJECT_LISTS: Final = {
    _wire_name(a): a.name
    for a in attrs.fields(SearchResult)
    if a.name in {"people_also_ask", "related_searches", "top_stories", "suggested_searches"}
}


def _organic_results(items: list[Any]) -> tuple[OrganicResult, ...] | None:
    """The organic list in one loop, by :func:`_organic`'s rules; ``None``: one breaks them."""
    built = []
    for index, item in enumerate(items):
        if type(item) is dict and ("link" not in item or "snippet" not in item):
            item = _normalise_organic(item, index)  # noqa: PLW2901  # the item as the rules read it
        try:
            built.append(_organic(item, OrganicResult))
        except TypeError:
            return None
    return tuple(built)


def _web_result(
    data: Any, *, query: str, engine: str, credits: int, request_id: str | None
) -> SearchResult | None:
    """A web search's answer (organic results and object blocks), built without cattrs.

    The hot path of every search: 13.5 us instead of 17.8 (timeit) for the emulator's
    10-result page. It reads only what it can read by the converter's rules; anything else (a
    vertical list, a legacy list, a value of the wrong type) returns ``None``, and the
    converter reads the answer (and names the field at fault). A test holds the two to the
    same results.
    """
    if type(data) is not dict:
        return None
    organic: tuple[OrganicResult, ...] = ()
    blocks: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _KNOWN_BLOCKS:
            extra[key] = value
        elif value is None:  # JSON null means "absent"
            continue
        elif key == "organic":
            built = _organic_results(value) if type(value) is list else None
            if built is None:
                return None
            organic = built
        elif key in _OBJECT_LISTS:
            if type(value) is not list or any(type(x) is not dict for x in value):
                return None
            blocks[_OBJECT_LISTS[key]] = tuple(value)
        elif key == "knowledgeGraph" and type(value) is dict:
            blocks["knowledge_graph"] = value
        else:  # a vertical engine's list, or a block of the wrong type
            return None
    return SearchResult(
        query,
        engine,
        organic,
        credits=credits,
        request_id=request_id,
        extra=extra,
        raw=data,
        **blocks,
    )


def parse_search(
    data: Any, *, query: str, engine: str, credits: int, request_id: str | None
) -> SearchResult:
    """Build a :class:`SearchResult` from ``/api/v1/search``'s ``data``.

    Accepts the v1 object and the legacy bare list of ``{title, url, content}``.

    Raises:
        ResponseFormatError: ``data`` has neither shape, or a known block has the wrong type.
    """
    fast = _web_result(data, query=query, engine=engine, credits=credits, request_id=request_id)
    if fast is not None:
        return fast
    return _converted_search(
        data, query=query, engine=engine, credits=credits, request_id=request_id
    )


def _converted_search(
    data: Any, *, query: str, engine: str, credits: int, request_id: str | None
) -> SearchResult:
    """:func:`parse_search` by the converter: every shape, and errors that name the field."""
    raw = data
    if isinstance(data, list):
        data = {"organic": data}
    if not isinstance(data, Mapping):
        raise ResponseFormatError(
            f"malformed search result: expected an object or a list, got {type(data).__name__}",
            charged=True,
        )
    organic = data.get("organic")
    if isinstance(organic, list):
        data = {**data, "organic": [_normalise_organic(x, i) for i, x in enumerate(organic)]}
    wire = {
        **data,
        "@query": query,
        "@engine": engine,
        "@no_results": False,
        "@credits": credits,
        "@request_id": request_id,
        "@extra": {k: v for k, v in data.items() if k not in _KNOWN_BLOCKS},
        "@raw": raw,
    }
    try:
        return _structure(wire, SearchResult, "search result")
    except ResponseFormatError as error:
        error.charged = True  # code 0 on HTTP 200: the call was billed
        raise


def parse_page(data: Any, *, url: str, credits: int, request_id: str | None) -> ReaderPage:
    """Build a :class:`ReaderPage` from ``/api/v1/url``'s ``data``.

    Some deployments answer ``data`` as a JSON string, or as the markdown itself; both
    are accepted.

    Raises:
        ResponseFormatError: ``data`` is neither an object nor a string, or a field has
            the wrong type.
    """
    raw = data
    if isinstance(data, str):
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError):  # plain markdown, or text nested too deep
            decoded = None
        data = decoded if isinstance(decoded, Mapping) else {"markdown": data}
    if not isinstance(data, Mapping):
        raise ResponseFormatError(
            f"malformed Reader page: expected an object, got {type(data).__name__}", charged=True
        )
    wire = {
        **data,
        "@url": url,
        "@no_results": False,
        "@credits": credits,
        "@request_id": request_id,
        "@raw": raw,
    }
    try:
        return _structure(wire, ReaderPage, "Reader page")
    except ResponseFormatError as error:
        error.charged = True  # code 0 on HTTP 200: the call was billed
        raise


def to_json(value: Any) -> Any:
    """Turn a model into JSON-ready data with the API's camelCase names (no ``raw``)."""
    return _converter.unstructure(value)
