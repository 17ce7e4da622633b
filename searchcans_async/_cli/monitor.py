"""``searchcans-async monitor``: watch the account live, serve ``/metrics``, warn in time.

Why one module: the command's options, its watch loop and its exit codes make one command;
the watch itself is _monitor/watch.py.

A subcommand of the ``searchcans-async`` group: it takes the group's options (the key
from ``SEARCHCANS_API_KEY`` or ``--api-key-file``, ``--base-url``, ``--timeout``,
``--retries``, ``-v``) and its conventions (one line on stderr per failure, documented
exit codes, the key scrubbed from every stream).

Exit codes: 0 stopped by Ctrl-C or SIGTERM (a monitor's normal end) or ``--once`` done;
2 usage; 5 the key was refused; 7 anything else (unreachable with ``--once``, the
metrics port taken); 8 ``--exit-on-warning`` and a credits warning was raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .._monitor import AccountWatch, format_duration
from .errors import CliError, ExitCode
from .settings import PROG, Settings, make_console, pass_settings, run_command

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from rich.console import Console, RenderableType

    from .._client import Account, ApiKey, SearchCansError
    from .._clock import Clock
    from .._monitor import AccountReading, CreditWarning
    from .._monitor.prometheus import PrometheusMetrics

__all__ = ["EXIT_WARNING", "MonitorOptions", "monitor_command", "run_monitor"]

EXIT_WARNING: Final = ExitCode.WARNING
"""Exit code of ``monitor --exit-on-warning`` when a credits warning was raised."""

Display = Literal["live", "plain"]
_LIVE_PERIOD: Final = 1.0  # seconds between two frames (the ages and countdowns move)


def one_line(text: str) -> str:
    """``text`` with its whitespace runs (newlines included) made single spaces."""
    return " ".join(text.split())


@attrs.frozen
class MonitorOptions:
    """What ``monitor`` was asked to do (its options, checked)."""

    interval: float = 30.0
    warn_below: int | None = None
    warn_runout: float | None = None
    window: float = 600.0
    exit_on_warning: bool = False
    once: bool = False
    display: Display = "plain"
    metrics_url: str | None = None


# -- what is shown ----------------------------------------------------------------------------


def quota_text(key: ApiKey) -> str:
    """A key's quota in words: ``"shared pool"`` when it draws on the account's credits."""
    text = f"{key.remain} of {key.total} left" if key.has_own_quota else "shared pool"
    return text if key.active else f"{text} (inactive)"


def burn_text(reading: AccountReading) -> str | None:
    """The burn rate and the run-out time in words (``None`` before there is a rate)."""
    rate = reading.burn_rate
    if rate is None:
        return None
    if rate == 0:
        return "burn 0/s (idle)"
    return f"burn {rate:.2f}/s · runs out in {format_duration(reading.runout or 0)}"


def plain_line(reading: AccountReading) -> str:
    """One line per reading, for logs and pipes (no personal field, no key)."""
    account = reading.account
    keys = ", ".join(f"{key.name or key.id}: {quota_text(key)}" for key in account.keys)
    parts = [
        f"remain {account.remain}",
        f"month {account.month}",
        f"permanent {account.permanent_remain}",
        f"lanes {account.concurrent}",
    ]
    burn = burn_text(reading)
    if burn is not None:
        parts.append(burn)
    if keys:
        parts.append(f"keys: {keys}")
    return f"[{time.strftime('%H:%M:%S')}] " + " · ".join(parts)


class _LiveView:
    """The live display: the account, the per-key quotas and the watch's state."""

    def __init__(self, watch: AccountWatch, options: MonitorOptions) -> None:
        self._watch = watch
        self._options = options

    def render(self) -> Group:
        watch = self._watch
        parts: list[RenderableType] = []
        reading = watch.latest
        summary = Table(title="SearchCans account", show_header=False, title_justify="left")
        summary.add_column(style="bold")
        summary.add_column(justify="right")
        summary.add_column(style="dim")
        if reading is None:
            summary.add_row("credits left", "…", "first check")
        else:
            self._account_rows(summary, reading)
        summary.add_row("status", *self._status())
        parts.append(summary)
        if reading is not None and reading.account.keys:
            keys = Table(title="API keys", title_justify="left")
            for column in ("name", "quota"):
                keys.add_column(column)
            for key in reading.account.keys:
                keys.add_row(Text(key.name or key.id), Text(quota_text(key)))
            parts.append(keys)
        warnings = reading.warnings if reading is not None else ()
        parts.extend(Text(f"warning: {w.message}", style="bold red") for w in warnings)
        footer = f"every {format_duration(self._options.interval)} · Ctrl-C to stop"
        if self._options.metrics_url:
            footer = f"metrics on {self._options.metrics_url} · {footer}"
        parts.append(Text(footer, style="dim"))
        return Group(*parts)

    @staticmethod
    def _account_rows(summary: Table, reading: AccountReading) -> None:
        account = reading.account
        runout = "not spending" if reading.runout is None else format_duration(reading.runout)
        rate = "measuring" if reading.burn_rate is None else f"{reading.burn_rate:.2f}/s"
        for row in (
            ("credits left", f"{account.remain:,}", "remain, permanent credits included"),
            ("spent this month", f"{account.month:,}", "month"),
            ("permanent credits", f"{account.permanent_remain:,}", "spent first"),
            ("Parallel Lanes", f"{account.concurrent}", "concurrent"),
            ("burn rate", rate, "credits per second, recent"),
            ("runs out in", runout, "at that rate"),
        ):
            summary.add_row(*(Text(cell) for cell in row))

    def _status(self) -> tuple[Text, Text]:
        watch = self._watch
        now = watch.clock.now()
        due = watch.next_check_at
        upcoming = "" if due is None else f"next in {format_duration(max(0.0, due - now))}"
        if watch.last_error is not None:
            failed = f"check failed ({watch.failures} in a row)"
            return Text(failed, style="red"), Text(one_line(str(watch.last_error)))
        if watch.latest is None:
            return Text("checking"), Text("")
        ago = format_duration(now - watch.latest.at)
        return Text(f"checked {ago} ago"), Text(upcoming)


# -- the monitor itself ----------------------------------------------------------------------


async def run_monitor(
    source: Callable[[], Awaitable[Account]],
    options: MonitorOptions,
    *,
    console: Console,
    warn: Callable[[str], None],
    metrics: PrometheusMetrics | None = None,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
) -> int:
    """Watch the account as ``options`` say until ``stop`` is set; return the exit code.

    ``console`` shows the readings (live or plain lines); ``warn`` gets each credits
    warning as one line. Errors reading the account with ``--once``, and a refused key
    at any time, are raised.
    """
    monitor = _Monitor(options, console, warn, stop or asyncio.Event())
    watch = AccountWatch(
        source,
        interval=options.interval,
        warn_below=options.warn_below,
        warn_runout=options.warn_runout,
        window=options.window,
        on_reading=monitor.on_reading,
        on_warning=monitor.on_warning,
        on_error=monitor.on_error,
        metrics=metrics,
        clock=clock,
    )
    monitor.watch = watch
    if options.once:
        await watch.poll()
    else:
        await monitor.run(watch)
    return monitor.exit_code()


class _Monitor:
    """The watch's callbacks and the display between them (``run_monitor``'s state)."""

    def __init__(
        self,
        options: MonitorOptions,
        console: Console,
        warn: Callable[[str], None],
        stop: asyncio.Event,
    ) -> None:
        self.options = options
        self.console = console
        self.warn = warn
        self.stop = stop
        self.raised: list[CreditWarning] = []
        self.watch: AccountWatch | None = None
        self.watcher: asyncio.Task[AccountReading | None] | None = None
        self.view: _LiveView | None = None
        self.live: Live | None = None

    def exit_code(self) -> int:
        return EXIT_WARNING if self.raised and self.options.exit_on_warning else ExitCode.OK

    async def run(self, watch: AccountWatch) -> None:
        """Check until stopped (a signal, a warning with ``exit_on_warning``, a refused key)."""
        if self.options.display == "live":
            self.view = _LiveView(watch, self.options)
            self.live = Live(self.view.render(), console=self.console, auto_refresh=False)
        watcher = self.watcher = asyncio.ensure_future(watch.run())
        stopper = asyncio.ensure_future(self.stop.wait())
        tasks: list[asyncio.Future[Any]] = [watcher, stopper]
        with self.live if self.live is not None else contextlib.nullcontext():
            if self.live is not None:
                tasks.append(asyncio.ensure_future(self._refresh()))
            try:
                await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.redraw()
        if watcher.done() and not watcher.cancelled():
            watcher.result()  # a refused key: raised for the exit code

    def redraw(self) -> bool:
        """Draw a live frame, if the display is live."""
        if self.live is None or self.view is None:
            return False
        self.live.update(self.view.render(), refresh=True)
        return True

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(_LIVE_PERIOD)  # wall time: only the display's countdowns move
            self.redraw()

    def _halt_if_stopped(self) -> None:
        # Called from inside the watch: no further check once a stop was asked for.
        if self.stop.is_set() and self.watcher is not None:
            self.watcher.cancel()

    def on_reading(self, reading: AccountReading) -> None:
        if not self.redraw():
            self.console.print(Text(plain_line(reading)))
        self._halt_if_stopped()

    def on_warning(self, warning: CreditWarning) -> None:
        self.raised.append(warning)
        self.warn(warning.message)
        if self.options.exit_on_warning:
            self.stop.set()
            self._halt_if_stopped()

    def on_error(self, error: SearchCansError) -> None:
        watch = self.watch
        if not self.redraw() and watch is not None:
            due = watch.next_check_at
            left = (
                "" if due is None else f"; next check in {format_duration(due - watch.clock.now())}"
            )
            stamp = time.strftime("%H:%M:%S")
            self.console.print(Text(f"[{stamp}] account check failed: {error}{left}"))
        self._halt_if_stopped()


# -- the click command -------------------------------------------------------------------------


def _check_options(
    *,
    once: bool,
    metrics_port: int | None,
    warn_below: int | None,
    warn_runout: float | None,
    exit_on_warning: bool,
) -> None:
    if once and metrics_port is not None:
        raise CliError(
            "--once checks the account once and exits: there is nothing to serve with "
            "--metrics-port (drop one of them)"
        )
    if once and warn_runout is not None:
        raise CliError(
            "--warn-runout needs a burn rate, which takes two checks or more: "
            "drop --once, or use --warn-below"
        )
    if exit_on_warning and warn_below is None and warn_runout is None:
        raise CliError(
            "--exit-on-warning needs a warning to exit on: "
            "add --warn-below CREDITS and/or --warn-runout SECONDS"
        )


def _metrics_class() -> type[PrometheusMetrics]:
    try:
        from .._monitor import prometheus as _prometheus  # noqa: PLC0415  # prometheus-client is an optional extra
    except ImportError as error:
        if not (error.name or "").startswith("prometheus_client"):
            raise
        raise CliError(
            "--metrics-port needs prometheus-client: pip install 'searchcans-async[monitor]'"
        ) from None
    return _prometheus.PrometheusMetrics


@click.command("monitor")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between two account checks (one request at a time; longer after errors).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics on http://HOST:PORT/metrics (0: any free port). "
    "Needs the monitor extra.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server binds (anything else exposes your account's figures).",
)
@click.option(
    "--warn-below",
    type=click.IntRange(min=0),
    metavar="CREDITS",
    help="Warn when the account's remain falls under CREDITS.",
)
@click.option(
    "--warn-runout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Warn when, at the recent burn rate, the credits would run out within SECONDS.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds of history behind the burn rate.",
)
@click.option(
    "--exit-on-warning",
    is_flag=True,
    help=f"Exit with code {EXIT_WARNING} at the first warning (for scripts and cron).",
)
@click.option("--once", is_flag=True, help="Check the account once, print one line and exit.")
@click.option(
    "--display",
    type=click.Choice(["auto", "live", "plain"]),
    default="auto",
    show_default=True,
    help="A live view on a terminal, one line per check otherwise (auto).",
)
@pass_settings
def monitor_command(
    settings: Settings,
    *,
    interval: float,
    metrics_port: int | None,
    metrics_host: str,
    warn_below: int | None,
    warn_runout: float | None,
    window: float,
    exit_on_warning: bool,
    once: bool,
    display: str,
) -> int:
    """Watch credits, lanes and key quotas live; serve /metrics; warn before credits run out.

    Checks the account every --interval seconds (free of charge). Exit codes: 0 stopped
    (Ctrl-C, SIGTERM) or --once done, 2 usage, 5 key refused, 7 other error (e.g. the
    account unreachable with --once, the metrics port taken), 8 a warning with
    --exit-on-warning.
    """
    _check_options(
        once=once,
        metrics_port=metrics_port,
        warn_below=warn_below,
        warn_runout=warn_runout,
        exit_on_warning=exit_on_warning,
    )
    metrics_class = _metrics_class() if metrics_port is not None else None
    scrub = settings.scrub()
    console = make_console(stderr=False, scrub=scrub)
    if display == "auto":
        display = "live" if console.is_terminal and not once else "plain"

    def warn(message: str) -> None:
        click.echo(scrub(f"{PROG}: warning: {one_line(message)}"), err=True)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in () if once else (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)  # Ctrl-C ends a monitor cleanly
        metrics = metrics_class() if metrics_class is not None else None
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(settings.client(on_event=metrics))
            url = None
            if metrics is not None and metrics_port is not None:
                url = await _serve(stack, metrics, metrics_port, metrics_host)
                click.echo(f"{PROG}: serving metrics on {url}", err=True)
            options = MonitorOptions(
                interval=interval,
                warn_below=warn_below,
                warn_runout=warn_runout,
                window=window,
                exit_on_warning=exit_on_warning,
                once=once,
                display="live" if display == "live" else "plain",
                metrics_url=url,
            )
            return await run_monitor(
                client.account, options, console=console, warn=warn, metrics=metrics, stop=stop
            )

    return run_command(settings, main)


async def _serve(
    stack: contextlib.AsyncExitStack, metrics: PrometheusMetrics, port: int, host: str
) -> str:
    from .._monitor.prometheus import MetricsServer  # noqa: PLC0415  # the optional extra, checked

    server = MetricsServer(metrics, port, host=host)
    try:
        await stack.enter_async_context(server)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CliError(f"cannot serve metrics on {host}:{port}: {reason}", ExitCode.ERROR) from None
    return server.url
