"""``python -m benchmarks``: run the measures, then write plots and pages from the results.

Every library is imported here, before any measure starts a timer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import _harness, e2e, memory, overhead, overshoot, report, soak, utilization

# The other benchmark scripts under benchmarks/, run by the full run as they are.
SCRIPTS = {"emulator": "bench_emulator.py", "redis": "bench_redis.py"}
STEPS = {
    "overhead": overhead.run,
    "memory": memory.run,
    "utilization": utilization.run,
    "e2e": e2e.run,
    "overshoot": overshoot.run,
    "soak": soak.run,
}


def run_script(output: _harness.Output, script: str, name: str) -> None:
    """Another owner's benchmark script (``bench_emulator.py``, ``bench_redis.py``), as is."""
    path = output.results / f"{name}.json"
    subprocess.run(
        [sys.executable, str(_harness.BENCHMARKS / script), "--output", str(path)],
        cwd=_harness.REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    json.loads(path.read_text())  # it wrote a readable result


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, to check the harness (< 30 s)"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="write results, plots and pages here (default: the committed places; "
        "with --quick: benchmarks/results/tmp)",
    )
    parser.add_argument(
        "--only", help=f"comma-separated measures among {', '.join([*STEPS, *SCRIPTS])}"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only regenerate plots and pages from results"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    output = _harness.Output(quick=options.quick, root=options.output_dir)
    output.prepare()
    steps = [*STEPS, *SCRIPTS]
    if shutil.which("redis-server") is None:
        steps.remove("redis")  # it starts its own redis-server
    if options.only:
        steps = [step.strip() for step in options.only.split(",") if step.strip()]
        unknown = set(steps) - {*STEPS, *SCRIPTS}
        if unknown:
            raise SystemExit(f"unknown measures: {', '.join(sorted(unknown))}")
    if options.report_only:
        steps = []
    elif options.quick and not options.only:
        # The other scripts' own --quick take 5-20 s; the e2e measure covers the emulator.
        steps = [step for step in steps if step not in SCRIPTS]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for step in steps:
        print(f"== {step} ...", flush=True)
        step_started = time.perf_counter()
        if step in SCRIPTS:
            run_script(output, SCRIPTS[step], step)
        else:
            document = STEPS[step](output)
            for line in document.get("targets", []):
                verdict = "PASS" if line["passed"] else "FAIL"
                print(f"   {verdict}  {line['target']}: {line['measured']}")
        timings[step] = round(time.perf_counter() - step_started, 1)
        print(f"   {timings[step]} s", flush=True)
    if steps and not options.only:
        output.write(
            "run",
            {
                "quick": options.quick,
                "steps_seconds": timings,
                "total_seconds": round(time.perf_counter() - started, 1),
            },
        )
    report.write_pages(output)
    lines = report.all_targets(report.load(output))
    print("\nTargets:")
    for line in lines:
        ratio = "" if line["ratio"] is None else f"  (ratio {line['ratio']:g})"
        print(
            f"  {'PASS' if line['passed'] else 'FAIL'}  {line['target']}: goal {line['goal']}, "
            f"measured {line['measured']}{ratio}"
        )
    print(f"\nwrote {output.results}, {output.images}, {output.docs_page}, {output.readme}")
    print(f"total {time.perf_counter() - started:.1f} s")
    failed = [line for line in lines if not line["passed"]]
    return 1 if options.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
