"""A batch is a job, not a run: one budget across every resume of one ``--out``.

Beside ``OUT`` the command keeps ``OUT.job``: the job's budget and its input's identity.
What the job has spent is read back from the output itself (each record carries its
``credits`` and ``possibly_charged``), so a run killed before it could save anything still
counts. A resume may spend only what the job's budget has left; a higher budget must be
asked for on purpose (``--raise-budget``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

import attrs

from .errors import CliError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["JobPlan", "plan_job"]

_VERSION = 1


@attrs.frozen
class JobPlan:
    """This run's share of the job: the job's budget, what it spent, what this run may."""

    budget: int | None  # the job's budget (None: no budget)
    spent: int  # credits earlier runs spent, or may have
    resumed: bool

    @property
    def run_budget(self) -> int | None:
        """What this run may spend."""
        return None if self.budget is None else max(0, self.budget - self.spent)


def job_path(out: Path) -> Path:
    """Where the job's state lives: ``OUT.job``."""
    return out.with_name(out.name + ".job")


def _identity(path: Path | None) -> dict[str, Any] | None:
    if path is None:  # stdin: nothing to compare with next time
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return {"name": str(path), "size": path.stat().st_size, "sha256": digest.hexdigest()}


def _load(out: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(job_path(out).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise CliError(f"{job_path(out)} is not a job file of searchcans-async batch") from None
    if not isinstance(state, dict) or state.get("version") != _VERSION:
        raise CliError(f"{job_path(out)} is not a job file of searchcans-async batch")
    return state


def plan_job(  # the job's inputs, each one option
    *,
    out: Path,
    input_path: Path | None,
    budget: int | None,
    raise_budget: bool,
    resume: bool,
    spent: int,
) -> JobPlan:
    """Settle the job's budget for this run and save the job file.

    Raises:
        CliError: The output belongs to a job on another input, or ``budget`` would
            raise the job's budget without ``raise_budget``.
    """
    previous = _load(out) if resume else None
    identity = _identity(input_path)
    if previous is not None:
        known = previous.get("input")
        if known is not None and identity is not None and known["sha256"] != identity["sha256"]:
            raise CliError(
                f"{out} belongs to a job on {known['name']} as it was then; this input "
                "differs: resume with the same input, or write to a new --out"
            )
        job_budget = previous.get("budget")
        if budget is not None and job_budget is not None and budget > job_budget:
            if not raise_budget:
                raise CliError(
                    f"this job's budget is {job_budget} credits ({spent} spent so far); "
                    f"--budget {budget} would raise it: add --raise-budget to do so on purpose"
                )
            job_budget = budget
        elif budget is not None:
            job_budget = budget  # a first budget, or a lower one
    else:
        job_budget = budget
    _save(out, {"version": _VERSION, "budget": job_budget, "input": identity})
    return JobPlan(budget=job_budget, spent=spent if resume else 0, resumed=resume)


def _save(out: Path, state: dict[str, Any]) -> None:
    path = job_path(out)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None
