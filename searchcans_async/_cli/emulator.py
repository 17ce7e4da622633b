"""``searchcans-async emulator``: the offline SearchCans as a process, until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Any

import click

from ..testing import FAULT_KINDS, emulator_from_options
from .errors import CliError, ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..testing import Emulator

__all__ = ["emulator", "serve_emulator", "serve_until"]


async def serve_until(
    emulator: Emulator, stop: asyncio.Event, echo: Callable[[str], None], *, address: str = ""
) -> None:
    """Serve ``emulator`` until ``stop`` is set, announcing its URL and key first."""
    try:
        await emulator.start()
    except OSError as error:
        where = f" on {address}" if address else ""
        message = f"cannot listen{where}: {error.strerror or error}"
        raise CliError(message, ExitCode.ERROR) from None
    try:
        stats = emulator.stats()
        echo(
            f"SearchCans emulator listening on {emulator.base_url} "
            f"({stats.lanes} lanes, {stats.remain} credits, {len(emulator.keys)} key(s))"
        )
        echo(f"export SEARCHCANS_BASE_URL={emulator.base_url}")
        for number, key in enumerate(emulator.keys, 1):
            prefix = "" if number == 1 else f"# key {number}: "
            echo(f"{prefix}export SEARCHCANS_API_KEY={key}")
        echo("Press Ctrl-C to stop.")
        await stop.wait()
    finally:
        await emulator.aclose()
    echo("emulator stopped")


def serve_emulator(**options: Any) -> int:
    """``searchcans-async emulator``: serve until SIGINT/SIGTERM."""
    try:
        emulator = emulator_from_options(**options)
    except ValueError as error:
        raise CliError(str(error)) from None

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        address = f"{options.get('host', '127.0.0.1')}:{options.get('port', '')}"
        await serve_until(emulator, stop, click.echo, address=address)
        return ExitCode.OK

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:  # pragma: no cover  # only where signal handlers are unsupported
        return ExitCode.OK


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port; 0 picks a free one.",
)
@click.option(
    "--credits", type=click.IntRange(min=0), default=10_000, show_default=True, help="Paid credits."
)
@click.option(
    "--permanent-credits",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Bonus credits, spent first.",
)
@click.option(
    "--lanes",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Parallel Lanes (concurrent).",
)
@click.option(
    "--keys", type=click.IntRange(min=1), default=1, show_default=True, help="How many API keys."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for keys, latency and faults."
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.003,
    show_default=True,
    help="Seconds per answer.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="Inject a fault at a rate, e.g. lane_busy=0.05 (repeatable). Kinds: "
    + ", ".join(sorted(FAULT_KINDS))
    + ".",
)
def emulator(
    *,
    host: str,
    port: int,
    credits: int,
    permanent_credits: int,
    lanes: int,
    keys: int,
    seed: int,
    latency: float,
    faults: tuple[str, ...],
) -> int:
    """Serve an offline SearchCans emulator until Ctrl-C; prints its URL and key."""
    return serve_emulator(
        host=host,
        port=port,
        credits=credits,
        permanent_credits=permanent_credits,
        lanes=lanes,
        keys=keys,
        seed=seed,
        latency=latency,
        faults=faults,
    )
