"""Models and the converter: the account object, SERP answers and Reader pages."""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from searchcans_async import (
    Account,
    ApiKey,
    AuthenticationError,
    OrganicResult,
    ReaderPage,
    ResponseFormatError,
    SearchResult,
)
from searchcans_async._client.convert import parse_account, parse_page, parse_search, to_json

# API.md's sample answer, personal values replaced as the vendor documents it.
SAMPLE_ACCOUNT: dict[str, Any] = {
    "nickName": "demo",
    "email": "demo@example.com",
    "origin": 1,
    "faceUrl": "https://example.invalid/face.png",
    "id": "u_123",
    "type": 3,
    "lang": 2,
    "expire": 0,
    "token": "",
    "refreshToken": "",
    "keys": [
        {
            "uid": "u_123",
            "name": "demo_key",
            "email": "demo@example.com",
            "nickName": "demo",
            "faceUrl": "https://example.invalid/face.png",
            "key": "sk_\u2022\u2022\u2022\u2022\u2022\u2022",
            "total": -1,
            "remain": 0,
            "type": 0,
            "id": "uk_1",
            "active": True,
        }
    ],
    "key": "sk_\u2022\u2022\u2022\u2022\u2022\u2022",
    "remain": 1098,
    "current": 2,
    "month": 2,
    "total": 2,
    "permanentRemain": 0,
    "permanentCurrent": 0,
    "permanentMonth": 0,
    "permanentTotal": 0,
    "seq": 3180,
    "concurrent": 1,
    "recommend": "...",
}


def account_with(**changes: Any) -> dict[str, Any]:
    """The sample account with some top-level fields replaced."""
    data = copy.deepcopy(SAMPLE_ACCOUNT)
    data.update(changes)
    return data


def key_data(name: str, **changes: Any) -> dict[str, Any]:
    """One wire key object, shaped like the sample's."""
    data = copy.deepcopy(SAMPLE_ACCOUNT["keys"][0])
    data.update(name=name, id=f"uk_{name}", key=f"sk_\u2022\u2022\u2022{name}", **changes)
    return data


# -- the account object ------------------------------------------------------------------


def test_the_documented_sample_parses() -> None:
    """API.md's sample: remain 1098, one lane, one key drawing on the pool."""
    account = parse_account(SAMPLE_ACCOUNT)
    assert (account.remain, account.concurrent) == (1098, 1)
    assert (account.total, account.current, account.month) == (2, 2, 2)
    assert account.permanent_remain == 0
    assert (account.nickname, account.email) == ("demo", "demo@example.com")
    [key] = account.keys
    assert key == ApiKey(name="demo_key", id="uk_1", key="sk_" + "\u2022" * 6, total=-1, remain=0)
    assert not key.has_own_quota
    assert account.spendable() == 1098  # the key's "remain: 0" means nothing with total -1


def test_several_keys_with_and_without_own_quota() -> None:
    """Every key is parsed; total != -1 is an own quota, an inactive key stays listed."""
    data = account_with(
        keys=[
            key_data("shared"),
            key_data("capped", total=100, remain=40),
            key_data("off", active=False, total=50, remain=50),
        ],
        key="sk_\u2022\u2022\u2022capped",
    )
    account = parse_account(data)
    assert [(k.name, k.has_own_quota, k.active) for k in account.keys] == [
        ("shared", False, True),
        ("capped", True, True),
        ("off", True, False),
    ]
    assert account.spendable() == 40  # the calling key, found by its masked key


def test_permanent_credits_are_parsed() -> None:
    """The permanentRemain/Current/Month/Total counters map to permanent_* fields."""
    account = parse_account(
        account_with(permanentRemain=30, permanentCurrent=5, permanentMonth=4, permanentTotal=35)
    )
    assert (
        account.permanent_remain,
        account.permanent_current,
        account.permanent_month,
        account.permanent_total,
    ) == (30, 5, 4, 35)


def test_unknown_fields_are_ignored() -> None:
    """Extra fields at the top level and in keys never break parsing."""
    data = account_with(brandNew={"x": 1}, vip=True)
    data["keys"][0]["futureField"] = [1, 2]
    assert parse_account(data) == parse_account(SAMPLE_ACCOUNT)


def test_null_optional_fields_take_their_defaults() -> None:
    """nickName null (and other optional nulls) become the field's default."""
    account = parse_account(account_with(nickName=None, email=None, total=None, keys=None))
    assert (account.nickname, account.email, account.total, account.keys) == (None, None, 0, ())


def test_zero_lanes_parses() -> None:
    """concurrent == 0 is a valid answer: the lane pool, not the parser, refuses it."""
    assert parse_account(account_with(concurrent=0)).concurrent == 0


def test_zero_remain_parses() -> None:
    """remain == 0 (exhausted) is a valid answer and spends nothing."""
    assert parse_account(account_with(remain=0)).spendable() == 0


BAD_VALUES = [
    pytest.param("missing", "is missing", id="missing"),
    pytest.param("12", "expected an integer, got str", id="string"),
    pytest.param(12.0, "expected an integer, got float", id="float"),
    pytest.param(None, "is missing", id="null"),
    pytest.param(True, "expected an integer, got bool", id="bool"),
    pytest.param(-1, "must be >= 0", id="negative"),
    pytest.param([1], "expected an integer, got list", id="list"),
]


@pytest.mark.parametrize("field", ["remain", "concurrent"])
@pytest.mark.parametrize(("value", "problem"), BAD_VALUES)
def test_a_bad_remain_or_concurrent_names_the_field(field: str, value: Any, problem: str) -> None:
    """Missing or ill-typed remain/concurrent raise ResponseFormatError naming the field."""
    data = account_with()
    if value == "missing":
        del data[field]
    else:
        data[field] = value
    with pytest.raises(ResponseFormatError) as caught:
        parse_account(data)
    assert caught.value.field == field
    assert f"field {field!r}" in caught.value.message
    assert problem in caught.value.message
    assert caught.value.charged is False  # reading the account is free


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("total", "x", "keys[0].total"),
        ("remain", 1.5, "keys[0].remain"),
        ("active", "yes", "keys[0].active"),
        ("name", 3, "keys[0].name"),
        ("key", ["k"], "keys[0].key"),
    ],
)
def test_a_bad_key_field_names_its_path(field: str, value: Any, path: str) -> None:
    """A bad field inside keys[] is named with the key's index: keys[0].total."""
    data = account_with()
    data["keys"][0][field] = value
    with pytest.raises(ResponseFormatError) as caught:
        parse_account(data)
    assert caught.value.field == path
    assert repr(path) in caught.value.message


def test_a_bad_second_key_names_its_index() -> None:
    """The index in the path is the offending key's: keys[1].total."""
    data = account_with(keys=[key_data("a"), key_data("b", total="lots")])
    with pytest.raises(ResponseFormatError) as caught:
        parse_account(data)
    assert caught.value.field == "keys[1].total"


@pytest.mark.parametrize(
    ("keys", "path"), [("abc", "keys"), ([1], "keys[0]"), ({"name": "k"}, "keys")]
)
def test_keys_must_be_a_list_of_objects(keys: Any, path: str) -> None:
    """keys as a string, a dict or a list of non-objects is refused, naming the path."""
    with pytest.raises(ResponseFormatError) as caught:
        parse_account(account_with(keys=keys))
    assert caught.value.field == path


@pytest.mark.parametrize("data", [None, [], "account", 3])
def test_account_data_must_be_an_object(data: Any) -> None:
    """An account answer whose data is not an object is a ResponseFormatError."""
    with pytest.raises(ResponseFormatError, match="expected an object") as caught:
        parse_account(data)
    assert caught.value.field is None


def test_personal_fields_stay_out_of_repr() -> None:
    """repr(account) shows no nickname, email or masked key; repr(key) no masked key."""
    account = parse_account(account_with(nickName="Ada Lovelace", email="ada@example.com"))
    text = repr(account)
    assert "Ada Lovelace" not in text
    assert "ada@example.com" not in text
    assert "\u2022" not in text
    assert "remain=1098" in text
    assert "\u2022" not in repr(account.keys[0])


def test_to_json_round_trips_with_the_wire_names() -> None:
    """to_json emits the API's camelCase names, and parsing it gives the same account."""
    account = parse_account(account_with(permanentRemain=3, nickName="demo"))
    data = to_json(account)
    assert {"permanentRemain", "nickName", "keys", "remain", "concurrent"} <= set(data)
    assert "permanent_remain" not in data
    assert "nickname" not in data
    assert parse_account(data) == account


def test_the_account_is_frozen() -> None:
    """Account and ApiKey are immutable values."""
    account = parse_account(SAMPLE_ACCOUNT)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        account.remain = 5  # type: ignore[misc]  # the point of the test
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        account.keys[0].active = False  # type: ignore[misc]  # the point of the test


# -- spendable -------------------------------------------------------------------------------

SHARED = ApiKey(name="shared", id="uk_s", key="sk_\u2022s", total=-1, remain=0)
CAPPED = ApiKey(name="capped", id="uk_c", key="sk_\u2022c", total=100, remain=40)
HUGE = ApiKey(name="huge", id="uk_h", key="sk_\u2022h", total=10_000, remain=5_000)
OFF = ApiKey(name="off", id="uk_o", key="sk_\u2022o", active=False)
TEAM = Account(remain=1098, concurrent=2, keys=(SHARED, CAPPED, HUGE, OFF), key="sk_\u2022c")


@pytest.mark.parametrize("for_key", ["uk_c", "capped", "sk_\u2022c", CAPPED])
def test_spendable_finds_a_key_by_id_name_masked_key_or_object(for_key: str | ApiKey) -> None:
    """for_key accepts the key's id, its name, its masked key or the ApiKey itself."""
    assert TEAM.spendable(for_key=for_key) == 40


def test_spendable_defaults_to_the_calling_key() -> None:
    """Without for_key, the key that read the account (its masked `key`) is the spender."""
    assert TEAM.spendable() == 40
    assert TEAM.calling_key() == CAPPED


def test_a_shared_key_spends_the_account_remain() -> None:
    """A key without own quota (total -1) may spend everything the account has."""
    assert TEAM.spendable("shared") == 1098


def test_an_own_quota_never_exceeds_the_account() -> None:
    """A key's own remain is capped by the account's remain."""
    assert TEAM.spendable("huge") == 1098


def test_a_negative_own_remain_spends_nothing() -> None:
    """An overdrawn own quota counts as zero, never as a negative budget."""
    account = Account(remain=10, concurrent=1, keys=(ApiKey(name="k", total=5, remain=-3),))
    assert account.spendable("k") == 0


def test_an_inactive_key_cannot_spend() -> None:
    """spendable() for an inactive key raises AuthenticationError saying what to do."""
    with pytest.raises(AuthenticationError, match="inactive") as caught:
        TEAM.spendable("off")
    assert "'off'" in caught.value.message


def test_an_unknown_key_is_a_value_error() -> None:
    """Naming a key the account does not have is a ValueError listing the known keys."""
    with pytest.raises(ValueError, match="no API key 'nope'") as caught:
        TEAM.spendable("nope")
    assert "'shared'" in str(caught.value)


def test_without_a_matching_calling_key_the_account_remain_applies() -> None:
    """When the account lists several keys and none matches `key`, remain is the limit."""
    account = Account(remain=77, concurrent=1, keys=(SHARED, CAPPED), key="sk_\u2022zz")
    assert account.calling_key() is None
    assert account.spendable() == 77


def test_a_single_listed_key_is_the_calling_key() -> None:
    """With one key listed, it is the caller even if the masks differ."""
    account = Account(remain=77, concurrent=1, keys=(CAPPED,), key="")
    assert account.spendable() == 40


def test_look_alike_masks_assume_the_most_restrictive_key() -> None:
    """Two active keys with the same mask: the smaller allowance is assumed."""
    first = ApiKey(name="a", key="sk_\u2022x", total=100, remain=90)
    second = ApiKey(name="b", key="sk_\u2022x", total=100, remain=10)
    account = Account(remain=500, concurrent=1, keys=(first, second), key="sk_\u2022x")
    assert account.spendable() == 10


def test_has_own_quota_is_total_not_minus_one() -> None:
    """ApiKey.has_own_quota is exactly total != -1 (0 is an own, empty quota)."""
    assert not ApiKey(total=-1).has_own_quota
    assert ApiKey(total=0).has_own_quota
    assert ApiKey(total=5).has_own_quota


# -- SERP answers ----------------------------------------------------------------------------

V1_ANSWER: dict[str, Any] = {
    "organic": [
        {
            "position": 1,
            "title": "Asyncio",
            "link": "https://docs.python.org/3/library/asyncio.html",
            "snippet": "asyncio is a library",
            "source": "docs.python.org",
            "sitelinks": [{"title": "Tasks"}],
        },
        {"position": 2, "title": "PEP 3156", "link": "https://peps.python.org", "snippet": "x"},
    ],
    "peopleAlsoAsk": [{"question": "What is asyncio?"}],
    "relatedSearches": [{"query": "asyncio tutorial"}],
    "knowledgeGraph": {"title": "asyncio", "type": "Library"},
    "topStories": [{"title": "Python 3.14 released"}],
    "suggestedSearches": [{"query": "trio"}],
    "aiSummary": {"text": "asyncio runs coroutines"},
}


def search(data: Any, **options: Any) -> SearchResult:
    """parse_search with the request-side fields filled in."""
    defaults: dict[str, Any] = {
        "query": "asyncio",
        "engine": "google",
        "credits": 1,
        "request_id": "r1",
    }
    return parse_search(data, **{**defaults, **options})


def test_a_v1_answer_parses_organic_results_and_blocks() -> None:
    """The v1 object: organic results with all their fields, and every optional block."""
    result = search(V1_ANSWER)
    first = result.organic[0]
    assert first == OrganicResult(
        title="Asyncio",
        link="https://docs.python.org/3/library/asyncio.html",
        snippet="asyncio is a library",
        position=1,
        source="docs.python.org",
    )
    assert len(result) == 2
    assert result.people_also_ask == ({"question": "What is asyncio?"},)
    assert result.related_searches == ({"query": "asyncio tutorial"},)
    assert result.knowledge_graph == {"title": "asyncio", "type": "Library"}
    assert result.top_stories == ({"title": "Python 3.14 released"},)
    assert result.suggested_searches == ({"query": "trio"},)
    assert (result.query, result.engine, result.credits, result.request_id) == (
        "asyncio",
        "google",
        1,
        "r1",
    )
    assert not result.no_results


def test_unknown_blocks_are_kept_in_extra_and_the_whole_answer_in_raw() -> None:
    """Blocks the model does not know end up in extra; raw is the answer as received."""
    result = search(V1_ANSWER)
    assert result.extra == {"aiSummary": {"text": "asyncio runs coroutines"}}
    assert result.raw is V1_ANSWER


@pytest.mark.parametrize("name", ["query", "engine", "credits", "raw", "extra", "requestId"])
def test_unknown_blocks_named_like_request_fields_are_kept(name: str) -> None:
    """A wire block that shares a name with a request-side field still lands in extra."""
    result = search({"organic": [], name: {"surprise": True}})
    assert result.extra == {name: {"surprise": True}}
    assert (result.query, result.credits) == ("asyncio", 1)


def test_unknown_result_fields_are_kept_raw() -> None:
    """An organic result's unmodelled fields stay available in its raw mapping."""
    first = search(V1_ANSWER).organic[0]
    assert first.raw["sitelinks"] == [{"title": "Tasks"}]


@pytest.mark.parametrize(
    ("engine", "block"),
    [
        ("google_news", "news_results"),
        ("google_shopping", "shopping_results"),
        ("google_images", "images_results"),
        ("google_videos", "video_results"),
        ("google_short_videos", "short_video_results"),
    ],
)
def test_vertical_engines_lists_are_parsed(engine: str, block: str) -> None:
    """The vertical engines' snake_case result lists map to their fields, items kept whole."""
    items = [{"title": "one", "price": "$1"}, {"title": "two", "imageUrl": "https://i"}]
    result = search({block: items}, engine=engine)
    assert [(item.title, item.raw) for item in getattr(result, block)] == [
        ("one", items[0]),
        ("two", items[1]),
    ]
    assert result.organic == ()
    assert result.extra == {}


def test_the_legacy_bare_list_is_normalised() -> None:
    """A v0 list of {title, url, content} becomes organic results with link, snippet, position."""
    legacy = [
        {"title": "A", "url": "https://a.example", "content": "first"},
        {"title": "B", "url": "https://b.example", "content": "second", "date": "2025"},
    ]
    result = search(legacy)
    assert [(r.title, r.link, r.snippet, r.position) for r in result.organic] == [
        ("A", "https://a.example", "first", 1),
        ("B", "https://b.example", "second", 2),
    ]
    assert result.organic[1].raw["date"] == "2025"
    assert result.raw is legacy


def test_a_mixed_legacy_item_keeps_its_own_link_and_position() -> None:
    """Normalising never overwrites a link, snippet or position the item already has."""
    result = search([{"title": "A", "link": "https://l", "url": "https://u", "position": 7}])
    assert (result.organic[0].link, result.organic[0].position) == ("https://l", 7)


def test_nulls_in_results_take_defaults() -> None:
    """JSON null fields in a result become the model's defaults, not errors."""
    result = search({"organic": [{"title": None, "link": "https://a", "position": None}]})
    assert (result.organic[0].title, result.organic[0].position) == ("", None)


def test_an_empty_answer_is_an_empty_result() -> None:
    """An object without any block parses to an empty result."""
    assert len(search({})) == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"organic": "organic unavailable"}, "organic"),
        ({"organic": [{"title": 3}]}, "organic[0].title"),
        ({"organic": [{"position": "1"}]}, "organic[0].position"),
        ({"organic": [{"link": "a"}, "x"]}, "organic[1]"),
        ({"knowledgeGraph": [1]}, "knowledgeGraph"),
        ({"peopleAlsoAsk": [1]}, "peopleAlsoAsk[0]"),
        ({"news_results": "x"}, "news_results"),
        ({"relatedSearches": {"query": "x"}}, "relatedSearches"),
    ],
)
def test_wrong_types_in_known_blocks_are_charged_format_errors(data: Any, field: str) -> None:
    """A bad known block raises ResponseFormatError naming it, charged (code 0 was billed)."""
    with pytest.raises(ResponseFormatError) as caught:
        search(data)
    assert caught.value.field == field
    assert caught.value.charged is True


@pytest.mark.parametrize("data", [None, 3, "results unavailable", True])
def test_a_search_answer_must_be_an_object_or_a_list(data: Any) -> None:
    """Neither object nor list: ResponseFormatError, charged."""
    with pytest.raises(ResponseFormatError, match="expected an object or a list") as caught:
        search(data)
    assert caught.value.charged is True


def test_search_results_serialise_with_camel_case_names() -> None:
    """to_json of a SearchResult uses the API's names and leaves raw and extra out."""
    data = to_json(search(V1_ANSWER))
    assert {"organic", "peopleAlsoAsk", "knowledgeGraph", "news_results", "requestId"} <= set(data)
    assert "noResults" in data
    assert not {"raw", "extra", "no_results", "request_id"} & set(data)
    assert data["organic"][0]["link"] == "https://docs.python.org/3/library/asyncio.html"


# -- Reader pages ----------------------------------------------------------------------------


def page(data: Any) -> ReaderPage:
    """parse_page with the request-side fields filled in."""
    return parse_page(data, url="https://example.com/a", credits=4, request_id="r2")


def test_a_reader_object_parses_every_field() -> None:
    """markdown, title, description and the asked-for html/fileMarkdown/imageUrl."""
    data = {
        "markdown": "# A",
        "title": "A",
        "description": "about A",
        "html": "<h1>A</h1>",
        "fileMarkdown": "# file",
        "imageUrl": "https://img.example/a.png",
        "unknown": 1,
    }
    result = page(data)
    assert result == ReaderPage(
        url="https://example.com/a",
        markdown="# A",
        title="A",
        description="about A",
        html="<h1>A</h1>",
        file_markdown="# file",
        image_url="https://img.example/a.png",
        credits=4,
        request_id="r2",
    )
    assert result.raw is data


def test_optional_reader_fields_default_to_none() -> None:
    """html, file_markdown and image_url are None when not asked for."""
    result = page({"markdown": "m"})
    assert (result.html, result.file_markdown, result.image_url, result.title) == (
        None,
        None,
        None,
        "",
    )


def test_a_json_string_data_is_decoded() -> None:
    """data sent as a JSON-encoded string is decoded into the page's fields."""
    result = page(json.dumps({"markdown": "# B", "title": "B"}))
    assert (result.markdown, result.title) == ("# B", "B")


@pytest.mark.parametrize(
    "text", ["# Plain markdown\n\nbody", "[1, 2]", '"quoted"', "[" * 5000 + "link]"]
)
def test_a_plain_string_data_is_the_markdown(text: str) -> None:
    """data sent as markdown (or JSON that is not an object) is the page's markdown."""
    assert page(text).markdown == text


@pytest.mark.parametrize(
    ("data", "field"),
    [({"markdown": 12345}, "markdown"), ({"title": ["not", "a", "string"]}, "title")],
)
def test_wrong_reader_types_are_charged_format_errors(data: Any, field: str) -> None:
    """A Reader field of the wrong type is named, and the error is charged."""
    with pytest.raises(ResponseFormatError) as caught:
        page(data)
    assert (caught.value.field, caught.value.charged) == (field, True)


@pytest.mark.parametrize("data", [None, 5, [1]])
def test_reader_data_must_be_an_object_or_a_string(data: Any) -> None:
    """Reader data that is neither an object nor a string is a charged ResponseFormatError."""
    with pytest.raises(ResponseFormatError, match="expected an object") as caught:
        page(data)
    assert caught.value.charged is True


def test_page_repr_hides_the_bulky_text() -> None:
    """repr(page) shows url and title, not the markdown or html."""
    text = repr(page({"markdown": "SECRET BODY", "html": "<p>SECRET</p>", "title": "T"}))
    assert "SECRET" not in text
    assert "title='T'" in text


@pytest.mark.parametrize(
    ("engine", "field"),
    [
        ("google", "organic"),
        ("bing", "organic"),
        ("google_news", "news_results"),
        ("google_shopping", "shopping_results"),
        ("google_images", "images_results"),
        ("google_videos", "video_results"),
        ("google_short_videos", "short_video_results"),
    ],
)
def test_results_and_len_follow_the_engines_main_list(engine: str, field: str) -> None:
    """`results` and len() use the engine's own list, so a news answer is not empty."""
    items = ({"title": "a"}, {"title": "b"}, {"title": "c"})
    if field == "organic":
        items = tuple(OrganicResult(title=x["title"]) for x in items)  # type: ignore[assignment]  # organic items are OrganicResult, not dicts
    result = SearchResult(query="q", engine=engine, **{field: items})
    assert result.results == items
    assert len(result) == 3


_field_values = st.one_of(
    st.none(), st.text(max_size=5), st.integers(-3, 3), st.booleans(), st.floats(0, 1),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    item=st.dictionaries(
        st.sampled_from(["title", "link", "snippet", "position", "source", "page", "extra"]),
        _field_values,
    )
)
def test_the_fast_organic_hook_follows_the_generated_rules(item: dict[str, Any]) -> None:
    """The hand-written hot path for organic results accepts and builds exactly what the
    generated (explaining) converter does, so the two can never drift apart."""
    from searchcans_async._client.convert import _converter, _explainer  # noqa: PLC0415  # imported where the test needs it

    def build(converter: Any) -> Any:
        try:
            return ("ok", converter.structure(item, OrganicResult))
        except Exception:
            return ("refused", None)

    fast, slow = build(_converter), build(_explainer)
    assert fast == slow
    if fast[0] == "ok":
        assert fast[1].raw == slow[1].raw == item


_organic_items = st.dictionaries(
    st.sampled_from(["title", "link", "snippet", "position", "source", "page", "url", "content"]),
    _field_values,
)
_block_values = st.one_of(
    _field_values,
    st.lists(_organic_items, max_size=3),
    st.lists(st.one_of(st.dictionaries(st.text(max_size=3), st.integers()), st.none()), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip
_answers = st.dictionaries(
    st.sampled_from([
        "organic", "peopleAlsoAsk", "relatedSearches", "knowledgeGraph", "topStories",
        "suggestedSearches", "news_results", "aiSummary", "query", "credits",
    ]),
    _block_values,
)  # fmt: skip


def _read_both(data: Any) -> tuple[Any, Any]:
    """The hand-written web path's result (None: it declined) and the converter's."""
    from searchcans_async._client.convert import _converted_search, _web_result  # noqa: PLC0415  # imported where the test needs it

    fields: dict[str, Any] = {"query": "q", "engine": "google", "credits": 1, "request_id": "r"}
    fast = _web_result(data, **fields)
    try:
        slow: Any = _converted_search(data, **fields)
    except ResponseFormatError:
        slow = "refused"
    return fast, slow


@settings(max_examples=400, deadline=None)
@given(data=_answers)
def test_the_fast_web_path_builds_what_the_converter_builds(data: dict[str, Any]) -> None:
    """parse_search's hand-written path for web answers either declines (the converter then
    reads the answer) or builds exactly the converter's result: every field, extra, raw."""
    fast, slow = _read_both(data)
    if fast is None:
        return
    assert slow != "refused", "the fast path accepted what the converter refuses"
    assert fast == slow
    assert fast.extra == slow.extra
    assert fast.raw is slow.raw is data
    assert [r.raw for r in fast.organic] == [r.raw for r in slow.organic]


def test_a_usual_web_answer_takes_the_fast_path() -> None:
    """The emulator's and API.md's answer shapes are read by the hand-written path (else
    the equivalence test above would hold for a path that never runs)."""
    fast, slow = _read_both(V1_ANSWER)
    assert fast is not None
    assert fast == slow
    assert fast.extra == {"aiSummary": {"text": "asyncio runs coroutines"}}
    legacy, _ = _read_both({"organic": [{"title": "t", "url": "https://e.org", "content": "c"}]})
    assert legacy is not None
    assert legacy.organic[0].link == "https://e.org"
    assert legacy.organic[0].position == 1
    news, _ = _read_both({"news_results": [{"title": "t"}]})
    assert news is None  # a vertical list: the converter's readers take it
