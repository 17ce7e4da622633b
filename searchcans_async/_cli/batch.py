"""``searchcans-async batch``: JSONL in, JSONL out, every lane busy, resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, Final, Literal

import click
from rich.text import Text

from .._client import ENGINES
from .errors import CliError, ExitCode
from .jsonl import option_fields
from .output import RESULT_FIELDS
from .progress import EventCounter
from .run import BatchSpec, Interrupts, run_batch
from .settings import Settings, error_line, make_console, pass_settings, run_command
from .summary import print_report, stop_message

__all__ = ["PROGRESS_CHOICES", "batch", "run_batch_command"]


PROGRESS_CHOICES: Final = ("auto", "live", "plain", "off")


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--kind",
    type=click.Choice(["search", "read"]),
    default="search",
    show_default=True,
    help="What each line is: a query (search) or a URL (read).",
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", "jsonl", "text"]),
    default="auto",
    show_default=True,
    help="INPUT's format: one JSON string or object per line (jsonl), one plain query or URL "
    "per line (text), or auto: jsonl if its first line is JSON, else text.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write results here, one JSON line per item (default: stdout).",
)
@click.option(
    "--fields",
    metavar="NAMES",
    help="Keep only these fields of each result, comma-separated; NAME.SUB keeps one key of "
    "each item of a list, e.g. organic.link,organic.title,credits.",
)
@click.option(
    "--export-unfinished",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="At the end, write the input lines still to run (failed uncharged, not started, "
    "never read) to FILE, ready to feed back.",
)
@click.option("--resume", is_flag=True, help="Skip the items --out already holds as succeeded.")
@click.option(
    "--retry-possibly-charged",
    is_flag=True,
    help="With --resume, also rerun items that failed possibly charged (may bill twice).",
)
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    help="Spend at most this many credits: for the whole job across every --resume of one "
    "--out (or, with --redis, for the group).",
)
@click.option(
    "--raise-budget",
    is_flag=True,
    help="Let --budget raise the budget of a job (or a --redis group) that had a lower one.",
)
@click.option(
    "--floor",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave this many credits on the account.",
)
@click.option("--lanes", type=click.IntRange(min=1), help="Use at most this many lanes.")
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="SEARCHCANS_REDIS_URL",
    help="Share the account's lanes and credits with other workers through this Redis "
    "(redis://host:port/db; env SEARCHCANS_REDIS_URL). Needs --account.",
)
@click.option(
    "--account",
    "group",
    metavar="NAME",
    help="With --redis: the shared group's name; every worker of one job uses the same.",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failed item.")
@click.option("--engine", type=click.Choice(ENGINES), help="Default engine for search items.")
@click.option("--proxy", type=click.IntRange(0, 3), help="Default proxy tier for read items.")
@click.option(
    "--progress",
    type=click.Choice(PROGRESS_CHOICES),
    default="auto",
    show_default=True,
    help="live display on a terminal, plain lines otherwise (auto), or off.",
)
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.01),
    default=2.0,
    show_default=True,
    help="Seconds between two plain progress lines.",
)
@pass_settings
def batch(
    settings: Settings,
    input_path: str,
    *,
    kind: Literal["search", "read"],
    input_format: Literal["auto", "jsonl", "text"],
    out: Path | None,
    fields: str | None,
    export_unfinished: Path | None,
    resume: bool,
    retry_possibly_charged: bool,
    budget: int | None,
    raise_budget: bool,
    floor: int,
    lanes: int | None,
    redis_url: str | None,
    group: str | None,
    fail_fast: bool,
    engine: str | None,
    proxy: int | None,
    progress: Literal["auto", "live", "plain", "off"],
    progress_every: float,
) -> int:
    """Run every line of INPUT (a file, or - for stdin) in the account's lanes.

    Each line is a plain query (or URL, with --kind read), or, in JSONL, a JSON string or
    an object with "query"/"url" plus per-item options named like the Python keyword
    arguments, e.g. {"query": "asyncio", "engine": "bing", "pages": 2}. A bad line in a file
    refuses the whole file before anything is spent. Each finished item is written as
    one JSON line, at once; --resume continues a stopped batch without paying twice.
    """
    if raise_budget and budget is None:
        raise CliError("--raise-budget needs --budget N: the new budget")
    if retry_possibly_charged and not resume:
        raise CliError("--retry-possibly-charged applies with --resume only")
    if group is not None and redis_url is None:
        raise CliError("--account needs --redis URL (or SEARCHCANS_REDIS_URL): the shared Redis")
    if group is None and redis_url is not None:
        source = click.get_current_context().get_parameter_source("redis_url")
        if source is not click.core.ParameterSource.ENVIRONMENT:
            raise CliError("--redis needs --account NAME: the group every worker shares")
        redis_url = None  # SEARCHCANS_REDIS_URL alone does not make this run shared
    defaults: dict[str, Any] = {}
    if engine is not None:
        defaults["engine"] = engine
    if proxy is not None:
        defaults["proxy"] = proxy
    unknown = set(defaults) - set(option_fields(kind))
    if unknown:
        option = "--engine" if "engine" in unknown else "--proxy"
        raise CliError(f"{option} does not apply to --kind {kind}")
    spec = BatchSpec(
        kind=kind,
        input=None if input_path == "-" else Path(input_path),
        input_format=input_format,
        fields=_fields(kind, fields),
        export_unfinished=export_unfinished,
        out=out,
        resume=resume,
        retry_possibly_charged=retry_possibly_charged,
        budget=budget,
        raise_budget=raise_budget,
        floor=floor,
        lanes=lanes,
        redis_url=redis_url,
        group=group,
        fail_fast=fail_fast,
        defaults=defaults,
        progress="plain" if settings.verbose and progress == "auto" else progress,
        progress_interval=progress_every,
        title=kind,
    )
    return run_batch_command(settings, spec)


def _fields(kind: str, option: str | None) -> tuple[str, ...] | None:
    """--fields as a tuple, each name checked against what a result of ``kind`` has."""
    if option is None:
        return None
    fields = tuple(name.strip() for name in option.split(",") if name.strip())
    known = RESULT_FIELDS[kind]
    unknown = [name for name in fields if name.partition(".")[0] not in known]
    if unknown or not fields:
        raise CliError(
            f"--fields: no field {unknown[0] if unknown else option!r} in a {kind} result; "
            f"fields: {', '.join(sorted(known))}"
        )
    return fields


def run_batch_command(
    settings: Settings, spec: BatchSpec, *, stdin: IO[bytes] | None = None
) -> int:
    """Run ``spec`` with progress on stderr and the report at the end; the exit code."""
    scrub = settings.scrub()
    console = make_console(stderr=True, scrub=scrub)
    events = EventCounter()

    async def main() -> int:
        client = settings.client(on_event=events)
        interrupts = Interrupts(lambda message: console.print(Text(message), style="yellow"))
        async with client:
            with interrupts.installed():
                run = await run_batch(
                    client,
                    spec,
                    console=console,
                    events=events,
                    interrupts=interrupts,
                    scrub=scrub,
                    stdin=stdin or sys.stdin.buffer,
                    stdout=sys.stdout,
                )
        print_report(console, run)
        message = stop_message(run)
        if message is not None and run.exit_code in (
            ExitCode.USAGE,
            ExitCode.BILLING,
            ExitCode.AUTH,
            ExitCode.ERROR,
        ):
            error_line(scrub(message))
        return run.exit_code

    return run_command(settings, main)
