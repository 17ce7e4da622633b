"""The global options every subcommand shares: service, API key, retries, logging.

The key comes from ``--api-key-file``, else ``SEARCHCANS_API_KEY``; a plain ``--api-key``
is refused unless ``SEARCHCANS_ALLOW_KEY_ARGUMENT=1`` (it would stay in the shell history).
Whatever the source, the key is never printed: every stream the command writes to goes
through a scrubber that would replace it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs
import click
from rich.console import Console

from .._client import (
    ENV_VAR,
    AuthenticationError,
    RetryPolicy,
    SearchCansError,
    TransportError,
)
from .._lanes import SearchCans
from .errors import CliError, ExitCode, exit_code_for_error
from .jsonl import InputError
from .output import Scrub, ScrubbedStream, scrubbed

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from .._events import EventHook

__all__ = [
    "ALLOW_KEY_ARGUMENT",
    "PROG",
    "Settings",
    "error_line",
    "make_console",
    "pass_settings",
    "run_command",
    "setup_logging",
]

PROG: Final = "searchcans-async"
ALLOW_KEY_ARGUMENT: Final = "SEARCHCANS_ALLOW_KEY_ARGUMENT"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def error_line(message: str) -> None:
    click.echo(f"{PROG}: error: {one_line(message)}", err=True)


@attrs.frozen
class Settings:
    """The global options, shared by the subcommands."""

    base_url: str
    key_file: Path | None
    key_argument: str | None = attrs.field(repr=False)
    timeout: float
    retries: int
    verbose: int
    # Where base_url came from, for messages: "--base-url", "SEARCHCANS_BASE_URL" or "default".
    base_url_source: str = "--base-url"

    def api_key(self) -> str:
        """The key from --api-key-file, an allowed --api-key, or SEARCHCANS_API_KEY."""
        if self.key_file is not None and self.key_argument is not None:
            raise CliError("give the key once: --api-key-file or --api-key, not both")
        if self.key_argument is not None:
            if os.environ.get(ALLOW_KEY_ARGUMENT) != "1":
                raise CliError(
                    "--api-key is refused: a key on the command line stays in your shell "
                    f"history and shows in `ps`; set {ENV_VAR} or use --api-key-file "
                    f"(or set {ALLOW_KEY_ARGUMENT}=1 to allow it anyway)"
                )
            return self.key_argument.strip()
        if self.key_file is not None:
            return _read_key_file(self.key_file)
        key = os.environ.get(ENV_VAR, "").strip()
        if not key:
            raise CliError(
                f"no API key: set the {ENV_VAR} environment variable or pass --api-key-file PATH"
            )
        return key

    def scrub(self) -> Scrub:
        """A scrubber for the key, if one is known (never fails)."""
        try:
            return Scrub(self.api_key())
        except CliError:
            return Scrub(os.environ.get(ENV_VAR))

    def client(self, on_event: EventHook | None = None) -> SearchCans:
        """A client for the configured service and key."""
        key = self.api_key()
        try:
            return SearchCans(
                key,
                base_url=self.base_url,
                timeout=self.timeout,
                retry=RetryPolicy(attempts=self.retries + 1),
                on_event=on_event,
            )
        except AuthenticationError as error:  # an unusable key (e.g. whitespace in it)
            raise CliError(error.message) from None
        except ValueError as error:  # the base URL
            raise CliError(f"--base-url: {error}") from None

    def describe(self, error: SearchCansError) -> str:
        """An error's one line, with a hint where the fix is on the user's side."""
        text = str(error)
        if isinstance(error, TransportError) and error.charged is False:
            source = self.base_url_source
            if source == "default":  # the service's own address: the network is to blame
                return f"cannot reach {self.base_url}: {text} (check the network)"
            return (
                f"cannot reach {self.base_url} (from {source}): {text} "
                f"(check {source} or the network)"
            )
        if isinstance(error, AuthenticationError):
            return f"{text} (check {ENV_VAR} or --api-key-file)"
        return text


def _read_key_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise CliError(f"cannot read the key file {path}: {reason}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise CliError(f"the key file {path} must hold the API key alone, on one line")
    return lines[0]


def make_console(*, stderr: bool, scrub: Scrub) -> Console:
    stream: IO[str] = sys.stderr if stderr else sys.stdout
    return Console(file=scrubbed(stream, scrub), highlight=False, soft_wrap=True)


def run_command(settings: Settings, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """``asyncio.run(main())``, every failure turned into one line and an exit code."""
    scrub = settings.scrub()
    try:
        return asyncio.run(main())
    except CliError as error:  # messages may quote inputs: mask the key there too
        raise CliError(scrub(str(error)), error.exit_code) from None
    except click.ClickException:
        raise
    except InputError as error:
        raise CliError(scrub(str(error))) from None
    except SearchCansError as error:
        raise CliError(scrub(settings.describe(error)), exit_code_for_error(error)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise CliError("interrupted; nothing more was sent", ExitCode.CANCELLED) from None
    except Exception as error:  # noqa: BLE001  # a bug: one line, never a traceback dump
        if settings.verbose:
            sys.stderr.write(scrub("".join(traceback.format_exception(error))))
        raise CliError(
            scrub(f"unexpected {type(error).__name__}: {error} (run with -v for the traceback)"),
            ExitCode.ERROR,
        ) from None


def setup_logging(settings: Settings, ctx: click.Context) -> None:
    if not settings.verbose:
        return
    handler = logging.StreamHandler(ScrubbedStream(sys.stderr, settings.scrub()))
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s %(message)s"))
    logger = logging.getLogger("searchcans_async")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if settings.verbose > 1 else logging.INFO)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


pass_settings = click.make_pass_decorator(Settings)
