"""Running one batch from JSONL to JSONL: the lane pool, progress, Ctrl-C, exit codes.

Why one module: one run's steps (open, progress, signals, summary, exit code) share the
run's state; the output file and the summary are outfile.py and summary.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs
from rich.text import Text

from .._client import SearchCansError, SearchRequest
from .._lanes import BatchReport, StopReason
from . import outfile
from .errors import EXIT_BY_STOP, CliError, ExitCode
from .job import JobPlan, plan_job
from .jsonl import (
    InputError,
    InputFormat,
    Job,
    Kind,
    LineParser,
    OutputError,
    ResultWriter,
    ResumeState,
    StdinLines,
    job_json,
    read_jobs,
)
from .lock import output_lock
from .progress import BatchProgress, EventCounter, ProgressMode, Snapshot

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from rich.console import Console

    from .._client import Costs, ReaderPage, SearchResult
    from .._lanes import LaneBackend, LanePool, SearchCans
    from .output import Scrub

__all__ = [
    "BatchRun",
    "BatchSpec",
    "Interrupts",
    "run_batch",
]


_LEASE_MARGIN: Final = 10.0  # seconds a shared lane's lease outlives one attempt


class Interrupts:
    """Ctrl-C (and SIGTERM): the first stops gracefully, the second cancels work in flight.

    Before the lane pool is open nothing has been spent, so the first press just cancels.
    """

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.pool: LanePool | None = None
        self.presses = 0
        self.note = ""
        self._notify = notify
        self._task: asyncio.Task[Any] | None = None

    def press(self) -> None:
        """React to one Ctrl-C."""
        self.presses += 1
        pool = self.pool
        if pool is None:
            if self._task is not None:
                self._task.cancel()
            return
        if self.presses == 1:
            in_flight = pool.statistics().in_flight
            self.note = "stopping (Ctrl-C again cancels the work in flight)"
            self._notify(
                f"stopping: nothing new starts; waiting for {in_flight} item(s) in flight "
                "to finish and be written (press Ctrl-C again to cancel them)"
            )
            pool.stop()
        else:
            self.note = "cancelling"
            self._notify("cancelling the work in flight; its credits count as possibly charged")
            pool.stop(cancel=True)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM on the running loop inside the ``with`` block."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        installed: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.press)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                continue
            installed.append(signum)
        try:
            yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)


@attrs.frozen(kw_only=True)
class BatchSpec:
    """What ``searchcans-async batch`` was asked to do."""

    kind: Kind = "search"
    input: Path | None = None  # None: stdin
    input_format: InputFormat = "auto"
    fields: tuple[str, ...] | None = None  # keep only these fields of each result
    raise_budget: bool = False  # --budget may raise the job's (or the group's) budget
    export_unfinished: Path | None = None  # write the input lines still to run here
    out: Path | None = None  # None: stdout
    resume: bool = False
    retry_possibly_charged: bool = False
    budget: int | None = None
    floor: int = 0
    lanes: int | None = None
    fail_fast: bool = False
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    progress: ProgressMode = "auto"
    progress_interval: float = 2.0
    title: str = "batch"
    redis_url: str | None = attrs.field(default=None, repr=False)  # may hold a password
    group: str | None = None

    @property
    def input_name(self) -> str:
        """The input as the messages name it."""
        return str(self.input) if self.input is not None else "<stdin>"

    @property
    def out_name(self) -> str:
        """The output as the messages name it."""
        return str(self.out) if self.out is not None else "<stdout>"


@attrs.frozen(kw_only=True)
class BatchRun:
    """How a batch run ended, for the report and the exit code.

    ``skipped`` counts the input items an earlier run already completed; ``doubtful``
    those it left failed and possibly charged, which this run did not send again.
    """

    report: BatchReport[Job]
    spec: BatchSpec
    total: int | None
    skipped: int
    doubtful: int
    written: int
    write_error: OSError | None = None  # the output failed: a full disk, a closed pipe
    unwritten_lines: tuple[int, ...] = ()  # input lines of results not written there
    kept_in: Path | None = None  # ... and where they were kept instead
    exported: int | None = None  # input lines written to --export-unfinished
    export_error: str | None = None  # ... or why that file could not be written
    last_line_read: int = 0  # the input line of the last item the batch took
    job_budget: int | None = None  # the budget of the whole job (--budget, kept in OUT.job)

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit code for this run."""
        report = self.report
        if isinstance(report.error, InputError):
            return ExitCode.USAGE
        if report.stop_reason is StopReason.COMPLETED and (report.failed or self.doubtful):
            return ExitCode.FAILED_ITEMS
        return EXIT_BY_STOP[report.stop_reason]


class _Resume:
    """Filters out the jobs an earlier run settled, counting them."""

    def __init__(self, state: ResumeState | None, spec: BatchSpec) -> None:
        self.state = state
        self.retry_doubtful = spec.retry_possibly_charged
        self.succeeded = 0
        self.doubtful = 0
        self.last_line = 0

    def settled(self, line: int) -> bool:
        """Whether an earlier run settled this input line (succeeded, or possibly charged)."""
        state = self.state
        if state is None:
            return False
        return line in state.succeeded or (line in state.doubtful and not self.retry_doubtful)

    def wanted(self, job: Job, input_name: str) -> bool:
        reason = None
        if self.state is not None:
            reason = self.state.skip(job, input_name, retry_doubtful=self.retry_doubtful)
        if reason == "succeeded":
            self.succeeded += 1
        elif reason == "doubtful":
            self.doubtful += 1
        else:  # handed to the pool now: the input's last line read so far
            self.last_line = job.line
        return reason is None


def _prescan(path: Path, parser: LineParser, resume: _Resume, costs: Costs) -> tuple[int, int]:
    """Validate the whole input file before anything is spent; its items and their cost.

    The cost counts only the items this run will send (not those a resume skips).
    """
    total = cost = 0
    with path.open("rb") as stream:
        for job in read_jobs(stream, parser):
            total += 1
            if resume.wanted(job, parser.source):
                cost += job.request.cost(costs)
    return total, cost


def _target(to_run: int | None, cost: int, done: int, credits_left: int) -> int | None:
    """How many items this run can finish: all of them, or what the budget covers.

    ``credits_left`` counts what new work may reserve plus what work in flight holds;
    items are priced at their mean cost.
    """
    if to_run is None or to_run == 0 or cost == 0:
        return to_run
    return min(to_run, done + credits_left * to_run // cost)


def _check_output(spec: BatchSpec, scrub: Scrub) -> ResumeState | None:
    out = spec.out
    if out is None:
        if spec.resume:
            raise CliError("--resume needs --out FILE: the results of the earlier run")
        return None
    if spec.input is not None and out.exists() and spec.input.exists():
        with contextlib.suppress(OSError):
            if os.path.samefile(spec.input, out):
                raise CliError(f"--out {out} is the input file; write the results elsewhere")
    if out.is_dir():
        raise CliError(f"--out {out} is a directory; give a file name")
    if spec.resume:
        if out.name.endswith(".gz") and out.exists():
            outfile.drop_torn_tail(out)
        outfile.merge_unwritten(out)
        return ResumeState.load(out, spec.kind, scrub)
    if out.exists() and out.stat().st_size:
        raise CliError(
            f"{out} already exists: add --resume to continue the batch that wrote it, "
            "or choose another --out (results already paid for are never overwritten)"
        )
    return None


async def _stdin_jobs(
    lines: StdinLines, parser: LineParser, resume: _Resume
) -> AsyncGenerator[Job, None]:
    number = 0
    async for raw in lines:
        number += 1
        job = parser.parse(number, raw)
        if job is not None and resume.wanted(job, parser.source):
            yield job


@contextlib.contextmanager
def _output(spec: BatchSpec, resume: ResumeState | None, stdout: IO[str]) -> Iterator[IO[str]]:
    if spec.out is None:
        yield stdout
    else:
        with outfile.open_output(spec.out, resume) as stream:
            yield stream


def _announce_resume(console: Console, spec: BatchSpec, state: ResumeState | None) -> None:
    if state is None or not (state.succeeded or state.doubtful):
        return
    text = f"resuming: {len(state.succeeded)} item(s) in {spec.out_name} already succeeded"
    if state.doubtful:
        again = spec.retry_possibly_charged
        text += f"; {len(state.doubtful)} failed possibly charged " + (
            "and run again (--retry-possibly-charged)" if again else "and are not run again"
        )
    console.print(Text(text + "."))


def _sender(client: SearchCans) -> Callable[[Job], Awaitable[SearchResult | ReaderPage]]:
    async def send(job: Job) -> SearchResult | ReaderPage:
        request = job.request
        if isinstance(request, SearchRequest):
            return await client.send(request)
        return await client.send(request)

    return send


async def run_batch(
    client: SearchCans,
    spec: BatchSpec,
    *,
    console: Console,
    events: EventCounter,
    interrupts: Interrupts,
    scrub: Scrub,
    stdin: IO[bytes],
    stdout: IO[str],
) -> BatchRun:
    """Run the batch ``spec`` describes through ``client``'s lane pool.

    Raises:
        CliError: Bad usage or input found before anything was spent.
        SearchCansError: The account could not be read (e.g. 401, unreachable).
    """
    with contextlib.ExitStack() as lock:
        if spec.out is not None:
            lock.enter_context(output_lock(spec.out))  # one run per output: none pays twice
        parser = LineParser(spec.kind, spec.input_name, spec.defaults, fmt=spec.input_format)
        state = _check_output(spec, scrub)
        total: int | None = None
        run_cost = 0
        counted = _Resume(state, spec)
        if spec.input is not None:
            try:
                total, run_cost = _prescan(spec.input, parser, counted, client.costs)
            except InputError as error:
                raise CliError(f"{error} (nothing was run)") from None
            except OSError as error:
                raise CliError(f"cannot read {spec.input}: {error.strerror}") from None
        resume = _Resume(state, spec)
        costs = client.costs

        def cost(job: Job) -> int:
            return job.request.cost(costs)

        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(_output(spec, state, stdout))
            writer = ResultWriter(stream, spec.kind, scrub, spec.fields, client.costs)
            items = _items(spec, stack, parser, resume, stdin)
            if spec.input is None:
                counted = resume  # counted as the stream goes
            _announce_resume(console, spec, state)
            job_budget, budget = _budgets(console, spec, state)
            to_run = None if total is None else total - counted.succeeded - counted.doubtful
            async with _open_pool(client, spec, budget) as pool:
                interrupts.pool = pool
                _warn_about_lanes(console, spec, pool)
                sample = _sampler(pool, writer, events, interrupts, to_run, run_cost)
                progress = BatchProgress(
                    console, sample, mode=spec.progress, interval=spec.progress_interval,
                    title=spec.title,
                )  # fmt: skip
                try:
                    async with progress:
                        report = await pool.run_batch(
                            _sender(client), items, cost=cost, on_outcome=writer.write,
                            fail_fast=spec.fail_fast,
                        )  # fmt: skip
                finally:
                    interrupts.pool = None
                    if isinstance(items, AsyncGenerator):
                        await items.aclose()
            _write_leftovers(report, writer)
            writer.close()
        run = BatchRun(
            report=report,
            spec=spec,
            total=total,
            skipped=counted.succeeded,
            doubtful=counted.doubtful,
            last_line_read=resume.last_line,
            written=writer.written,
            job_budget=job_budget,
        )
        return _after(run, writer, resume)


def _after(run: BatchRun, writer: ResultWriter, resume: _Resume) -> BatchRun:
    """What the run leaves beside its output: results a write error kept, unfinished lines."""
    spec = run.spec
    if writer.error is not None:
        kept_in = outfile.keep_unwritten(spec.out, writer.unwritten) if writer.unwritten else None
        run = attrs.evolve(
            run,
            write_error=writer.error,
            unwritten_lines=tuple(writer.unwritten_lines),
            kept_in=kept_in,
        )
    if spec.export_unfinished is not None:
        try:
            exported = _export_unfinished(spec.export_unfinished, run, resume)
        except OSError as error:
            return attrs.evolve(run, export_error=error.strerror or str(error))
        run = attrs.evolve(run, exported=exported)
    return run


def _unfinished_jobs(run: BatchRun) -> dict[int, Job]:
    """Items this run read and did not finish, that can run again without paying twice."""
    report = run.report
    doubtful = set(report.possibly_charged)
    jobs = {o.item.line: o.item for o in report.failed if o.index not in doubtful}
    jobs.update((job.line, job) for _, job in report.not_started)
    return jobs


def _export_unfinished(path: Path, run: BatchRun, resume: _Resume) -> int:
    """Write the input lines still to run to ``path``, as they are; return how many.

    From a file: the failed (never possibly charged), not-started and never-read lines, in
    input order. From stdin, what was never read is not known: only the items read (as
    JSON objects with their options).
    """
    spec, jobs = run.spec, _unfinished_jobs(run)
    unread_from = run.last_line_read + 1 if run.report.unread_from is not None else None
    count = 0
    with path.open("wb") as target:
        if spec.input is None:
            for line in sorted(jobs):
                target.write(job_json(jobs[line]).encode() + b"\n")
            return len(jobs)
        with spec.input.open("rb") as source:
            for number, raw in enumerate(source, 1):
                if not raw.strip() or resume.settled(number):
                    continue
                if number in jobs or (unread_from is not None and number >= unread_from):
                    target.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    count += 1
    return count


def _items(
    spec: BatchSpec,
    stack: contextlib.ExitStack,
    parser: LineParser,
    resume: _Resume,
    stdin: IO[bytes],
) -> Iterator[Job] | AsyncGenerator[Job, None]:
    """The jobs to run, read lazily from the input file or stdin (closed with ``stack``)."""
    if spec.input is not None:
        source = stack.enter_context(spec.input.open("rb"))
        return (job for job in read_jobs(source, parser) if resume.wanted(job, parser.source))
    stdin_lines = StdinLines(stdin)
    stack.callback(stdin_lines.close)
    return _stdin_jobs(stdin_lines, parser, resume)


def _budgets(
    console: Console, spec: BatchSpec, state: ResumeState | None
) -> tuple[int | None, int | None]:
    """The job's budget, and what this run may spend of it (see job.py)."""
    job = _plan_job(spec, state)
    if job is None:
        return spec.budget, spec.budget
    if job.resumed and job.budget is not None:
        console.print(
            Text(f"job: spent so far {job.spent} of {job.budget} credits; this run may spend "
                 f"up to {job.run_budget}")
        )  # fmt: skip
    return job.budget, job.run_budget


def _plan_job(spec: BatchSpec, state: ResumeState | None) -> JobPlan | None:
    """The job's budget for this run (see job.py); ``None`` without a regular --out file."""
    out = spec.out
    if out is None or (out.exists() and not out.is_file()):  # stdout, a device: no job
        return None
    return plan_job(
        out=out,
        input_path=spec.input,
        budget=spec.budget,
        raise_budget=spec.raise_budget,
        resume=spec.resume,
        spent=state.spent if state is not None else 0,
    )


def _warn_about_lanes(console: Console, spec: BatchSpec, pool: LanePool) -> None:
    lanes = pool.account.concurrent
    if spec.lanes is not None and spec.lanes > lanes:
        console.print(
            Text(
                f"warning: --lanes {spec.lanes} is more than the account's {lanes} Parallel "
                f"Lanes; {lanes} are used (more would be refused as 1010 'lanes busy')",
                style="yellow",
            )
        )


def _sampler(  # noqa: PLR0917  # what one progress reading is made of
    pool: LanePool,
    writer: ResultWriter,
    events: EventCounter,
    interrupts: Interrupts,
    to_run: int | None,
    run_cost: int,
) -> Callable[[], Snapshot]:
    """Progress readings: counted against what this run can finish (items, or budget)."""

    def sample() -> Snapshot:
        stats = pool.statistics()
        left = stats.budget_left + stats.reserved
        target = _target(to_run, run_cost, writer.written, left)
        note = interrupts.note
        if target is not None and to_run is not None and target < to_run and not note:
            note = f"the budget covers {target} of {to_run}"
        return Snapshot(
            done=writer.written,
            total=target,
            failed=writer.failed,
            retries=events.retries,
            lanes=stats.lanes,
            plan_lanes=stats.plan_lanes,
            in_flight=stats.in_flight,
            spent=stats.committed,
            possibly_charged=stats.possibly_charged,
            budget_left=stats.budget_left,
            note=note,
        )

    return sample


@contextlib.asynccontextmanager
async def _open_pool(
    client: SearchCans, spec: BatchSpec, budget: int | None
) -> AsyncIterator[LanePool]:
    """The batch's lane pool, open; an unreachable shared Redis is named as such."""
    try:
        backend = await _shared_backend(spec, client)
        pool = client.lanes(budget=budget, floor=spec.floor, max_lanes=spec.lanes, backend=backend)
        await pool.open()
    except SearchCansError as error:
        if spec.redis_url is None or not _from_redis(error):
            raise
        raise CliError(
            f"cannot reach Redis at {_without_password(spec.redis_url)}: {error.message} "
            "(check --redis or SEARCHCANS_REDIS_URL)",
            ExitCode.ERROR,
        ) from None
    try:
        yield pool
    finally:
        await pool.aclose()


def _from_redis(error: SearchCansError) -> bool:
    from ..redis import RedisBackendError  # noqa: PLC0415  # the [redis] extra, present here

    return isinstance(error, RedisBackendError)


def _without_password(url: str) -> str:
    """``redis://user:secret@host:6379/0`` as ``redis://user@host:6379/0``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))


async def _shared_backend(spec: BatchSpec, client: SearchCans) -> LaneBackend | None:
    """The Redis backend ``--redis``/``--account`` ask for (the pool closes it), or None."""
    if spec.redis_url is None or spec.group is None:
        return None
    try:
        from ..redis import open_backend  # noqa: PLC0415  # the optional [redis] extra
    except ImportError as error:
        raise CliError(
            f"--redis needs {error.name or 'redis'}: pip install 'searchcans-async[redis]'"
        ) from None
    # A request goes out only while its lane's lease outlives the longest attempt.
    return await open_backend(
        spec.redis_url,
        spec.group,
        request_timeout=client.timeout + _LEASE_MARGIN,
        raise_budget=spec.raise_budget,
    )


def _write_leftovers(report: BatchReport[Job], writer: ResultWriter) -> None:
    """Write what the batch could not hand over (the writer keeps what it cannot write)."""
    leftovers = [o for o in report.failed if not isinstance(o.error, Exception)]
    leftovers.extend(report.unconsumed)
    for outcome in leftovers:  # cancelled in flight, or finished after a write error
        with contextlib.suppress(OutputError):
            writer.write(outcome)
