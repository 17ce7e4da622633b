"""One batch at a time per output file: an advisory lock beside ``--out``.

Two runs appending to one output (a cron job started twice, two ``--resume`` in two
terminals) would each run the items the other has not written yet, and pay for them
twice. ``batch`` takes an exclusive ``flock`` on ``OUT.lock`` for its whole run; a second
run refuses at once. The lock is the kernel's, so a killed run never leaves it held, and
the file is removed when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from .errors import CliError, ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

if sys.platform != "win32":
    import fcntl

__all__ = ["output_lock"]


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT.lock`` exclusively while the block runs.

    Raises:
        CliError: Another run holds it (exit code ``LOCKED``), or it cannot be created.
    """
    if sys.platform == "win32" or out.is_dir():  # no flock there; a folder is refused later
        yield
        return
    path = out.with_name(out.name + ".lock")
    fd = _locked(path, out)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before unlocking: a waiter that opened it re-checks (_locked)
        os.close(fd)


def _locked(path: Path, out: Path) -> int:
    """Open and lock ``path``; retry if it was replaced between the open and the lock."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise CliError(f"cannot write {out}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise CliError(
                f"another batch is writing {out}{holder}; wait for it to end (or stop it), "
                "then run this command again",
                ExitCode.LOCKED,
            ) from None
        except OSError as error:
            os.close(fd)
            raise CliError(f"cannot lock {path}: {error.strerror}") from None
        try:  # still the file at that path? (the last holder may have removed it)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (process {pid})"
    return ""
