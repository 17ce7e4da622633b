"""The results file of a batch: opening it (plain or gzip), and what a failure leaves.

A run appends one JSON line per finished item to ``--out``. When a write fails (a full
disk) the results already paid for go to ``OUT.unwritten`` (or a temporary file) and a
resume adds them back; a line torn by a kill is dropped so its item runs again.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import CliError
from .jsonl import ResumeState, complete_lines

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["drop_torn_tail", "keep_unwritten", "merge_unwritten", "open_output", "unwritten_path"]


@contextlib.contextmanager
def open_output(out: Path, resume: ResumeState | None) -> Iterator[IO[str]]:
    """Open ``out`` to append results (gzip when its name ends with ``.gz``)."""
    gzipped = out.name.endswith(".gz")
    if resume is not None and out.exists() and not gzipped:
        # Drop a torn last line (a process killed mid-write); its item runs again.
        os.truncate(out, resume.complete_bytes)
    try:
        stream: IO[str] = (
            gzip.open(out, "at", encoding="utf-8", newline="\n")  # noqa: SIM115  # closed below
            if gzipped
            else out.open("a", encoding="utf-8", newline="\n")
        )
    except OSError as error:
        raise CliError(f"cannot write {out}: {error.strerror}") from None
    try:
        if resume is not None and resume.missing_newline and not gzipped:
            stream.write("\n")
        yield stream
    finally:
        # The writer has flushed every line it counted and kept what it could not write:
        # a close that fails again (the disk still full) loses nothing more.
        with contextlib.suppress(OSError):
            stream.close()


def unwritten_path(out: Path) -> Path:
    """Where results that could not be written to ``out`` are kept, for ``--resume``."""
    return out.with_name(out.name + ".unwritten")


def keep_unwritten(out: Path | None, records: list[str]) -> Path | None:
    """Save the records a write error left in memory: beside --out, else in the temp folder.

    Returns where they are, or ``None`` if no place could take them.
    """
    if out is not None and out.is_file():  # beside a device (/dev/full): never
        with contextlib.suppress(OSError):
            with unwritten_path(out).open("a", encoding="utf-8", newline="\n") as stream:
                stream.writelines(records)
            return unwritten_path(out)
    with contextlib.suppress(OSError):
        fd, name = tempfile.mkstemp(prefix="searchcans-unwritten-", suffix=".jsonl")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.writelines(records)
        return Path(name)
    return None


def merge_unwritten(out: Path) -> None:
    """On --resume, add what a write error left in ``OUT.unwritten`` to OUT, then drop it."""
    kept = unwritten_path(out)
    if not kept.exists():
        return
    try:
        records = kept.read_bytes()
        if out.name.endswith(".gz"):
            with gzip.open(out, "ab") as compressed:
                compressed.write(records)
        else:
            _end_last_line(out)
            with out.open("ab") as stream:
                stream.write(records)
        kept.unlink()
    except OSError as error:
        raise CliError(f"cannot add {kept} to {out}: {error.strerror}") from None


def drop_torn_tail(out: Path) -> None:
    """Rewrite a gzip output with its complete lines only, if a kill cut it short.

    Appending a new gzip member after a cut-short one would hide everything after it. A
    file that reads to its end is left as it is; one that is not gzip at all is refused
    (never rewritten: that would drop results already paid for).
    """
    try:
        with gzip.open(out, "rb") as stream:
            for _ in stream:
                pass
    except EOFError:
        pass  # cut short by a kill: rewrite below
    except (OSError, zlib.error) as error:  # not gzip, or damaged inside
        raise CliError(
            f"cannot read {out} as gzip ({error}); resume with the output as it was written"
        ) from None
    else:
        return  # whole: nothing to drop
    kept = out.with_name(out.name + ".partial")
    try:
        with gzip.open(out, "rb") as old, gzip.open(kept, "wb") as new:
            for raw in complete_lines(old):
                if raw.endswith(b"\n"):
                    new.write(raw)
        os.replace(kept, out)
    except OSError as error:
        raise CliError(f"cannot rewrite {out}: {error.strerror or error}") from None


def _end_last_line(path: Path) -> None:
    """Make ``path`` end with a newline before more lines go after it.

    A last line without one is a complete record (kept) or was torn by a kill: then it is
    cut off (its item runs again), as a resume does with a torn last line.
    """
    if not path.exists():
        return
    with path.open("rb") as stream:
        end = stream.seek(0, os.SEEK_END)
        tail, start = b"", end
        while start > 0 and b"\n" not in tail:  # back to the last line's start
            start = max(0, start - 65_536)
            stream.seek(start)
            tail = stream.read(end - start)
    if not tail or tail.endswith(b"\n"):
        return
    cut = start + tail.rfind(b"\n") + 1  # rfind is -1 without a newline: the file's start
    if ResumeState.is_record(tail[cut - start :]):
        with path.open("ab") as stream:
            stream.write(b"\n")
    else:
        os.truncate(path, cut)
