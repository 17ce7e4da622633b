"""The ``searchcans-async`` command group: global options and the subcommands.

Built on click (argument parsing, help, exit codes) and rich (tables and the live
progress display): well-kept libraries rather than hand-rolled parsing and redrawing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._client import DEFAULT_BASE_URL, ENV_VAR
from .._version import __version__
from .batch import batch
from .calls import account, read, search
from .demo import demo
from .emulator import emulator
from .errors import CliError, ExitCode
from .mcp import mcp_command
from .monitor import monitor_command
from .settings import ALLOW_KEY_ARGUMENT, PROG, Settings, error_line, setup_logging

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["cli"]


class _Group(click.Group):
    """Every failure ends as one line on stderr and a documented exit code."""

    def main(  # type: ignore[override]  # same parameters; always exits (or returns the code)
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> int:
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) else ExitCode.OK
        except click.UsageError as error:
            hint = f" (see '{PROG} --help')"
            if error.ctx is not None and error.ctx.command_path:
                hint = f" (see '{error.ctx.command_path} --help')"
            error_line(error.format_message() + hint)
            code = ExitCode.USAGE
        except CliError as error:
            error_line(str(error))
            code = error.exit_code
        except click.ClickException as error:
            error_line(error.format_message())
            code = error.exit_code
        except click.Abort:
            error_line("interrupted")
            code = ExitCode.CANCELLED
        except BrokenPipeError:  # e.g. `... | head`: the reader left; nothing to report
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115  # silences the exit flush
            code = ExitCode.ERROR
        if standalone_mode:
            sys.exit(int(code))
        return int(code)


@click.group(
    PROG,
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--base-url",
    envvar="SEARCHCANS_BASE_URL",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The API's address (env SEARCHCANS_BASE_URL); e.g. an emulator's.",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SEARCHCANS_API_KEY_FILE",
    help=f"Read the API key from this file (env SEARCHCANS_API_KEY_FILE). Default: ${ENV_VAR}.",
)
@click.option(
    "--api-key",
    "key_argument",
    metavar="KEY",
    help=f"The key itself: refused unless {ALLOW_KEY_ARGUMENT}=1 (it would stay in your "
    "shell history).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=35.0,
    show_default=True,
    help="Seconds one attempt may take.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=4,
    show_default=True,
    help="Retries of a call that failed without being charged (1010, 429, 5xx, ...).",
)
@click.option("-v", "--verbose", count=True, help="Log what the client does (-vv: more).")
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
@click.pass_context
def cli(
    ctx: click.Context,
    *,
    base_url: str,
    api_key_file: Path | None,
    key_argument: str | None,
    timeout: float,
    retries: int,
    verbose: int,
) -> None:
    """Search and read the web with SearchCans, keeping every Parallel Lane busy.

    The API key comes from SEARCHCANS_API_KEY or --api-key-file and is never shown.
    Try it offline first: `searchcans-async demo`.
    """
    given = ctx.get_parameter_source("base_url")
    source = "--base-url"  # where the address came from, for the messages that quote it
    if given is click.core.ParameterSource.ENVIRONMENT:
        source = "SEARCHCANS_BASE_URL"
    elif given is click.core.ParameterSource.DEFAULT:
        source = "default"
    settings = Settings(
        base_url, api_key_file, key_argument, timeout, retries, verbose, base_url_source=source
    )
    ctx.obj = settings
    setup_logging(settings, ctx)


for command in (account, search, read, batch, emulator, demo, monitor_command, mcp_command):
    cli.add_command(command)
