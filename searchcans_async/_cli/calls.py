"""``account``, ``search`` and ``read``: one call each, as a table, text or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, TypeVar

import click
from rich.table import Table
from rich.text import Text

from .._client import ENGINES, ReadRequest, SearchRequest
from .errors import CliError, ExitCode
from .output import account_payload, dumps, page_payload, quota_text, search_payload, search_text
from .settings import Settings, make_console, pass_settings, run_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._client import Account

__all__ = ["account", "read", "search"]

R = TypeVar("R")

_FEATURES: Final = (
    "knowledge-graph",
    "people-also-ask",
    "ai-summary",
    "news-aggregation",
    "video-aggregation",
    "people-also-search-for",
)


# -- account -------------------------------------------------------------------------------


def _account_tables(account: Account, *, personal: bool) -> list[Table]:
    summary = Table(title="SearchCans account", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_column(style="dim")
    payload = account_payload(account, personal=personal)
    spendable = payload["spendable"]
    rows = [
        ("credits left", f"{account.remain:,}", "remain (permanent credits included)"),
        ("spendable by this key", "-" if spendable is None else f"{spendable:,}", ""),
        ("spent this month", f"{account.month:,}", "month"),
        ("spent in all", f"{account.current:,}", f"current, of {account.total:,} total"),
        (
            "permanent credits",
            f"{account.permanent_remain:,}",
            f"left of {account.permanent_total:,}; spent first",
        ),
        ("Parallel Lanes", f"{account.concurrent}", "concurrent: requests at once"),
    ]
    if personal:
        rows.append(("owner", account.nickname or "", account.email or ""))
    for row in rows:
        summary.add_row(*(Text(cell) for cell in row))
    keys = Table(title="API keys", title_justify="left")
    for column in ("name", "id", "active", "quota", ""):
        keys.add_column(column)
    for key, key_payload in zip(account.keys, payload["keys"], strict=True):
        keys.add_row(
            Text(key.name),
            Text(key.id),
            "yes" if key.active else Text("no", style="red"),
            Text(quota_text(key)),
            "← this key" if key_payload["calling"] else "",
        )
    return [summary, keys]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--show-personal",
    is_flag=True,
    help="Also show the owner's nickname and email (personal data: off by default).",
)
@pass_settings
def account(settings: Settings, *, as_json: bool, show_personal: bool) -> int:
    """Show credits, Parallel Lanes and every API key's quota. Costs nothing."""

    async def main() -> int:
        async with settings.client() as client:
            result = await client.account()
        scrub = settings.scrub()
        if as_json:
            click.echo(scrub(dumps(account_payload(result, personal=show_personal))))
        else:
            console = make_console(stderr=False, scrub=scrub)
            for table in _account_tables(result, personal=show_personal):
                console.print(table)
        return ExitCode.OK

    return run_command(settings, main)


# -- search and read -----------------------------------------------------------------------


def _request(factory: Callable[[], R]) -> R:
    """Build a request; an invalid option is a usage error (nothing was sent)."""
    try:
        return factory()
    except (TypeError, ValueError) as error:
        raise CliError(str(error)) from None


def _footer(credits: int, request_id: str | None) -> str:
    request = f" · request {request_id}" if request_id else ""
    return f"{credits} credit{'s' if credits != 1 else ''}{request}"


@click.command()
@click.argument("query")
@click.option(
    "--engine", type=click.Choice(ENGINES), default="google", show_default=True, help="Engine."
)
@click.option("--country", help="Search from this country, e.g. us.")
@click.option("--language", help="Result language, e.g. en.")
@click.option("--page", type=click.IntRange(min=1), help="Fetch this one page (1 credit).")
@click.option(
    "--pages", type=click.IntRange(1, 100), help="Fetch pages 1..N in one call (N credits)."
)
@click.option(
    "--server-timeout", type=float, help="Seconds the server may spend (its d; default 10)."
)
@click.option(
    "--with",
    "features",
    type=click.Choice(_FEATURES),
    multiple=True,
    help="Ask for an extra block (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_settings
def search(
    settings: Settings,
    query: str,
    *,
    engine: str,
    country: str | None,
    language: str | None,
    page: int | None,
    pages: int | None,
    server_timeout: float | None,
    features: tuple[str, ...],
    as_json: bool,
) -> int:
    """Run one SERP query and print its results (1 credit per page)."""
    flags = {feature.replace("-", "_"): True for feature in features}
    request = _request(
        lambda: SearchRequest(
            query=query,
            engine=engine,
            country=country,
            language=language,
            page=page,
            pages=pages,
            server_timeout=server_timeout,
            **flags,
        )
    )

    async def main() -> int:
        async with settings.client() as client:
            result = await client.send(request)
        scrub = settings.scrub()
        if as_json:
            click.echo(scrub(dumps(search_payload(result))))
        else:
            click.echo(scrub(search_text(result, dict.fromkeys(features))))
            click.echo(_footer(result.credits, result.request_id), err=True)
        return ExitCode.OK

    return run_command(settings, main)


@click.command()
@click.argument("url")
@click.option(
    "--proxy",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Proxy tier: 0 direct (2 credits), 1 (+2), 2 (+5), 3 (+10).",
)
@click.option("--browser", is_flag=True, help="Render JavaScript in a browser first.")
@click.option("--wait", type=float, help="Seconds to wait after rendering (with --browser).")
@click.option("--server-timeout", type=float, help="Seconds the server may spend.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@pass_settings
def read(
    settings: Settings,
    url: str,
    *,
    proxy: Literal[0, 1, 2, 3],
    browser: bool,
    wait: float | None,
    server_timeout: float | None,
    as_json: bool,
) -> int:
    """Read one URL as markdown with the Reader API (2 credits, more with a proxy)."""
    request = _request(
        lambda: ReadRequest(
            url=url, proxy=proxy, browser=browser, wait=wait, server_timeout=server_timeout
        )
    )

    async def main() -> int:
        async with settings.client() as client:
            page = await client.send(request)
        scrub = settings.scrub()
        if as_json:
            click.echo(scrub(dumps(page_payload(page))))
        else:
            if page.title:
                click.echo(scrub(f"# {page.title}\n"))
            click.echo(scrub(page.markdown))
            click.echo(_footer(page.credits, page.request_id), err=True)
        return ExitCode.OK

    return run_command(settings, main)
