"""What a batch says when it ends: the summary in input lines, the output, the next step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from rich.text import Text

from .._lanes import StopReason
from .._monitor import format_duration
from . import outfile
from .jsonl import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from .run import BatchRun

__all__ = ["print_report", "stop_message"]

_NEXT_STEP: Final[Mapping[StopReason, str]] = {
    StopReason.BUDGET: "the credit budget ran out: add credits (or raise --budget, lower "
    "--floor), then run the same command with --resume",
    StopReason.BILLING: "the server refused for billing: top up the account, then run the "
    "same command with --resume",
    StopReason.AUTH: "the API key was refused: check SEARCHCANS_API_KEY or --api-key-file, "
    "then run the same command with --resume",
    StopReason.CANCELLED: "run the same command with --resume to continue where it stopped",
    StopReason.ERROR: "fix the cause above, then run the same command with --resume",
}


def _summary(run: BatchRun) -> list[str]:
    """The batch's summary in the input's own line numbers (as the output's ``"line"``)."""
    report = run.report
    counts = (
        f"succeeded: {report.succeeded}   failed: {len(report.failed)}   "
        f"not started: {len(report.not_started)}"
    )
    if report.not_started:
        counts += f" ({_line_list([job.line for _, job in report.not_started])})"
    if report.unread_from is not None:
        counts += f"   never read: from input line {run.last_line_read + 1}"
    lines = [f"stopped: {report.stop_reason.value}", counts]
    lines.append(
        f"credits committed: {report.credits_committed}   "
        f"possibly charged: {report.credits_possibly_charged}"
    )
    if report.remain_before is not None or report.remain_after is not None:
        lines.append(f"remain: {report.remain_before} -> {report.remain_after}")
    if report.error is not None:
        lines.append(f"because: {type(report.error).__name__}: {report.error}")
    return lines


def _line_list(numbers: list[int], shown: int = 5) -> str:
    words = ", ".join(map(str, numbers[:shown])) + (", ..." if len(numbers) > shown else "")
    return f"input line{'s' if len(numbers) > 1 else ''} {words}"


def _unwritten_lines(run: BatchRun) -> list[str]:
    """What a write error did to the output, and where the paid results went."""
    if run.write_error is None:
        return []
    out = run.spec.out_name
    reason = run.write_error.strerror or str(run.write_error)
    lines = [f"output error: cannot write {out}: {reason}"]
    count = len(run.unwritten_lines)
    if not count:
        return lines
    if run.kept_in is None:
        lines.append(
            f"warning: {count} finished item(s) could not be kept anywhere "
            f"({_line_list(list(run.unwritten_lines))}); they will run again on --resume"
        )
    elif run.spec.out is not None and run.kept_in == outfile.unwritten_path(run.spec.out):
        lines.append(
            f"kept: {count} finished item(s) not written are in {run.kept_in}; "
            f"--resume adds them to {out}"
        )
    else:
        target = out if run.spec.out is not None else "your results"
        lines.append(
            f"kept: {count} finished item(s) not written are in {run.kept_in}; add them to "
            f"{target} (cat {run.kept_in} >> {out}) before --resume"
        )
    return lines


def print_report(console: Console, run: BatchRun) -> None:
    """The final report: the batch summary, the output, and what to do next."""
    report, spec = run.report, run.spec
    lines = _summary(run)
    if report.items_read == 0 and report.unread_from is None and not run.skipped + run.doubtful:
        lines.insert(0, f"warning: {spec.input_name} holds no items: nothing to run")
    if report.elapsed > 0:
        rate = (report.succeeded + len(report.failed)) / report.elapsed
        lines.append(f"elapsed: {format_duration(report.elapsed)} ({rate:.1f} items/s)")
    done = run.skipped + report.succeeded
    of_total = f" of {run.total}" if run.total is not None else ""
    lines.append(
        f"output: {spec.out_name} ({run.written} line(s) written by this run; "
        f"{done}{of_total} input item(s) have succeeded)"
    )
    lines.extend(_unwritten_lines(run))
    if run.export_error is not None:
        lines.append(f"warning: cannot write {spec.export_unfinished}: {run.export_error}")
    elif run.exported is not None:
        lines.append(
            f"unfinished: {run.exported} input line(s) written to {spec.export_unfinished}"
        )
    hint = _NEXT_STEP.get(report.stop_reason)
    if report.stop_reason is StopReason.BUDGET and run.job_budget is not None:
        hint = (
            "the credit budget ran out: add credits (or lower --floor), or raise the job's "
            "budget with --budget N --raise-budget, then run the same command with --resume"
        )
    if report.stop_reason is StopReason.COMPLETED and report.failed:
        hint = (
            f'{len(report.failed)} item(s) failed (see "error" in the output); run the '
            "same command with --resume to retry them"
        )
    if isinstance(report.error, InputError):
        hint = "fix that input line, then run the same command with --resume"
    if run.doubtful:
        lines.append(
            f"note: {run.doubtful} item(s) failed earlier possibly charged and were not sent "
            "again; add --retry-possibly-charged to run them (they may be billed twice)"
        )
    if hint is not None:
        if spec.out is None:
            hint = hint.split(", then", 1)[0] + "; write results with --out FILE to resume later"
        lines.append(f"next: {hint}")
    console.print(Text("\n".join(lines)))


def stop_message(run: BatchRun) -> str | None:
    """The one error line for stderr when the batch did not complete, else ``None``."""
    report = run.report
    if report.stop_reason is StopReason.COMPLETED:
        return None
    if report.error is not None:
        return str(report.error)
    return f"the batch stopped: {report.stop_reason.value}"
