"""The tools: each call holds a lane of the one shared pool and reserves its credits first.

Failures become :class:`ToolError` messages written for the model that made the call: what
happened, whether anything was charged, and what to do next. They carry the library's own
error text, which never holds the API key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from mcp.server.mcpserver.exceptions import ToolError

from .._client import (
    AuthenticationError,
    CreditsExhausted,
    InsufficientCreditsError,
    NoLanesError,
    SearchCansError,
)
from .outputs import AccountOutput, ReadOutput, SearchHit, SearchOutput

if TYPE_CHECKING:
    from .._client import SearchResult
    from .._lanes import LanePool, SearchCans

__all__ = ["SearchCansTools", "tool_error"]

logger = logging.getLogger("searchcans_async")

_BLOCKS: Final = (
    "people_also_ask",
    "related_searches",
    "top_stories",
    "suggested_searches",
)


def tool_error(error: BaseException) -> ToolError:
    """A tool error the model can act on, for a library error (or a bad argument)."""
    if isinstance(error, CreditsExhausted):
        return ToolError(
            f"refused before sending: budget left {error.available} credits, this call costs "
            f"{error.needed}. Nothing was charged. Use a cheaper call (fewer pages, proxy "
            "tier 0), or ask the user to restart the server with a larger --budget."
        )
    if isinstance(error, AuthenticationError):
        return ToolError(
            f"the SearchCans API rejected the API key ({error.message}). Nothing was charged. "
            "The user must set a valid SEARCHCANS_API_KEY in this server's configuration and "
            "restart it; retrying will not help."
        )
    if isinstance(error, InsufficientCreditsError):
        return ToolError(
            f"the SearchCans account has too few credits ({error.message}). Nothing was "
            "charged. The user must top up the account; retrying will not help."
        )
    if isinstance(error, NoLanesError):
        return ToolError(f"{error.message}. Nothing can run until the plan has lanes.")
    if isinstance(error, SearchCansError):
        if error.charged is None:
            charged = "it may have been charged"
        else:
            charged = "it was charged" if error.charged else "nothing was charged"
        advice = "; you may retry" if error.retryable or error.charged is False else ""
        return ToolError(f"the call failed: {error.message} ({charged}{advice})")
    return ToolError(f"invalid arguments: {error}")


class SearchCansTools:
    """The server's tools, over one client and one lane pool (opened on first need).

    The pool opens when the server starts; if the account cannot be read then (a bad key,
    the service unreachable), each tool call tries again and reports why it cannot run.

    Example:
        >>> tools = SearchCansTools(client, client.lanes(budget=500))  # doctest: +SKIP
        >>> await tools.open()  # doctest: +SKIP
        >>> (await tools.search("python asyncio")).results[0].link  # doctest: +SKIP
    """

    def __init__(
        self, client: SearchCans, pool: LanePool, *, budget: int | None = None, floor: int = 0
    ) -> None:
        self.client = client
        self.pool = pool
        self.budget = budget
        self.floor = floor
        self._opened = False
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        """Open the pool (read the account); a no-op once open.

        Raises:
            SearchCansError: The account could not be read.
        """
        async with self._opening:
            if not self._opened:
                await self.pool.open()
                self._opened = True

    async def aclose(self) -> None:
        """Close the pool if it was opened."""
        if self._opened:
            await self.pool.aclose()

    async def _ready(self) -> LanePool:
        try:
            await self.open()
        except SearchCansError as error:
            raise tool_error(error) from None
        return self.pool

    def _budget_left(self) -> int:
        return self.pool.statistics().budget_left

    # -- the tools -------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        engine: str = "google",
        *,
        country: str | None = None,
        language: str | None = None,
        pages: int = 1,
        page: int | None = None,
        max_results: int = 10,
        knowledge_graph: bool = False,
        people_also_ask: bool = False,
        ai_summary: bool = False,
        news_aggregation: bool = False,
        video_aggregation: bool = False,
        people_also_search_for: bool = False,
    ) -> SearchOutput:
        """Run a search in a lane, its credits reserved first."""
        pool = await self._ready()
        cost = self.client.costs.search(1 if page is not None else pages)
        try:
            async with pool.lane(cost=cost):
                result = await self.client.search(
                    query,
                    engine,
                    country=country,
                    language=language,
                    page=page,
                    pages=pages if page is None and pages > 1 else None,
                    knowledge_graph=knowledge_graph,
                    people_also_ask=people_also_ask,
                    ai_summary=ai_summary,
                    news_aggregation=news_aggregation,
                    video_aggregation=video_aggregation,
                    people_also_search_for=people_also_search_for,
                )
        except (SearchCansError, ValueError, TypeError) as error:
            raise tool_error(error) from None
        hits = [_hit(number, item) for number, item in enumerate(result.results, 1)]
        return SearchOutput(
            query=result.query,
            engine=result.engine,
            results=hits[:max_results],
            results_total=len(hits),
            truncated=len(hits) > max_results,
            no_results=result.no_results,
            blocks=_blocks(result, max_results),
            credits_charged=result.credits,
            budget_left=self._budget_left(),
        )

    async def read(
        self,
        url: str,
        *,
        proxy: int = 0,
        browser: bool = False,
        wait: float | None = None,
        max_chars: int = 20_000,
    ) -> ReadOutput:
        """Read a URL as markdown in a lane, its credits reserved first."""
        pool = await self._ready()
        try:
            cost = self.client.costs.read(proxy, browser=browser)
            async with pool.lane(cost=cost):
                page = await self.client.read(
                    url,
                    proxy=proxy,  # type: ignore[arg-type]  # validated 0-3 by the tool's schema
                    browser=browser,
                    wait=wait,
                )
        except (SearchCansError, ValueError, TypeError) as error:
            raise tool_error(error) from None
        markdown = page.markdown or page.file_markdown or ""
        return ReadOutput(
            url=page.url,
            title=page.title,
            description=page.description,
            markdown=markdown[:max_chars],
            chars_total=len(markdown),
            truncated=len(markdown) > max_chars,
            no_results=page.no_results,
            credits_charged=page.credits,
            budget_left=self._budget_left(),
        )

    async def account(self) -> AccountOutput:
        """Re-read the account (free) and report this server's lanes and credits."""
        pool = await self._ready()
        try:
            account = await pool.recheck()
        except SearchCansError as error:
            raise tool_error(error) from None
        stats = pool.statistics()
        return AccountOutput(
            remain=account.remain,
            lanes=stats.lanes,
            in_flight=stats.in_flight,
            waiting=stats.waiting,
            credits_spent=stats.committed,
            possibly_charged=stats.possibly_charged,
            budget=self.budget,
            floor=self.floor,
            budget_left=stats.budget_left,
            stopped=stats.stop_reason.value if stats.stop_reason is not None else None,
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _hit(number: int, item: Any) -> SearchHit:
    """A web result, or a vertical engine's item (a mapping), as a hit."""
    if isinstance(item, Mapping):
        position = item.get("position")
        return SearchHit(
            position=position if isinstance(position, int) else number,
            title=_text(item.get("title")),
            link=_text(item.get("link")) or _text(item.get("product_link")),
            snippet=_text(item.get("snippet")),
        )
    return SearchHit(
        position=item.position if item.position is not None else number,
        title=item.title,
        link=item.link,
        snippet=item.snippet,
    )


def _blocks(result: SearchResult, cap: int) -> dict[str, Any]:
    """The optional blocks the answer carried, each list capped like the results."""
    blocks: dict[str, Any] = {}
    for name in _BLOCKS:
        items = getattr(result, name)
        if items:
            blocks[name] = [dict(item) for item in items[:cap]]
    if result.knowledge_graph:
        blocks["knowledge_graph"] = dict(result.knowledge_graph)
    for name, value in result.extra.items():
        blocks[name] = value[:cap] if isinstance(value, list) else value
    return blocks
