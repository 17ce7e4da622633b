"""Command line entry point (filled in by the CLI work)."""

from __future__ import annotations


def main() -> None:
    """Run the `searchcans-async` command."""
    raise SystemExit("searchcans-async: the command line is not built yet")
