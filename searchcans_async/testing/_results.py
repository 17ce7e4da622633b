"""Deterministic, plausible answers: SERP pages, Reader pages, the account object.

Everything derives from the request through `digest` (blake2b), never from `hash()` or a
shared random generator, so the same request always gets the same answer in any process.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._config import digest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._requests import ReaderQuery, SearchQuery
    from ._state import AccountState, KeyState

__all__ = ["account_data", "legacy_search_data", "reader_data", "search_data", "wrong_types"]

_DOMAINS: Final = (
    "example.com",
    "example.org",
    "example.net",
    "docs.example.dev",
    "wiki.example.edu",
    "blog.example.io",
    "news.example.info",
    "shop.example.store",
)
_TITLES: Final = (
    "{q}: a complete guide",
    "What is {q}? Everything you need to know",
    "{q} explained in plain words",
    "10 things to know about {q}",
    "{q} - Wiki",
    "How {q} works, step by step",
    "{q}: news, analysis and updates",
    "Learn {q} in five minutes",
)
_SNIPPETS: Final = (
    "An overview of {q}, with examples, common pitfalls and references for further reading.",
    "Everything about {q}: definitions, history and how it is used today.",
    "We compared the best resources on {q} so you do not have to.",
    "A practical introduction to {q} for beginners and experts alike.",
)
_RELATED: Final = ("tutorial", "examples", "vs alternatives", "best practices", "pricing", "news")
_VERTICAL_LISTS: Final = {
    "google_news": "news_results",
    "google_shopping": "shopping_results",
    "google_images": "images_results",
    "google_videos": "video_results",
    "google_short_videos": "short_video_results",
}
RESULTS_PER_PAGE: Final = 10


def _pick(options: Sequence[str], seed: bytes, index: int = 0) -> str:
    return options[seed[index] % len(options)]


_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:60] or "page"


def _date(seed: bytes) -> str:
    return f"2025-{seed[5] % 12 + 1:02d}-{seed[6] % 28 + 1:02d}"


def _items(query: SearchQuery) -> list[dict[str, Any]]:
    """The fields every web-like result shares, derived from the query and each position."""
    text = query.query.strip()
    slug = _slug(query.query)
    # One hash state per query, copied per position: the same digests, a third of the work.
    prefix = hashlib.blake2b(digest_size=32)
    prefix.update(
        f"{query.engine}\x1f{query.query}\x1f{query.country}\x1f{query.language}".encode()
    )
    items = []
    for page in query.pages:
        for rank in range(1, RESULTS_PER_PAGE + 1):
            position = (page - 1) * RESULTS_PER_PAGE + rank
            state = prefix.copy()
            state.update(b"\x1f%d" % position)
            seed = state.digest()
            domain = _pick(_DOMAINS, seed)
            items.append(
                {
                    "position": position,
                    "title": _pick(_TITLES, seed, 1).format(q=text),
                    "link": f"https://{domain}/{slug}/{seed.hex()[:10]}",
                    "snippet": _pick(_SNIPPETS, seed, 2).format(q=text),
                    "source": domain,
                    "page": page,
                    "_seed": seed,
                }
            )
    return items


def _vertical_item(engine: str, base: dict[str, Any]) -> dict[str, Any]:
    """One vertical result with the fields API.md lists for its engine (snake_case)."""
    seed: bytes = base.pop("_seed")
    common = {key: base[key] for key in ("position", "title", "link", "page")}
    domain = base["source"]
    thumbnail = f"https://thumbs.{domain}/{seed.hex()[:16]}.jpg"
    if engine == "google_news":
        return {
            **common,
            "source": {"name": domain, "icon": f"https://{domain}/favicon.ico"},
            "date": f"{seed[3] % 23 + 1} hours ago",
            "iso_date": f"{_date(seed)}T{seed[4] % 24:02d}:00:00Z",
            "snippet": base["snippet"],
            "thumbnail": thumbnail,
        }
    if engine == "google_shopping":
        cents = (seed[3] % 200 + 1) * 100 + seed[4] % 100
        return {
            **common,
            "product_id": str(int.from_bytes(seed[8:14], "big")),
            "product_link": f"https://shopping.example.com/product/{seed.hex()[:12]}",
            "source": domain,
            "price": f"${cents // 100}.{cents % 100:02d}",
            "extracted_price": cents / 100,
            "rating": round(3 + seed[7] % 21 / 10, 1),
            "reviews": seed[9] * 7,
            "thumbnail": thumbnail,
            "multiple_sources": bool(seed[10] % 2),
            "delivery": "Free delivery" if seed[11] % 2 else f"${seed[11] % 9 + 1}.99 delivery",
        }
    if engine == "google_images":
        return {
            **common,
            "source": domain,
            "thumbnail": thumbnail,
            "original": f"https://images.{domain}/{seed.hex()[:16]}.jpg",
            "original_width": 640 + seed[3] % 8 * 160,
            "original_height": 480 + seed[4] % 6 * 120,
            "is_product": seed[12] % 5 == 0,
        }
    channel = f"{domain} channel"
    if engine == "google_videos":
        return {
            **common,
            "snippet": base["snippet"],
            "duration": f"{seed[3] % 20}:{seed[4] % 60:02d}",
            "channel": channel,
            "thumbnail": thumbnail,
            "date": _date(seed),
        }
    return {  # google_short_videos
        **common,
        "source": "YouTube" if seed[3] % 2 else "TikTok",
        "channel": channel,
        "duration": f"0:{seed[4] % 60:02d}",
        "thumbnail": thumbnail,
    }


def _results(query: SearchQuery) -> list[dict[str, Any]]:
    items = _items(query)
    if query.engine in _VERTICAL_LISTS:
        return [_vertical_item(query.engine, item) for item in items]
    for item in items:
        del item["_seed"]
    return items


def search_data(query: SearchQuery) -> dict[str, Any]:
    """The v1 search `data` object: `organic` (or a vertical list) plus optional blocks."""
    q = query.query.strip()
    seed = digest("blocks", query.engine, query.query)
    data: dict[str, Any] = {}
    results = _results(query)
    vertical = _VERTICAL_LISTS.get(query.engine)
    data[vertical or "organic"] = results
    data["relatedSearches"] = [{"query": f"{q} {_pick(_RELATED, seed, i)}"} for i in range(4)]
    if "peopleAlsoAsk" in query.flags:
        data["peopleAlsoAsk"] = [
            {
                "question": question,
                "snippet": _SNIPPETS[i].format(q=q),
                "title": f"{q} FAQ",
                "link": f"https://{_DOMAINS[i]}/faq/{_slug(q)}",
            }
            for i, question in enumerate(
                (f"What is {q}?", f"How does {q} work?", f"Is {q} worth it?")
            )
        ]
    if "knowledgeGraph" in query.flags:
        data["knowledgeGraph"] = {
            "title": q.title(),
            "type": "Topic",
            "description": _SNIPPETS[1].format(q=q),
            "website": f"https://{_pick(_DOMAINS, seed)}/",
        }
    if "newsAggregation" in query.flags:
        data["topStories"] = [
            {
                "title": f"{q}: story {i}",
                "link": f"https://news.example.info/{_slug(q)}/{i}",
                "source": "news.example.info",
                "date": _date(digest(seed, i)),
            }
            for i in range(1, 4)
        ]
    if "peopleAlsoSearchFor" in query.flags or query.engine == "google_images":
        data["suggestedSearches"] = [{"query": f"{q} {suffix}"} for suffix in _RELATED[3:]]
    if "aiSummary" in query.flags:
        data["aiSummary"] = {
            "text": f"In short, {q} is covered by {len(results)} results.",
            "sources": [item["link"] for item in results[:3]],
        }
    if "videoAggregation" in query.flags:
        data["videos"] = [
            {
                "title": f"{q} in 10 minutes",
                "link": f"https://video.example.tv/{_slug(q)}",
                "duration": "10:00",
            }
        ]
    if query.html:
        head = f"<head><title>{q} - Search</title></head>"
        data["html"] = f"<!doctype html><html>{head}<body>{len(results)} results</body></html>"
    return data


def legacy_search_data(query: SearchQuery) -> list[dict[str, Any]]:
    """The v0 search `data`: a bare list of `{title, url, content}`."""
    return [
        {"title": item["title"], "url": item["link"], "content": item.get("snippet", item["title"])}
        for item in _results(query)
    ]


def reader_data(query: ReaderQuery) -> dict[str, Any]:
    """The Reader `data` object, derived from the URL (and the options asked for)."""
    parts = urlsplit(query.url)
    host = parts.hostname or "unknown.invalid"
    words = [word for word in re.split(r"[/\-_.]+", parts.path) if word and not word.isdigit()]
    topic = " ".join(words[-3:]).replace("html", "").strip() or host
    seed = digest("reader", query.url)
    title = f"{topic.title()} | {host}"
    description = f"An emulated page about {topic} on {host}."
    paragraphs = [_SNIPPETS[(seed[i] + i) % len(_SNIPPETS)].format(q=topic) for i in range(3)]
    markdown = "\n\n".join([f"# {topic.title()}", *paragraphs, f"[Source]({query.url})"])
    data: dict[str, Any] = {"markdown": markdown, "title": title, "description": description}
    if query.html:
        body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
        head = f"<head><title>{title}</title></head>"
        page = f"<body><h1>{topic.title()}</h1>{body}</body>"
        data["html"] = f"<!doctype html><html>{head}{page}</html>"
    if query.file:
        data["fileMarkdown"] = f"# {topic.title()} (document)\n\n{paragraphs[0]}"
    if query.image:
        kind = "viewport" if query.image == 1 else "fullpage"
        data["imageUrl"] = f"https://screenshots.example.invalid/{seed.hex()[:16]}-{kind}.png"
    return data


def _masked(key: KeyState, *, suffix: bool) -> str:
    """`sk_` and bullets, as published; with `suffix`, the last four characters too."""
    return key.masked if suffix else _PUBLISHED_MASK


_PUBLISHED_MASK: Final = "sk_" + "\u2022" * 6


def account_data(
    account: AccountState,
    calling_key: KeyState,
    *,
    seed: int,
    key_suffix: bool = False,
    counters: str = "split",
) -> dict[str, Any]:
    """The `/api/user/key` data object, camelCase, shaped like API.md's sample.

    `counters` is `WireOptions.counters`: how `current` and `permanentCurrent` move.
    """
    current, permanent_current = account.current, account.permanent_current
    if counters == "combined":
        current += permanent_current
    elif counters == "frozen":
        current = permanent_current = 0
    face = f"https://avatars.example.invalid/{account.id}.png"
    return {
        "nickName": account.nickname,
        "email": account.email,
        "origin": 1,
        "faceUrl": face,
        "id": account.id,
        "type": 3,
        "lang": 2,
        "expire": 0,
        "token": "",
        "refreshToken": "",
        "keys": [
            {
                "uid": account.id,
                "name": key.name,
                "email": account.email,
                "nickName": account.nickname,
                "faceUrl": face,
                "key": _masked(key, suffix=key_suffix),
                "total": -1 if key.quota is None else key.quota,
                "remain": 0 if key.quota is None else key.own_remain,
                "type": 0,
                "id": key.id,
                "active": key.active,
            }
            for key in account.keys
        ],
        "key": _masked(calling_key, suffix=key_suffix),
        "remain": account.remain,
        "current": current,
        "month": current,
        "total": account.paid_total,
        "permanentRemain": account.permanent_remain,
        "permanentCurrent": permanent_current,
        "permanentMonth": permanent_current,
        "permanentTotal": account.permanent_total,
        "seq": int.from_bytes(digest("seq", seed, account.name)[:2], "big") % 9000 + 1000,
        "concurrent": account.lanes,
        "recommend": "",
    }


def wrong_types(endpoint: str, data: Any) -> Any:
    """A copy of `data` with fields of the wrong type, for the `wrong_types` fault."""
    if isinstance(data, list):
        return "results unavailable"
    patched = dict(data)
    if endpoint == "account":
        patched["remain"] = str(patched["remain"])
        patched["concurrent"] = str(patched["concurrent"])
    elif endpoint == "url":
        patched["markdown"] = 12345
        patched["title"] = ["not", "a", "string"]
    else:
        for name in ("organic", *_VERTICAL_LISTS.values()):
            if name in patched:
                patched[name] = f"{name} unavailable"
    return patched
