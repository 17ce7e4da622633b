"""`python -m searchcans_async.testing`: run the emulator as a process."""

from __future__ import annotations

from ._main import main

if __name__ == "__main__":
    raise SystemExit(main())
