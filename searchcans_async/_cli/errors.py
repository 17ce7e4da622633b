"""Exit codes and the one error the commands raise: a line for stderr and its code."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

from .._client import (
    AuthenticationError,
    CreditsExhausted,
    InsufficientCreditsError,
    NoLanesError,
)
from .._lanes import StopReason
from .jsonl import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["EXIT_BY_STOP", "CliError", "ExitCode", "exit_code_for_error"]


class ExitCode(enum.IntEnum):
    """The command's exit status; one per batch stop reason (documented in the CLI docs)."""

    OK = 0
    """Done: every batch item succeeded (or the one call did)."""
    FAILED_ITEMS = 1
    """The batch read its whole input, but some items failed (their errors are in the output)."""
    USAGE = 2
    """Bad usage or bad input: a wrong option, no API key, a malformed input line."""
    BUDGET = 3
    """The credit budget ran out before the end (``--budget``/``--floor``, or the account)."""
    BILLING = 4
    """The server refused for billing (HTTP 402), or the account has no Parallel Lanes."""
    AUTH = 5
    """The server rejected the API key (HTTP 401/403)."""
    CANCELLED = 6
    """Stopped by Ctrl-C (or SIGTERM)."""
    ERROR = 7
    """Anything else: the server is unreachable, ``--fail-fast`` stopped, an output error."""
    WARNING = 8
    """``monitor --exit-on-warning``: credits fell under the threshold or run out soon."""
    LOCKED = 9
    """Another ``batch`` is writing the same ``--out`` (its lock file ``OUT.lock`` is held)."""


EXIT_BY_STOP: Final[Mapping[StopReason, ExitCode]] = {
    StopReason.COMPLETED: ExitCode.OK,
    StopReason.BUDGET: ExitCode.BUDGET,
    StopReason.BILLING: ExitCode.BILLING,
    StopReason.AUTH: ExitCode.AUTH,
    StopReason.CANCELLED: ExitCode.CANCELLED,
    StopReason.ERROR: ExitCode.ERROR,
}


class CliError(Exception):
    """One line for stderr and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for_error(error: BaseException) -> ExitCode:
    """The exit code of a command that failed with ``error``."""
    if isinstance(error, AuthenticationError):
        return ExitCode.AUTH
    if isinstance(error, InsufficientCreditsError | NoLanesError):
        return ExitCode.BILLING
    if isinstance(error, CreditsExhausted):
        return ExitCode.BUDGET
    if isinstance(error, InputError):
        return ExitCode.USAGE
    return ExitCode.ERROR
