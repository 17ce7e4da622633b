"""``searchcans-async mcp``: a Model Context Protocol server for LLM agent hosts.

The server itself lives in ``searchcans_async._mcp`` and needs the ``mcp`` extra; this
command only parses its options, so ``--help`` works without it and a missing extra is one
line naming what to install.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from .._client import RetryPolicy
from .._lanes import SearchCans
from .errors import CliError, ExitCode
from .output import Scrub, ScrubbedStream
from .settings import PROG, Settings, pass_settings, run_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._mcp import McpOptions

__all__ = ["mcp_command"]


def _address(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, e.g. 127.0.0.1:8000, got {value!r}")
    return host.strip("[]"), int(port)


def _log_to_stderr(scrub: Scrub, verbose: int) -> None:
    """Send every logger (the SDK's too) to stderr through the key scrubber.

    The MCP SDK would otherwise install its own unscrubbed handler on the root logger.
    """
    handler = logging.StreamHandler(ScrubbedStream(sys.stderr, scrub))
    handler.setFormatter(logging.Formatter(f"{PROG} mcp: %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    if verbose:  # the group already logs the library's own records at this level
        handler.addFilter(lambda record: not record.name.startswith("searchcans_async"))
    logging.getLogger().addHandler(handler)


@click.command("mcp")
@click.option("--budget", type=click.IntRange(min=0), help="Spend at most this many credits.")
@click.option(
    "--floor",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave this many credits on the account.",
)
@click.option("--lanes", type=click.IntRange(min=1), help="Use at most this many lanes.")
@click.option(
    "--http",
    metavar="HOST:PORT",
    callback=_address,
    help="Serve streamable HTTP on HOST:PORT (path /mcp) instead of stdio; port 0 picks one.",
)
@click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Run against a built-in emulator (no key, no network): a zero-setup demo.",
)
@click.option("--base-url", "mcp_base_url", help="The API's address (overrides the global one).")
@pass_settings
def mcp_command(
    settings: Settings,
    *,
    budget: int | None,
    floor: int,
    lanes: int | None,
    http: tuple[str, int] | None,
    use_emulator: bool,
    mcp_base_url: str | None,
) -> int:
    """Serve the search, read and account tools to an MCP host (stdio by default).

    Every tool call shares one lane pool: the account's lanes, never more, and one credit
    budget; a call the budget cannot cover is refused before it is sent.
    """
    if use_emulator and mcp_base_url is not None:
        raise CliError("give --emulator or --base-url, not both")
    try:
        from .._mcp import McpOptions  # noqa: PLC0415  # the mcp SDK is an optional extra
    except ImportError as error:
        if (error.name or "").split(".")[0] not in ("mcp", "pydantic", "uvicorn"):
            raise
        raise CliError(
            f"the mcp command needs the MCP SDK ({error.name} is missing): "
            "pip install 'searchcans-async[mcp]'"
        ) from None
    options = McpOptions(budget=budget, floor=floor, max_lanes=lanes, http=http)
    if mcp_base_url is not None:
        settings = Settings(
            mcp_base_url, settings.key_file, settings.key_argument, settings.timeout,
            settings.retries, settings.verbose,
        )  # fmt: skip
    announce = ScrubbedStream(sys.stderr, settings.scrub())

    def say(line: str) -> None:
        announce.write(f"{PROG} mcp: {line}\n")
        announce.flush()

    async def main() -> int:
        if use_emulator:
            return await _with_emulator(settings, options, say)
        _log_to_stderr(settings.scrub(), settings.verbose)
        async with settings.client() as client:
            await _serve(client, options, say)
        return ExitCode.OK

    return run_command(settings, main)


async def _serve(client: SearchCans, options: McpOptions, say: Callable[[str], None]) -> None:
    from .._mcp import serve  # noqa: PLC0415  # the mcp SDK is an optional extra

    try:
        await serve(client, options, announce=say)
    except OSError as error:  # the --http address
        raise CliError(f"cannot listen: {error.strerror or error}", ExitCode.ERROR) from None


async def _with_emulator(
    settings: Settings, options: McpOptions, say: Callable[[str], None]
) -> int:
    from ..testing import Emulator  # noqa: PLC0415  # only the demo mode serves one

    async with Emulator() as emulator:
        _log_to_stderr(Scrub(emulator.api_key), settings.verbose)
        stats = emulator.stats()
        say(
            f"built-in emulator at {emulator.base_url} ({stats.remain} credits, "
            f"{stats.lanes} lanes); nothing leaves this machine"
        )
        client = SearchCans(
            emulator.api_key,
            base_url=emulator.base_url,
            timeout=settings.timeout,
            retry=RetryPolicy(attempts=settings.retries + 1),
        )
        async with client:
            await _serve(client, options, say)
    return ExitCode.OK
