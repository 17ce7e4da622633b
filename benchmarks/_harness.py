"""What every measure shares: output paths, rounds and medians, RSS readings, child processes.

Nothing here is timed. Timers live in the measures, around the peers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import aiohttp

import searchcans_async

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

T = TypeVar("T")

REPO: Final = Path(__file__).resolve().parent.parent
BENCHMARKS: Final = REPO / "benchmarks"
# The committed full results; quick runs write to QUICK_OUTPUT (git-ignored) or elsewhere.
FULL_RESULTS: Final = BENCHMARKS / "results"
FULL_IMAGES: Final = REPO / "docs" / "img"
FULL_DOCS_PAGE: Final = REPO / "docs" / "benchmarks.md"
FULL_README: Final = BENCHMARKS / "README.md"
QUICK_OUTPUT: Final = FULL_RESULTS / "tmp"


class Output:
    """Where one run writes its JSON, plots and generated pages."""

    def __init__(self, *, quick: bool, root: Path | None = None) -> None:
        self.quick = quick
        if root is None and not quick:
            self.results = FULL_RESULTS
            self.images = FULL_IMAGES
            self.docs_page = FULL_DOCS_PAGE
            self.readme = FULL_README
        else:
            base = root if root is not None else QUICK_OUTPUT
            self.results = base / "results"
            self.images = base / "img"
            self.docs_page = base / "benchmarks.md"
            self.readme = base / "README.md"
            if not self.readme.exists():
                # The generated table replaces a section of the README: start from the real one.
                self.readme.parent.mkdir(parents=True, exist_ok=True)
                self.readme.write_text(FULL_README.read_text())

    def prepare(self) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        self.images.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, document: dict[str, Any]) -> Path:
        path = self.results / f"{name}.json"
        path.write_text(compact_json(document) + "\n")
        return path

    def read(self, name: str) -> dict[str, Any] | None:
        path = self.results / f"{name}.json"
        if not path.exists():
            return None
        document: dict[str, Any] = json.loads(path.read_text())
        return document


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def commit() -> str:
    """The measured commit, with ``+dirty`` when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "searchcans_async"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


_NUMBERS: Final = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def compact_json(document: dict[str, Any]) -> str:
    """Indented JSON with each list of numbers on one line (timelines stay readable diffs)."""
    return _NUMBERS.sub(
        lambda match: "[" + " ".join(match.group(1).split()) + "]", json.dumps(document, indent=2)
    )


def machine() -> dict[str, Any]:
    """The facts a reader needs to weigh absolute numbers."""
    return {
        "commit": commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "event_loop": "asyncio default (no uvloop)",
        "searchcans_async": searchcans_async.__version__,
        "aiohttp": aiohttp.__version__,
        "aiometer": _version("aiometer"),
        "matplotlib": _version("matplotlib"),
    }


def document(measure: str, title: str, *, quick: bool, config: dict[str, Any]) -> dict[str, Any]:
    """The common head of every results file."""
    return {
        "measure": measure,
        "title": title,
        "quick": quick,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "config": config,
    }


def target(
    name: str, goal: str, measured: str, *, passed: bool, ratio: float | None = None
) -> dict[str, Any]:
    """One target line: what was asked, what was measured, and whether it holds."""
    return {"target": name, "goal": goal, "measured": measured, "ratio": ratio, "passed": passed}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` rotated by ``shift``: interleaved rounds start with a different peer."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def settle() -> None:
    """Collect garbage so one peer's leftovers are not the next peer's GC pauses."""
    gc.collect()
    gc.collect()


# -- memory ----------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """The resident set size now."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # best effort


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); ``False`` if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The peak resident set size since start or since :func:`reset_peak_rss`."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# -- child processes ---------------------------------------------------------------------


def run_child(module: str, *args: str, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``python -m module args`` and parse the JSON its last stdout line holds."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{module} {' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-4000:]}"
        )
    lines = completed.stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run this process on one CPU for a while (no-op where affinity is unsupported)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def split_cpus() -> tuple[int | None, int | None]:
    """(client CPU, server CPU) when two CPUs are available, else (None, None)."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


class EmulatorProcess:
    """The emulator in its own process (``python -m benchmarks._emulator_process``).

    Client and server then run on separate cores; ``stats`` holds the server's own
    records once the process has ended. ``module`` may name another server that speaks
    the same start-up protocol (``benchmarks._replay_server``).
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        cpu: int | None = None,
        module: str = "benchmarks._emulator_process",
    ) -> None:
        self.config = config
        self.cpu = cpu
        self.module = module
        self.base_url = ""
        self.api_key = ""
        self.stats: dict[str, Any] = {}
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        args = [sys.executable, "-m", self.module, json.dumps(self.config)]
        if self.cpu is not None:
            args.append(str(self.cpu))  # the child pins itself to this CPU
        process = await asyncio.create_subprocess_exec(
            *args, cwd=REPO, stdout=asyncio.subprocess.PIPE
        )
        self._process = process
        assert process.stdout is not None
        announced: dict[str, str] = {}
        try:
            async with asyncio.timeout(30):
                while "SEARCHCANS_API_KEY" not in announced:
                    line = await process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.module} ended before announcing itself")
                    name, _, value = line.decode().strip().partition("=")
                    announced[name] = value
        except BaseException:
            process.kill()
            await process.wait()
            raise
        self.base_url = announced["SEARCHCANS_BASE_URL"]
        self.api_key = announced["SEARCHCANS_API_KEY"]
        return self

    def cpu_seconds(self) -> float | None:
        """CPU time the emulator process has used so far (Linux), to tell who is the bottleneck."""
        if self._process is None:
            return None
        try:
            with open(f"/proc/{self._process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # Fields 14 and 15 (utime, stime) of proc(5), counted after the ")" of the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def __aexit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGINT)
        stdout, _ = await process.communicate()
        for line in stdout.decode().splitlines():
            if line.startswith("STATS="):
                self.stats = json.loads(line.removeprefix("STATS="))


def elapsed(function: Callable[[], T]) -> tuple[T, float]:
    """Call ``function`` and return its result and the wall-clock seconds it took."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started
