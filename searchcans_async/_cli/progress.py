"""The batch command's progress: a live rich display on a terminal, plain lines elsewhere."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import TYPE_CHECKING, Final, Literal, Self

import attrs
from rich.console import Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .._events import RetryScheduled
from .._monitor import format_duration

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from rich.console import Console

    from .._events import Event

__all__ = ["BatchProgress", "EventCounter", "ProgressMode", "Snapshot"]

ProgressMode = Literal["auto", "live", "plain", "off"]

_LIVE_PERIOD: Final = 0.1  # seconds between two frames of the live display
_RATE_WINDOW: Final = 10.0  # seconds of history behind the rate and the ETA


class EventCounter:
    """The client's ``on_event`` hook, counting what the progress display shows."""

    def __init__(self) -> None:
        self.retries = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, RetryScheduled):
            self.retries += 1


@attrs.frozen
class Snapshot:
    """One reading of a running batch, for one frame or line of progress."""

    done: int
    total: int | None
    failed: int
    retries: int
    lanes: int
    plan_lanes: int
    in_flight: int
    spent: int
    possibly_charged: int
    budget_left: int
    note: str = ""


class _RateMeter:
    """Items per second over the last few seconds."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, now: float, done: int) -> float | None:
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > _RATE_WINDOW:
            samples.popleft()
        first_time, first_done = samples[0]
        if now - first_time <= 0:
            return None
        return (done - first_done) / (now - first_time)


def stats_text(snapshot: Snapshot, rate: float | None) -> str:
    """The line under the bar (live) or after the count (plain)."""
    lanes = f"lanes {snapshot.in_flight}/{snapshot.plan_lanes} busy"
    if snapshot.lanes < snapshot.plan_lanes:  # lowered for a while after 1010 answers
        # Running work is never interrupted, so more may run than the lowered limit.
        lanes += f" ({snapshot.lanes} in use after a 1010 answer)"
    parts = [
        lanes,
        f"{snapshot.spent} credits spent, {snapshot.budget_left} left",
        f"{snapshot.failed} failed",
        f"{snapshot.retries} retries",
    ]
    if snapshot.possibly_charged:
        parts.insert(2, f"{snapshot.possibly_charged} possibly charged")
    if rate is not None:
        parts.append(f"{rate:.1f}/s")
    if snapshot.note:
        parts.append(snapshot.note)
    return " · ".join(parts)


class BatchProgress:
    """Shows a batch's progress while the ``async with`` block runs.

    ``mode``: ``live`` (a rich display, redrawn 10 times a second), ``plain`` (one line
    every ``interval`` seconds, for logs and pipes), ``off``, or ``auto`` (live when the
    console is a terminal, plain otherwise).
    """

    def __init__(
        self,
        console: Console,
        sample: Callable[[], Snapshot],
        *,
        mode: ProgressMode = "auto",
        interval: float = 2.0,
        title: str = "batch",
    ) -> None:
        if mode == "auto":
            mode = "live" if console.is_terminal else "plain"
        self.mode = mode
        self._console = console
        self._sample = sample
        self._interval = interval
        self._title = title
        self._rate = _RateMeter()
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None
        self._bar: Progress | None = None
        self._bar_task = TaskID(0)
        self._started = 0.0

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        if self.mode == "live":
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                auto_refresh=False,
            )
            self._bar_task = self._bar.add_task(self._title, total=None)
            self._live = Live(
                self._bar,
                console=self._console,
                auto_refresh=False,
                redirect_stdout=False,  # stdout may carry the JSONL output
                redirect_stderr=False,
            )
            self._live.start()
        if self.mode != "off":
            self._task = loop.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._live is not None:
            self.refresh()
            self._live.update(self.final_frame(), refresh=True)  # stays above the report
            self._live.stop()
            self._live = None

    def final_frame(self) -> Group:
        """The last frame: where the batch stopped, without the spinner and the ETA."""
        snapshot = self._sample()
        done = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn(format_duration(self._elapsed())),
            console=self._console,
            auto_refresh=False,
        )
        done.add_task(self._title, total=snapshot.total, completed=snapshot.done)
        return Group(done, Text(stats_text(snapshot, None), style="dim"))

    def _elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self._started

    async def _run(self) -> None:
        period = _LIVE_PERIOD if self.mode == "live" else self._interval
        while True:
            await asyncio.sleep(period)
            self.refresh()

    def refresh(self) -> None:
        """Draw one frame (live) or print one line (plain) now."""
        snapshot = self._sample()
        now = asyncio.get_running_loop().time()
        rate = self._rate.add(now, snapshot.done)
        if self._live is not None and self._bar is not None:
            self._bar.update(self._bar_task, completed=snapshot.done, total=snapshot.total)
            line = Text(stats_text(snapshot, rate), style="dim")
            self._live.update(Group(self._bar, line), refresh=True)
            return
        self._console.print(self.plain_line(snapshot, rate, now - self._started), highlight=False)

    @staticmethod
    def plain_line(snapshot: Snapshot, rate: float | None, elapsed: float) -> Text:
        """One progress line for a log: count, share, stats, rate and ETA."""
        count = f"{snapshot.done}"
        if snapshot.total is not None:
            share = 100 * snapshot.done / snapshot.total if snapshot.total else 100.0
            count = f"{snapshot.done}/{snapshot.total} ({share:.0f}%)"
        line = f"[{format_duration(elapsed):>6}] {count} · {stats_text(snapshot, rate)}"
        if snapshot.total is not None and rate:
            line += f" · ETA {format_duration((snapshot.total - snapshot.done) / rate)}"
        return Text(line)
