"""The ``searchcans-async`` command (``python -m searchcans_async`` too).

The command needs the ``cli`` extra (click for the arguments, rich for the tables and
the live progress); without it this entry point says how to install it instead of
failing with a traceback. Modules:

* ``app``: the command group and its global options; ``settings``: the API key, the
  client, and turning every failure into one line and an exit code (``errors``).
* ``calls``: ``account``, ``search``, ``read``; ``batch`` and ``run``: the batch command;
  ``jsonl``: its input and output files; ``progress``: its live display;
  ``output``: what is printed; ``demo`` and ``emulator``: the offline SearchCans.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the ``searchcans-async`` command (``--help`` lists its subcommands)."""
    try:
        from .app import cli  # noqa: PLC0415  # click and rich are an optional extra
    except ImportError as error:
        if error.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"searchcans-async: error: the command line needs {error.name}: "
            "pip install 'searchcans-async[cli]'\n"
        )
        raise SystemExit(2) from None
    cli.main(prog_name="searchcans-async")
