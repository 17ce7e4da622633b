"""The benchmark harness runs end to end in its quick mode (CI's check of `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEASURES = ("overhead", "memory", "utilization", "e2e", "overshoot", "soak")


def test_quick_benchmarks_run_and_write_their_results(tmp_path: Path) -> None:
    """`python -m benchmarks --quick` exits 0 and writes every result, plot and page."""
    completed = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
        [sys.executable, "-m", "benchmarks", "--quick", "--output-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    for measure in MEASURES:
        document = json.loads((tmp_path / "results" / f"{measure}.json").read_text())
        assert document["measure"] == measure
        assert document["quick"] is True
        assert document["targets"], f"{measure} printed no target"
        assert all(isinstance(line["passed"], bool) for line in document["targets"])
    assert sorted(path.name for path in (tmp_path / "img").glob("bench_*.png"))
    page = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets" in page
    assert "PASS" in page or "FAIL" in page
    readme = (tmp_path / "README.md").read_text()
    assert readme.count("BEGIN GENERATED") == 1
    assert readme.count("END GENERATED") == 1
