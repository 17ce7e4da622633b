"""The vertical engines' results as typed models, read from the emulator and from raw answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from emulator_support import VERTICAL_FIELDS

from searchcans_async import (
    ImageResult,
    NewsResult,
    NewsSource,
    OrganicResult,
    ResponseFormatError,
    SearchCans,
    SearchResult,
    ShoppingResult,
    ShortVideoResult,
    VideoResult,
)
from searchcans_async._client.convert import parse_search
from searchcans_async.testing import Emulator, Fault, Faults, WireOptions

if TYPE_CHECKING:
    from searchcans_async._clock import VirtualClock

#: API.md "Vertical engines' result fields", per engine: the list, its model, its own fields.
MODELS: dict[str, type[Any]] = {
    "google_images": ImageResult,
    "google_shopping": ShoppingResult,
    "google_news": NewsResult,
    "google_videos": VideoResult,
    "google_short_videos": ShortVideoResult,
}
VERTICALS: dict[str, tuple[str, type[Any], tuple[str, ...]]] = {
    engine: (block, MODELS[engine], fields) for engine, (block, fields) in VERTICAL_FIELDS.items()
}
COMMON = ("position", "title", "link")


def client_for(emu: Emulator, clock: VirtualClock) -> SearchCans:
    """A client of emu on the virtual clock."""
    return SearchCans(emu.api_key, base_url=emu.base_url, clock=clock)


def search(data: Any, engine: str) -> SearchResult:
    """parse_search with the request-side fields filled in."""
    return parse_search(data, query="q", engine=engine, credits=1, request_id=None)


@pytest.mark.parametrize("engine", sorted(VERTICALS))
async def test_every_api_md_field_of_every_engine_is_read_into_its_model(
    clock: VirtualClock, engine: str
) -> None:
    """Against the emulator, each vertical model reads every field API.md lists, none left over."""
    _block, model, fields = VERTICALS[engine]
    async with Emulator(latency=0, wire=WireOptions(request_ids=True)) as emu:
        async with client_for(emu, clock) as client:
            result = await client.search("rust", engine, pages=None)
        wire = emu.log[0]
    assert wire.code == 0
    assert len(result.results) == 10
    for item in result.results:
        assert type(item) is model
        for field in (*COMMON, *fields):
            sent = item.raw[field]
            read = getattr(item, field)
            if isinstance(read, NewsSource):
                assert (read.name, dict(read.extra)) == (sent["name"], {"icon": sent["icon"]})
            else:
                assert read == sent, field
        assert set(item.extra) <= set(item.raw) - {*COMMON, *fields}


def test_unknown_fields_go_to_extra_and_missing_ones_are_none() -> None:
    """An item keeps fields its model does not know in extra; absent or null fields are None."""
    item = {"title": "t", "link": "https://l", "shiny": [1], "thumbnail": None}
    result = search({"images_results": [item]}, "google_images")
    [image] = result.images_results
    assert (image.title, image.thumbnail, image.original_width, image.position) == (
        "t",
        None,
        None,
        None,
    )
    assert image.extra == {"shiny": [1]}
    assert image.raw is item


def test_a_field_of_an_unexpected_type_is_kept_in_extra_not_fatal() -> None:
    """A vertical field the model cannot read (wrong type) stays in extra; the result parses."""
    item = {"title": "t", "extracted_price": "12.50", "reviews": 4.5, "rating": 4}
    [product] = search({"shopping_results": [item]}, "google_shopping").shopping_results
    assert (product.extracted_price, product.reviews, product.rating) == (None, None, 4.0)
    assert product.extra == {"extracted_price": "12.50", "reviews": 4.5}


def test_a_news_source_given_as_text_is_read_as_its_name() -> None:
    """news `source` is an object with `name`; an older plain string still gives the name."""
    answer = {"news_results": [{"source": {"name": "BBC", "icon": "i"}}, {"source": "Reuters"}]}
    first, second = search(answer, "google_news").news_results
    assert first.source == NewsSource(name="BBC")
    assert first.source is not None
    assert first.source.extra == {"icon": "i"}
    assert second.source == NewsSource(name="Reuters")


def test_a_vertical_item_that_is_not_an_object_names_its_place() -> None:
    """A list item that is not an object is a charged ResponseFormatError naming the item."""
    with pytest.raises(ResponseFormatError, match=r"video_results\[1\]") as caught:
        search({"video_results": [{"title": "ok"}, "oops"]}, "google_videos")
    assert caught.value.charged is True


def test_results_is_typed_for_every_engine() -> None:
    """result.results holds the engine's own model: organic for web engines, else its vertical."""
    assert type(search({"organic": [{"title": "o"}]}, "bing").results[0]) is OrganicResult
    for engine, (block, model, _fields) in VERTICALS.items():
        assert type(search({block: [{"title": "v"}]}, engine).results[0]) is model


async def test_the_v0_path_answer_is_read_as_organic_results(clock: VirtualClock) -> None:
    """The emulator's v0 path answers a bare list; the client normalises it to organic results."""
    async with Emulator(latency=0) as emu:
        base = emu.base_url
        async with SearchCans(emu.api_key, base_url=base, clock=clock) as client:
            # The v0 path is the same request body on another path.
            envelope = await client._transport.post(  # private: no public v0 call exists
                "/api/search", {"s": "rust", "t": "google"}, timeout=5
            )
    assert isinstance(envelope.data, list)
    result = search(envelope.data, "google")
    assert len(result.organic) == 10
    assert all(hit.link.startswith("https://") and hit.snippet for hit in result.organic)
    assert [hit.position for hit in result.organic] == list(range(1, 11))


@pytest.mark.parametrize("shape", ["list", "object"])
@pytest.mark.parametrize("how", ["query", "fault"])
async def test_no_results_as_empty_list_or_object_is_an_empty_result(
    clock: VirtualClock, shape: str, how: str
) -> None:
    """9999 with `data: []` or `data: {}` (configured or injected) reads as empty, uncharged."""
    faults = Faults(script={1: Fault.no_results()}) if how == "fault" else None
    wire = WireOptions(no_results_data=shape)
    async with Emulator(latency=0, no_results={"zzzz"}, faults=faults, wire=wire) as emu:
        async with client_for(emu, clock) as client:
            result = await client.search("zzzz" if how == "query" else "rust", "google_news")
        assert emu.log[0].code == 9999
        assert emu.stats().charged == 0
    assert (result.no_results, len(result), result.results, result.credits) == (True, 0, (), 0)
    assert result.raw == ({} if shape == "object" else [])
