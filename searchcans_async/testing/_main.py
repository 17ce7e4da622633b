"""Running the emulator as a process: `python -m searchcans_async.testing`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from ._config import AccountSpec, KeySpec
from ._emulator import Emulator
from ._faults import FAULT_KINDS, Fault, Faults

__all__ = ["emulator_from_options", "main", "parse_fault_rate", "serve"]

DEFAULT_PORT = 8765
_EXIT_ERROR = 7  # as `searchcans-async emulator` exits when it cannot listen (ExitCode.ERROR)


def parse_fault_rate(option: str) -> tuple[Fault, float]:
    """Parse a `KIND=RATE` option (e.g. `rate_limited=0.05`) into a default fault and its rate.

    Example:
        >>> parse_fault_rate("server_error=0.1")
        (Fault.server_error(), 0.1)
    """
    kind, separator, rate_text = option.partition("=")
    kind = kind.strip()
    if not separator or kind not in FAULT_KINDS:
        raise ValueError(
            f"expected KIND=RATE with KIND one of {sorted(FAULT_KINDS)}, got {option!r}"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"the rate in {option!r} must be a number in [0, 1]") from None
    return Fault.from_name(kind), rate


def emulator_from_options(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    credits: int = 10_000,
    permanent_credits: int = 0,
    lanes: int = 3,
    keys: int = 1,
    seed: int = 0,
    latency: float = 0.003,
    faults: Sequence[str] | Mapping[Fault, float] = (),
    log_limit: int | None = 10_000,
) -> Emulator:
    """Build an `Emulator` from command-line style options (one account, `keys` keys).

    `faults` are `KIND=RATE` strings or a mapping of faults to rates. The keys are named
    `key1`, `key2`, ... and generated from the seed. `log_limit` bounds the request log, since
    a process may run for long.

    Example:
        >>> emu = emulator_from_options(port=0, keys=2, faults=["lane_busy=0.1"])
        >>> len(emu.keys)
        2
    """
    if keys < 1:
        raise ValueError(f"keys must be >= 1, got {keys}")
    rates = dict(faults) if isinstance(faults, Mapping) else dict(map(parse_fault_rate, faults))
    account = AccountSpec(
        credits=credits,
        permanent_credits=permanent_credits,
        lanes=lanes,
        keys=[KeySpec(name=f"key{index}") for index in range(1, keys + 1)],
    )
    return Emulator(
        [account],
        latency=latency,
        faults=Faults(rates=rates) if rates else None,
        seed=seed,
        host=host,
        port=port,
        log_limit=log_limit,
    )


async def serve(emulator: Emulator, *, ready: Callable[[Emulator], None] | None = None) -> None:
    """Serve `emulator` until cancelled; call `ready(emulator)` once it listens.

    An emulator that is not running yet is started here and closed on the way out; one that
    already runs is left running.

    Example:
        >>> task = asyncio.create_task(serve(Emulator(), ready=print))  # doctest: +SKIP
        >>> task.cancel()  # doctest: +SKIP
    """
    owned = not emulator.running
    if owned:
        await emulator.start()
    try:
        if ready is not None:
            ready(emulator)
        await asyncio.Event().wait()
    finally:
        if owned:
            await emulator.aclose()


def _announce(emulator: Emulator) -> None:
    sys.stdout.write(
        f"SearchCans emulator listening on {emulator.base_url}\n"
        f"SEARCHCANS_BASE_URL={emulator.base_url}\n"
        f"SEARCHCANS_API_KEY={emulator.api_key}\n"
    )
    sys.stdout.flush()


async def _serve_until_signalled(emulator: Emulator) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serve(emulator, ready=_announce))
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C raises instead
            loop.add_signal_handler(signum, task.cancel)
            installed.append(signum)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m searchcans_async.testing",
        description="Run a SearchCans-compatible emulator until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = a free one)")
    parser.add_argument("--credits", type=int, default=10_000, help="paid credits")
    parser.add_argument("--permanent-credits", type=int, default=0, help="bonus credits")
    parser.add_argument("--lanes", type=int, default=3, help="Parallel Lanes (concurrent)")
    parser.add_argument("--keys", type=int, default=1, help="number of API keys")
    parser.add_argument("--seed", type=int, default=0, help="seed for keys, latency and faults")
    parser.add_argument("--latency", type=float, default=0.003, help="fixed latency, seconds")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"inject a fault at a rate (repeatable); kinds: {', '.join(sorted(FAULT_KINDS))}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator process; print its base URL and a key; exit 0 on SIGINT/SIGTERM.

    Example:
        >>> main(["--port", "0", "--lanes", "5"])  # doctest: +SKIP
    """
    parser = _parser()
    options = parser.parse_args(argv)
    try:
        emulator = emulator_from_options(
            host=options.host,
            port=options.port,
            credits=options.credits,
            permanent_credits=options.permanent_credits,
            lanes=options.lanes,
            keys=options.keys,
            seed=options.seed,
            latency=options.latency,
            faults=options.fault,
        )
    except ValueError as error:
        parser.error(str(error))
    try:
        asyncio.run(_serve_until_signalled(emulator))
    except OSError as error:  # the port is taken, or the address is not this machine's
        sys.stderr.write(
            f"{parser.prog}: error: cannot listen on {options.host}:{options.port}: "
            f"{error.strerror or error}\n"
        )
        return _EXIT_ERROR
    return 0
