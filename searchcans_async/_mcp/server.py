"""The ``MCPServer``: the tools registered with their schemas and costs, stdio or HTTP."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated, Any, Literal

import attrs
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from .._version import __version__
from .outputs import AccountOutput, ReadOutput, SearchOutput  # noqa: TC001  # the SDK reads the tools' annotations at run time
from .tools import SearchCansTools

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._client import Costs
    from .._lanes import SearchCans

__all__ = ["McpOptions", "build_server", "serve"]

Engine = Literal[
    "google",
    "bing",
    "google_news",
    "google_shopping",
    "google_images",
    "google_videos",
    "google_short_videos",
]

_INSTRUCTIONS = (
    "Web search and page reading through SearchCans. Every call costs credits from one "
    "budget shared by all calls of this server, and runs in one of the account's Parallel "
    "Lanes; calls beyond the lanes wait their turn. Call `account` (free) to see the "
    "credits left. A call the budget cannot cover is refused before it is sent."
)


@attrs.frozen(kw_only=True)
class McpOptions:
    """How the server runs: its pool's budget and lanes, and its transport.

    Example:
        >>> McpOptions(budget=500, floor=50).http is None  # stdio
        True
    """

    budget: int | None = None
    floor: int = 0
    max_lanes: int | None = None
    http: tuple[str, int] | None = None


def _search_description(costs: Costs) -> str:
    return (
        "Search the web (Google by default; also Bing and Google news, shopping, images, "
        "videos). Returns ranked results with title, link, snippet and position. "
        f"Cost: {costs.search(1)} credit per page (pages=N costs {costs.search(1)} x N; "
        f"page=N fetches that one page for {costs.search(1)}). The feature flags add blocks "
        "(people also ask, knowledge graph, AI summary, ...) at no extra charge."
    )


def _read_description(costs: Costs) -> str:
    tiers = ", ".join(f"{tier}: {costs.read(tier)}" for tier in range(4))
    browser = costs.read(0, browser=True) - costs.read(0)
    extra = f"; browser mode adds {browser}" if browser else ""
    return (
        "Read a web page as markdown (title, description, markdown). "
        f"Cost in credits by proxy tier ({tiers}){extra}. Use proxy tier 0 unless a site "
        "blocks it, and browser mode only for pages that need JavaScript."
    )


def build_server(tools: SearchCansTools) -> MCPServer[Any]:
    """An ``MCPServer`` with the ``search``, ``read`` and ``account`` tools over ``tools``.

    Example:
        >>> server = build_server(SearchCansTools(client, pool))  # doctest: +SKIP
        >>> await server.run_stdio_async()  # doctest: +SKIP
    """
    server: MCPServer[Any] = MCPServer(
        "searchcans",
        version=__version__,
        instructions=_INSTRUCTIONS,
        log_level="WARNING",
    )
    costs = tools.client.costs

    async def search(
        query: Annotated[str, Field(min_length=1, description="What to search for")],
        *,
        engine: Annotated[Engine, Field(description="Search engine")] = "google",
        country: Annotated[str | None, Field(description="Country code, e.g. us")] = None,
        language: Annotated[str | None, Field(description="Language code, e.g. en")] = None,
        pages: Annotated[
            int, Field(ge=1, le=10, description="Fetch pages 1..N in one call (N credits)")
        ] = 1,
        page: Annotated[
            int | None, Field(ge=1, description="Fetch only this page (1 credit)")
        ] = None,
        max_results: Annotated[
            int, Field(ge=1, le=100, description="Return at most this many results")
        ] = 10,
        knowledge_graph: bool = False,
        people_also_ask: bool = False,
        ai_summary: bool = False,
        news_aggregation: bool = False,
        video_aggregation: bool = False,
        people_also_search_for: bool = False,
    ) -> SearchOutput:
        return await tools.search(
            query,
            engine,
            country=country,
            language=language,
            pages=pages,
            page=page,
            max_results=max_results,
            knowledge_graph=knowledge_graph,
            people_also_ask=people_also_ask,
            ai_summary=ai_summary,
            news_aggregation=news_aggregation,
            video_aggregation=video_aggregation,
            people_also_search_for=people_also_search_for,
        )

    async def read(
        url: Annotated[str, Field(description="An absolute http(s) URL")],
        *,
        proxy: Annotated[
            int, Field(ge=0, le=3, description="Proxy tier 0 (direct) to 3; higher costs more")
        ] = 0,
        browser: Annotated[bool, Field(description="Render JavaScript in a browser")] = False,
        wait: Annotated[
            float | None,
            Field(ge=0, le=30, description="Seconds to wait after rendering (browser only)"),
        ] = None,
        max_chars: Annotated[
            int,
            Field(ge=100, le=1_000_000, description="Return at most this much markdown"),
        ] = 20_000,
    ) -> ReadOutput:
        return await tools.read(url, proxy=proxy, browser=browser, wait=wait, max_chars=max_chars)

    async def account() -> AccountOutput:
        return await tools.account()

    server.add_tool(search, name="search", description=_search_description(costs))
    server.add_tool(read, name="read", description=_read_description(costs))
    server.add_tool(
        account,
        name="account",
        description=(
            "Free (0 credits): the SearchCans account's credits left, the lanes this server "
            "uses, the credits it has spent, and the budget it has left."
        ),
    )
    return server


async def serve(
    client: SearchCans, options: McpOptions, *, announce: Callable[[str], None]
) -> None:
    """Open the pool, serve MCP until the host closes stdin (or Ctrl-C), close the pool.

    ``announce`` gets a few lines for a human (the host's log): never the key.
    """
    pool = client.lanes(budget=options.budget, floor=options.floor, max_lanes=options.max_lanes)
    tools = SearchCansTools(client, pool, budget=options.budget, floor=options.floor)
    server = build_server(tools)
    try:
        try:
            await tools.open()
        except Exception as error:  # noqa: BLE001  # served anyway: each call says why
            announce(f"cannot read the account yet ({error}); each tool call will retry")
        else:
            stats = pool.statistics()
            announce(
                f"pool open: {stats.lanes} lanes, budget {stats.budget_left} credits "
                f"(account remain {stats.remain})"
            )
        if options.http is None:
            announce("serving MCP on stdio")
            await server.run_stdio_async()
        else:
            await _serve_http(server, *options.http, announce=announce)
    finally:
        await tools.aclose()


async def _serve_http(
    server: MCPServer[Any], host: str, port: int, *, announce: Callable[[str], None]
) -> None:
    import uvicorn  # noqa: PLC0415  # only the HTTP transport needs it

    listener = socket.create_server((host, port))
    bound = listener.getsockname()[1]
    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    announce(f"serving MCP (streamable HTTP) on http://{host}:{bound}/mcp")
    with listener:
        await uvicorn.Server(config).serve(sockets=[listener])
