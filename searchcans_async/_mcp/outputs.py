"""What the tools return: typed fields the host sees as ``structuredContent``.

pydantic models because the MCP SDK derives each tool's ``outputSchema`` from them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["AccountOutput", "ReadOutput", "SearchHit", "SearchOutput"]


class SearchHit(BaseModel):
    """One search result."""

    position: int | None = Field(description="Rank on the results page (1-based)")
    title: str
    link: str
    snippet: str


class SearchOutput(BaseModel):
    """A search's results, capped to ``max_results``."""

    query: str
    engine: str
    results: list[SearchHit]
    results_total: int = Field(description="Results the API returned, before the cap")
    truncated: bool = Field(description="True when results were left out by max_results")
    no_results: bool = Field(description="The API found nothing (not charged)")
    blocks: dict[str, Any] = Field(
        description="Extra blocks asked for (people_also_ask, knowledge_graph, ...), if any"
    )
    credits_charged: int
    budget_left: int = Field(description="Credits this server may still spend")


class ReadOutput(BaseModel):
    """A page read as markdown, capped to ``max_chars``."""

    url: str
    title: str
    description: str
    markdown: str
    chars_total: int = Field(description="Length of the whole markdown, before the cap")
    truncated: bool = Field(description="True when the markdown was cut at max_chars")
    no_results: bool = Field(description="The API returned nothing for this URL (not charged)")
    credits_charged: int
    budget_left: int = Field(description="Credits this server may still spend")


class AccountOutput(BaseModel):
    """The account and this server's share of it."""

    remain: int = Field(description="Credits left on the SearchCans account")
    lanes: int = Field(description="Parallel Lanes this server may use now")
    in_flight: int = Field(description="Calls running now")
    waiting: int = Field(description="Calls waiting for a lane")
    credits_spent: int = Field(description="Credits spent by this server since it started")
    possibly_charged: int = Field(
        description="Credits of failed calls that may have been billed, until the next check"
    )
    budget: int | None = Field(description="The server's --budget (None: all spendable)")
    floor: int = Field(description="Credits the server leaves on the account")
    budget_left: int = Field(description="Credits this server may still spend")
    stopped: str | None = Field(description="Why the server stopped taking work, if it did")
