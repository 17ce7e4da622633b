"""``searchcans-async batch`` and ``demo`` in-process, against a real emulator.

The emulator's own records (``charges_by_subject``, ``stats``) are the judge: after a stop
and a resume, every item was charged exactly once and the output holds every input line
exactly once as succeeded.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import tempfile
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console
from test_cli import ServedEmulator, invoke, one_error_line, serving

from searchcans_async import CreditsExhausted, SearchCans, SearchCansError, StopReason
from searchcans_async._cli.errors import CliError, ExitCode, exit_code_for_error
from searchcans_async._cli.jsonl import InputError, Job, LineParser, ResumeState
from searchcans_async._cli.output import Scrub
from searchcans_async._cli.progress import BatchProgress, EventCounter, Snapshot, stats_text
from searchcans_async._cli.run import BatchRun, BatchSpec, Interrupts, run_batch
from searchcans_async._client.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ServerError,
)
from searchcans_async._client.requests import SearchRequest
from searchcans_async._lanes.report import BatchReport, Outcome
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path


def write_lines(path: Path, items: Iterable[Any]) -> Path:
    """Write one JSON value per line (a str item that starts with '!' is written raw)."""
    lines = [item[1:] if isinstance(item, str) and item.startswith("!") else json.dumps(item)
             for item in items]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def records(path: Path) -> list[dict[str, Any]]:
    """The output's records, in file order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def succeeded_lines(path: Path) -> Counter[int]:
    """How many times each input line is recorded as succeeded."""
    return Counter(record["line"] for record in records(path) if record["ok"])


@pytest.fixture
def serve() -> Iterator[Callable[..., ServedEmulator]]:
    """A factory of emulators served from a background loop (see test_cli.py)."""
    yield from serving()


@pytest.fixture
def queries(tmp_path: Path) -> tuple[Path, list[str]]:
    """Forty distinct queries, one per line."""
    words = [f"query number {n}" for n in range(1, 41)]
    return write_lines(tmp_path / "queries.jsonl", words), words


# -- running and writing ---------------------------------------------------------------------


def test_a_batch_writes_every_line_once_and_never_the_key(
    serve: Callable[..., ServedEmulator], canary_key: str, tmp_path: Path
) -> None:
    """Strings, objects with options and blank lines: one record per item, line numbers kept."""
    emu = serve([AccountSpec(credits=100, lanes=2, keys=[KeySpec(canary_key)])])
    source = write_lines(
        tmp_path / "in.jsonl",
        ["asyncio", {"query": "aiohttp", "engine": "bing"}, "!", {"query": "rich", "pages": 3}],
    )
    out = tmp_path / "out.jsonl"
    result = invoke(["batch", str(source), "--out", str(out)], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    written = records(out)
    assert sorted(record["line"] for record in written) == [1, 2, 4]
    by_line = {record["line"]: record for record in written}
    assert by_line[2]["result"]["engine"] == "bing"
    assert by_line[4]["result"]["credits"] == 3
    assert all(record["ok"] and record["kind"] == "search" for record in written)
    assert "stopped: completed" in result.stderr
    assert str(out) in result.stderr
    assert canary_key not in result.output + result.stderr + out.read_text()
    assert emu.call(emu.emulator.stats).charged == 5


def test_stdin_to_stdout(serve: Callable[..., ServedEmulator]) -> None:
    """`batch -` reads stdin; without --out the JSONL goes to stdout, the report to stderr."""
    emu = serve()
    result = invoke(["batch", "-", "--progress", "off"], env=emu.env(), stdin='"a"\n"b"\n\n"c"\n')
    assert result.exit_code == ExitCode.OK, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(record["subject"] for record in lines) == ["a", "b", "c"]
    assert "stopped: completed" in result.stderr


def test_a_read_batch_takes_a_default_proxy_and_per_item_options(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--proxy applies to bare URLs; an item's own proxy wins; costs follow the tiers."""
    emu = serve()
    source = write_lines(
        tmp_path / "urls.jsonl",
        ["https://example.com/a", {"url": "https://example.com/b", "proxy": 2}],
    )
    out = tmp_path / "pages.jsonl"
    result = invoke(
        ["batch", str(source), "--kind", "read", "--proxy", "1", "--out", str(out)], env=emu.env()
    )
    assert result.exit_code == ExitCode.OK, result.stderr
    credits = {record["line"]: record["result"]["credits"] for record in records(out)}
    assert credits == {1: 4, 2: 7}
    assert all(record["result"]["markdown"] for record in records(out))


def test_plain_progress_lines_when_not_a_terminal(
    serve: Callable[..., ServedEmulator], queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Off a terminal, progress is plain periodic lines: count, lanes, credits."""
    emu = serve(latency=0.004, lanes=2)
    source, _ = queries
    result = invoke(
        ["batch", str(source), "--out", str(tmp_path / "o.jsonl"), "--progress-every", "0.01"],
        env=emu.env(),
    )
    assert result.exit_code == ExitCode.OK
    progress = [line for line in result.stderr.splitlines() if "lanes" in line and "/40" in line]
    assert progress, result.stderr
    assert "credits spent" in progress[0]


def test_plain_text_input_is_one_query_per_line(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """A plain list (the commonest input) runs as it is; --format text keeps JSON-looking lines."""
    emu = serve()
    source = tmp_path / "queries.txt"
    source.write_text('python asyncio\n\n"exact phrase" search\n{braces} too\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = invoke(["batch", str(source), "--out", str(out)], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    subjects = {record["line"]: record["subject"] for record in records(out)}
    assert subjects == {1: "python asyncio", 3: '"exact phrase" search', 4: "{braces} too"}
    quoted = tmp_path / "quoted.txt"
    quoted.write_text('"a"\n', encoding="utf-8")
    out2 = tmp_path / "out2.jsonl"
    forced = invoke(["batch", str(quoted), "--format", "text", "--out", str(out2)], env=emu.env())
    assert forced.exit_code == ExitCode.OK, forced.stderr
    assert [record["subject"] for record in records(out2)] == ['"a"']
    strict = invoke(["batch", str(source), "--format", "jsonl"], env=emu.env())
    assert strict.exit_code == ExitCode.USAGE
    assert "--format text" in one_error_line(strict)


def test_the_report_names_input_lines_as_the_output_does(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """Budget 4 of 8 items with a blank line 2: the report speaks in input lines, like "line"."""
    emu = serve(lanes=1)
    source = tmp_path / "queries.txt"
    source.write_text("q1\n\nq3\nq4\nq5\nq6\nq7\nq8\nq9\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = invoke(["batch", str(source), "--out", str(out), "--budget", "4"], env=emu.env())
    assert result.exit_code == ExitCode.BUDGET, result.stderr
    assert sorted(succeeded_lines(out)) == [1, 3, 4, 5]
    assert "not started: 1 (input line 6)" in result.stderr
    assert "never read: from input line 7" in result.stderr
    assert "from item" not in result.stderr


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_input_says_so_and_exits_0(
    serve: Callable[..., ServedEmulator], tmp_path: Path, content: str
) -> None:
    """A file with no items (or only blank lines): a warning naming it, exit 0, no request."""
    emu = serve()
    source = tmp_path / "empty.txt"
    source.write_text(content, encoding="utf-8")
    result = invoke(["batch", str(source)], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    assert f"warning: {source} holds no items" in result.stderr
    assert emu.call(emu.emulator.stats).requests == 0
    piped = invoke(["batch", "-", "--progress", "off"], env=emu.env(), stdin=content)
    assert piped.exit_code == ExitCode.OK
    assert "warning: <stdin> holds no items" in piped.stderr


def test_a_query_equal_to_the_key_resumes_and_never_shows_the_key(
    serve: Callable[..., ServedEmulator], canary_key: str, tmp_path: Path
) -> None:
    """The output masks a subject equal to the key; --resume still matches it, silently."""
    emu = serve([AccountSpec(credits=100, lanes=1, keys=[KeySpec(canary_key)])])
    source = tmp_path / "queries.txt"
    source.write_text(f"first\n{canary_key}\nthird\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    first = invoke(["batch", str(source), "--out", str(out), "--budget", "2"], env=emu.env())
    assert first.exit_code == ExitCode.BUDGET, first.stderr
    more = ["--budget", "10", "--raise-budget"]  # the job's budget was 2
    again = invoke(["batch", str(source), "--out", str(out), "--resume", *more], env=emu.env())
    assert again.exit_code == ExitCode.OK, again.stderr
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})
    seen = first.output + first.stderr + again.output + again.stderr + out.read_text()
    assert canary_key not in seen


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_full_disk_stops_the_batch_and_keeps_the_paid_results(
    serve: Callable[..., ServedEmulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out /dev/full: the batch stops (exit 7), reports, and the paid results are kept."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    emu = serve(lanes=2)
    source = write_lines(tmp_path / "in.jsonl", [f"q{n}" for n in range(20)])
    result = invoke(["batch", str(source), "--out", "/dev/full"], env=emu.env())
    assert result.exit_code == ExitCode.ERROR, result.stderr
    assert "stopped: error" in result.stderr
    assert "No space left on device" in result.stderr
    assert "unexpected" not in result.stderr
    kept = sorted(tmp_path.glob("searchcans-unwritten-*.jsonl"))
    assert len(kept) == 1, result.stderr
    assert str(kept[0]) in result.stderr
    charged = emu.call(emu.emulator.stats).charged
    assert charged >= 1
    assert len(succeeded_lines(kept[0])) == charged  # every paid result is in the file


def test_resume_adds_the_results_a_write_error_left_beside_the_output(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """OUT.unwritten (left by a failed write) joins OUT on --resume; those lines do not run."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl"
    record = {"line": 2, "kind": "search", "subject": "b", "ok": True, "result": {}}
    out.write_text(json.dumps({**record, "line": 1, "subject": "a"}) + "\n", encoding="utf-8")
    rescue = tmp_path / "out.jsonl.unwritten"
    rescue.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})
    assert not rescue.exists()
    assert emu.call(emu.emulator.stats).charged == 1  # only c ran


def test_fields_keep_only_what_is_asked(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--fields organic.link,credits: each result holds only those; the record's own keys stay."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b"])
    out = tmp_path / "out.jsonl"
    result = invoke(
        ["batch", str(source), "--out", str(out), "--fields", "organic.link,credits"],
        env=emu.env(),
    )
    assert result.exit_code == ExitCode.OK, result.stderr
    for record in records(out):
        assert set(record) == {"line", "kind", "subject", "ok", "credits", "result"}
        assert set(record["result"]) == {"organic", "credits"}
        assert all(set(hit) == {"link"} for hit in record["result"]["organic"])
    bad = invoke(["batch", str(source), "--fields", "nope"], env=emu.env())
    assert bad.exit_code == ExitCode.USAGE
    assert "--fields" in one_error_line(bad)


def test_a_gz_output_is_compressed_and_resumable(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--out x.jsonl.gz writes gzip; a budget stop then --resume completes it, none twice."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", [f"q{n}" for n in range(12)])
    out = tmp_path / "out.jsonl.gz"
    first = invoke(["batch", str(source), "--out", str(out), "--budget", "5"], env=emu.env())
    assert first.exit_code == ExitCode.BUDGET, first.stderr
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
    more = ["--budget", "12", "--raise-budget"]  # the job's budget was 5
    again = invoke(["batch", str(source), "--out", str(out), "--resume", *more], env=emu.env())
    assert again.exit_code == ExitCode.OK, again.stderr
    with gzip.open(out, "rt", encoding="utf-8") as stream:
        lines = [json.loads(line) for line in stream]
    assert Counter(r["line"] for r in lines if r["ok"]) == Counter(range(1, 13))
    assert emu.call(emu.emulator.stats).charged == 12


def test_export_unfinished_writes_the_inputs_still_to_run(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--export-unfinished: the failed (uncharged) and never-run input lines, as written."""
    emu = serve(lanes=1, faults=Faults(script={2: Fault.bad_request()}))
    source = tmp_path / "in.txt"
    source.write_text("q1\nq2\n\nq4\nq5\nq6\n", encoding="utf-8")
    left = tmp_path / "left.txt"
    command = ["batch", str(source), "--budget", "3", "--export-unfinished", str(left)]
    result = invoke(command, env=emu.env())
    assert result.exit_code == ExitCode.BUDGET, result.stderr
    # q1 ok, q2 refused (400, free), q4 and q5 ok, q6 not started (budget 3)
    assert left.read_text(encoding="utf-8") == "q2\nq6\n"
    assert f"unfinished: 2 input line(s) written to {left}" in result.stderr


def test_the_budget_holds_for_the_whole_job_across_resumes(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--budget 8, stop, --resume --budget 8: nothing more is spent; raising it takes a flag."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", [f"q{n}" for n in range(20)])
    out = tmp_path / "out.jsonl"
    base = ["batch", str(source), "--out", str(out), "--progress", "off"]

    def charged() -> int:
        return emu.call(emu.emulator.stats).charged

    first = invoke([*base, "--budget", "8"], env=emu.env())
    assert first.exit_code == ExitCode.BUDGET, first.stderr
    assert charged() == 8
    again = invoke([*base, "--resume", "--budget", "8"], env=emu.env())
    assert again.exit_code == ExitCode.BUDGET, again.stderr
    assert "spent so far 8 of 8" in again.stderr
    assert charged() == 8  # the per-run budget would have spent 8 more
    silent = invoke([*base, "--resume"], env=emu.env())
    assert silent.exit_code == ExitCode.BUDGET, silent.stderr
    assert charged() == 8
    higher = invoke([*base, "--resume", "--budget", "12"], env=emu.env())
    assert higher.exit_code == ExitCode.USAGE
    assert "--raise-budget" in one_error_line(higher)
    raised = invoke([*base, "--resume", "--budget", "12", "--raise-budget"], env=emu.env())
    assert raised.exit_code == ExitCode.BUDGET, raised.stderr
    assert "spent so far 8 of 12" in raised.stderr
    assert charged() == 12
    assert len(succeeded_lines(out)) == 12


def test_kept_results_join_an_output_whose_last_line_was_torn(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """OUT ends in a line cut short by a kill: it is dropped, OUT.unwritten joins, resume runs."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl"
    first = {"line": 1, "kind": "search", "subject": "a", "ok": True, "credits": 1, "result": {}}
    out.write_text(json.dumps(first) + '\n{"line": 3, "kind": "sea', encoding="utf-8")
    kept = {**first, "line": 2, "subject": "b"}
    (tmp_path / "out.jsonl.unwritten").write_text(json.dumps(kept) + "\n", encoding="utf-8")
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})
    assert emu.call(emu.emulator.stats).charged == 1  # only c ran


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"query": "b"', "is not valid JSON"),
        ('{"query": "b", "engin": "bing"}', "unknown field 'engin'"),
        ('{"url": "https://example.com"}', "'url' belongs to --kind read"),
        ('{"engine": "bing"}', "has no 'query'"),
        ("42", "expected a JSON string or an object"),
        ('{"query": "b", "pages": 0}', "pages must be 1-100"),
    ],
)
def test_a_bad_line_refuses_the_whole_file_before_anything_is_spent(
    serve: Callable[..., ServedEmulator], tmp_path: Path, line: str, expected: str
) -> None:
    """One line with its number on stderr, exit 2, no request sent, no output written."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["fine", "!" + line, "also fine"])
    out = tmp_path / "out.jsonl"
    result = invoke(["batch", str(source), "--out", str(out)], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    error = one_error_line(result)
    assert f"{source} line 2:" in error
    assert expected in error
    assert "nothing was run" in error
    assert emu.call(emu.emulator.stats).requests == 0
    assert not out.exists()


def test_a_bad_stdin_line_stops_the_batch_and_keeps_what_ran(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """On stdin a bad line is found as it comes: the lines before it ran and are kept."""
    emu = serve(lanes=1)
    out = tmp_path / "out.jsonl"
    result = invoke(
        ["batch", "-", "--out", str(out)], env=emu.env(), stdin='"a"\n"b"\n{"query": 1}\n"d"\n'
    )
    assert result.exit_code == ExitCode.USAGE
    assert "<stdin> line 3: query must be a str" in one_error_line(result)
    assert sorted(succeeded_lines(out)) == [1, 2]


def test_invalid_utf8_is_reported_with_its_line(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """A line that is not UTF-8 is a clear input error."""
    emu = serve()
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'"ok"\n"\xff\xfe"\n')
    result = invoke(["batch", str(source)], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert "line 2: is not UTF-8" in one_error_line(result)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--resume"], "--resume needs --out"),
        (["--kind", "read", "--engine", "bing"], "--engine does not apply to --kind read"),
        (["--proxy", "1"], "--proxy does not apply to --kind search"),
        (["--retry-possibly-charged"], "applies with --resume"),
    ],
)
def test_option_mistakes_are_usage_errors(
    serve: Callable[..., ServedEmulator], tmp_path: Path, options: list[str], expected: str
) -> None:
    """Options that cannot work together are refused with one line."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["x"])
    result = invoke(["batch", str(source), *options], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert expected in one_error_line(result)


def test_an_existing_output_is_never_overwritten(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """Without --resume an existing, non-empty --out is refused and left as it was."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["x"])
    out = tmp_path / "out.jsonl"
    out.write_text("paid for\n")
    result = invoke(["batch", str(source), "--out", str(out)], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert "--resume" in one_error_line(result)
    assert out.read_text() == "paid for\n"
    same = invoke(["batch", str(source), "--out", str(source)], env=emu.env())
    assert "is the input file" in one_error_line(same)
    folder = invoke(["batch", str(source), "--out", str(tmp_path)], env=emu.env())
    assert folder.exit_code == ExitCode.USAGE
    nowhere = invoke(
        ["batch", str(source), "--out", str(tmp_path / "no" / "o.jsonl")], env=emu.env()
    )
    assert nowhere.exit_code == ExitCode.USAGE
    assert "cannot write" in one_error_line(nowhere)
    assert emu.call(emu.emulator.stats).requests == 0


def test_a_rejected_key_stops_before_anything_runs(
    serve: Callable[..., ServedEmulator], tmp_path: Path, canary_key: str
) -> None:
    """401 when the pool reads the account: one line, exit 5, the key nowhere."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["x"])
    result = invoke(["batch", str(source)], env=emu.env(SEARCHCANS_API_KEY=canary_key))
    assert result.exit_code == ExitCode.AUTH
    assert "HTTP 401" in one_error_line(result)
    assert canary_key not in result.output + result.stderr


# -- stopping and resuming -----------------------------------------------------------------


def test_a_budget_stop_then_a_resume_pays_each_item_once(
    serve: Callable[..., ServedEmulator], queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Exit 3 at the budget; after a top-up --resume finishes; the server charged each once."""
    emu = serve(credits=25, lanes=3)
    source, words = queries
    out = tmp_path / "out.jsonl"
    first = invoke(["batch", str(source), "--out", str(out), "--floor", "5"], env=emu.env())
    assert first.exit_code == ExitCode.BUDGET, first.stderr
    assert "stopped: budget" in first.stderr
    assert "--resume" in first.stderr
    assert len(succeeded_lines(out)) == 20
    emu.call(emu.emulator.add_credits, 100)
    second = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert second.exit_code == ExitCode.OK, second.stderr
    assert "20 item(s)" in second.stderr
    assert "40 of 40 input item(s) have succeeded" in second.stderr
    charges = emu.call(emu.emulator.charges_by_subject)
    assert set(charges) == set(words)
    assert set(charges.values()) == {1}
    assert succeeded_lines(out) == Counter(range(1, 41))
    again = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert again.exit_code == ExitCode.OK
    assert emu.call(emu.emulator.stats).charged == 40


def test_resume_refuses_an_input_that_changed(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """The output records another subject for a line number: refuse before spending."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b"])
    out = tmp_path / "out.jsonl"
    assert invoke(["batch", str(source), "--out", str(out)], env=emu.env()).exit_code == 0
    write_lines(source, ["a", "changed"])
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert result.exit_code == ExitCode.USAGE
    assert "the input changed" in one_error_line(result)
    assert emu.call(emu.emulator.stats).requests == 2


def test_resume_refuses_a_file_it_did_not_write(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """An output that is not ours, or of the other kind, is refused with its line number."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a"])
    out = tmp_path / "out.jsonl"
    out.write_text("hello\n")
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert f"{out} line 1: is not a result line" in one_error_line(result)
    out.write_text(json.dumps({"line": 1, "kind": "read", "subject": "a", "ok": True}) + "\n")
    other = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert "holds a read result" in one_error_line(other)


def test_a_torn_last_line_is_dropped_and_its_item_runs_again(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """A line cut by a kill is removed on resume; a complete one without newline is kept."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl"
    done = json.dumps({"line": 1, "kind": "search", "subject": "a", "ok": True, "result": {}})
    out.write_text(done + "\n" + '{"line": 2, "kind": "sea')
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})
    assert emu.call(emu.emulator.charges_by_subject) == Counter({"b": 1, "c": 1})
    out.write_text(done)  # complete, only the newline is missing
    again = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert again.exit_code == ExitCode.OK
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})


def test_failed_items_exit_1_and_resume_retries_them(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """An uncharged failure (HTTP 400): exit 1, its error in the output; --resume reruns it."""
    emu = serve(lanes=1, faults=Faults(script={2: Fault.bad_request()}))
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl"
    first = invoke(["batch", str(source), "--out", str(out)], env=emu.env())
    assert first.exit_code == ExitCode.FAILED_ITEMS
    failed = [record for record in records(out) if not record["ok"]]
    assert len(failed) == 1
    assert failed[0]["error"]["type"] == "BadRequestError"
    assert failed[0]["error"]["charged"] is False
    second = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert second.exit_code == ExitCode.OK
    assert succeeded_lines(out) == Counter({1: 1, 2: 1, 3: 1})


def test_possibly_charged_failures_are_not_sent_again_unless_asked(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """A failure with charged null is skipped on resume (exit 1) until --retry-possibly-charged."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b"])
    out = tmp_path / "out.jsonl"
    doubtful = {"line": 2, "kind": "search", "subject": "b", "ok": False,
                "error": {"type": "CancelledError", "charged": None}}  # fmt: skip
    out.write_text(json.dumps(doubtful) + "\n")
    first = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert first.exit_code == ExitCode.FAILED_ITEMS
    assert "--retry-possibly-charged" in first.stderr
    assert emu.call(emu.emulator.charges_by_subject) == Counter({"a": 1})
    second = invoke(
        ["batch", str(source), "--out", str(out), "--resume", "--retry-possibly-charged"],
        env=emu.env(),
    )
    assert second.exit_code == ExitCode.OK
    assert emu.call(emu.emulator.charges_by_subject) == Counter({"a": 1, "b": 1})


def test_fail_fast_stops_at_the_first_failure(
    serve: Callable[..., ServedEmulator], queries: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """--fail-fast: the first failed item stops the batch, exit 7, with one error line."""
    emu = serve(lanes=1, faults=Faults(script={3: Fault.bad_request()}))
    source, _ = queries
    out = tmp_path / "out.jsonl"
    result = invoke(["batch", str(source), "--out", str(out), "--fail-fast"], env=emu.env())
    assert result.exit_code == ExitCode.ERROR
    assert "bad request" in one_error_line(result)
    assert "stopped: error" in result.stderr
    assert len(records(out)) == 3


# -- the run layer: Ctrl-C, progress, exit codes ----------------------------------------------


async def _run(emu: Emulator, spec: BatchSpec, interrupts: Interrupts) -> BatchRun:
    async with SearchCans(emu.api_key, base_url=emu.base_url) as client:
        return await run_batch(
            client, spec, console=Console(file=io.StringIO()), events=EventCounter(),
            interrupts=interrupts, scrub=Scrub(emu.api_key), stdin=io.BytesIO(),
            stdout=io.StringIO(),
        )  # fmt: skip


async def _wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110  # polls the emulator's records: no event
            await asyncio.sleep(0.001)


@pytest.mark.parametrize("presses", [1, 2])
async def test_ctrl_c_stops_gracefully_then_cancels(
    tmp_path: Path, queries: tuple[Path, list[str]], presses: int
) -> None:
    """One press: in flight finishes and is written. Two: in flight is cancelled, and written."""
    source, _ = queries
    out = tmp_path / "out.jsonl"
    notes: list[str] = []
    interrupts = Interrupts(notes.append)
    async with Emulator(lanes=3, latency=0) as emu:
        emu.pause()  # hold every admitted request in its lane
        task = asyncio.create_task(_run(emu, BatchSpec(input=source, out=out, progress="off"),
                                        interrupts))  # fmt: skip
        await _wait_for(lambda: emu.stats().in_flight == 3)
        for _ in range(presses):
            interrupts.press()
        emu.resume()
        run = await task
    assert run.report.stop_reason is StopReason.CANCELLED
    assert run.exit_code is ExitCode.CANCELLED
    assert len(notes) == presses
    written = records(out)
    assert len(written) == 3
    if presses == 1:
        assert all(record["ok"] for record in written)
    else:
        assert {record["error"]["type"] for record in written} == {"CancelledError"}
        assert all(record["error"]["charged"] is None for record in written)


async def test_ctrl_c_before_the_pool_opens_cancels_at_once() -> None:
    """Nothing is spent yet: the first press cancels the command's task."""
    interrupts = Interrupts(print)

    async def command() -> None:
        with interrupts.installed():
            interrupts.press()
            await asyncio.sleep(30)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(command())


async def test_live_progress_draws_a_bar_and_the_stats() -> None:
    """On a terminal the display has a bar, done/total, lanes, credits, retries."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    snapshot = Snapshot(
        done=5, total=10, failed=1, retries=2, lanes=2, plan_lanes=4, in_flight=2, spent=5,
        possibly_charged=1, budget_left=7, note="stopping",
    )  # fmt: skip
    async with BatchProgress(console, lambda: snapshot, mode="auto") as progress:
        assert progress.mode == "live"
        await asyncio.sleep(0.15)
    text = buffer.getvalue()
    assert "5/10" in text
    assert "lanes 2/4 busy (2 in use after a 1010 answer)" in text
    assert "1 possibly charged" in text
    assert "2 retries" in text
    assert "stopping" in text


def test_reduced_lanes_read_as_a_limit_not_a_bug() -> None:
    """After a 1010 the pool uses fewer lanes while 3 still run: no "3/1" in the line."""
    snapshot = Snapshot(done=5, total=10, failed=0, retries=1, lanes=1, plan_lanes=3,
                        in_flight=3, spent=5, possibly_charged=0, budget_left=7)  # fmt: skip
    text = stats_text(snapshot, None)
    assert text.startswith("lanes 3/3 busy (1 in use after a 1010 answer)")
    assert "3/1" not in text


async def test_a_stopped_live_display_keeps_no_spinner_or_eta() -> None:
    """The last frame, left above the report, shows where the batch stopped: no ETA."""
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    snapshot = Snapshot(done=5, total=10, failed=0, retries=0, lanes=2, plan_lanes=2,
                        in_flight=0, spent=5, possibly_charged=0, budget_left=0)  # fmt: skip
    progress = BatchProgress(console, lambda: snapshot, mode="live", title="search")
    async with progress:
        pass
    final = Console(file=io.StringIO(), width=120, record=True)
    final.print(progress.final_frame())
    text = final.export_text()
    assert "5/10" in text
    assert "ETA" not in text
    assert not set(text) & set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's spinner frames


def test_progress_targets_what_the_budget_covers(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--budget 5 of 20 one-credit items: progress counts to 5, not 20."""
    emu = serve(latency=0.002)
    source = write_lines(tmp_path / "in.jsonl", [f"q{n}" for n in range(20)])
    command = ["batch", str(source), "--budget", "5", "--progress-every", "0.01"]
    result = invoke([*command, "--out", str(tmp_path / "o.jsonl")], env=emu.env())
    assert result.exit_code == ExitCode.BUDGET, result.stderr
    lines = [line for line in result.stderr.splitlines() if "lanes" in line and "busy" in line]
    assert lines, result.stderr
    assert all("/5 (" in line for line in lines), lines
    assert "the budget covers 5 of 20" in lines[0]


def test_more_lanes_than_the_account_has_is_a_warning(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """--lanes 5 on a 2-lane account: a warning without -v, and 2 lanes used."""
    emu = serve(lanes=2)
    source = write_lines(tmp_path / "in.jsonl", ["a", "b"])
    result = invoke(["batch", str(source), "--lanes", "5", "--progress", "off"], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "warning: --lanes 5 is more than the account's 2 Parallel Lanes" in result.stderr
    assert emu.call(emu.emulator.stats).peak_in_flight <= 2


def test_plain_progress_line_has_rate_and_eta() -> None:
    """A plain line: count and share, stats, rate and ETA."""
    snapshot = Snapshot(done=50, total=100, failed=0, retries=0, lanes=3, plan_lanes=3,
                        in_flight=3, spent=50, possibly_charged=0, budget_left=50)  # fmt: skip
    line = BatchProgress.plain_line(snapshot, 10.0, 5.0).plain
    assert line.startswith("[    5s] 50/100 (50%)")
    assert "10.0/s" in line
    assert line.endswith("ETA 5s")


def _report(reason: StopReason, **fields: Any) -> BatchReport[Job]:
    return BatchReport(reason, succeeded=1, failed=(), not_started=(), unread_from=None,
                       items_read=1, **fields)  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (StopReason.COMPLETED, ExitCode.OK),
        (StopReason.BUDGET, ExitCode.BUDGET),
        (StopReason.BILLING, ExitCode.BILLING),
        (StopReason.AUTH, ExitCode.AUTH),
        (StopReason.CANCELLED, ExitCode.CANCELLED),
        (StopReason.ERROR, ExitCode.ERROR),
    ],
)
def test_each_stop_reason_has_its_exit_code(reason: StopReason, code: ExitCode) -> None:
    """0 completed, 3 budget, 4 billing, 5 auth, 6 cancelled, 7 error."""
    run = BatchRun(report=_report(reason), spec=BatchSpec(), total=1, skipped=0, doubtful=0,
                   written=1)  # fmt: skip
    assert run.exit_code is code


def test_failures_and_input_errors_have_their_own_exit_codes() -> None:
    """Completed with failures: 1; stopped by a bad input line: 2."""
    request = SearchRequest(query="q")
    failed = Outcome(0, Job(1, request), None, ServerError("boom"))
    report = BatchReport(StopReason.COMPLETED, succeeded=0, failed=(failed,), not_started=(),
                         unread_from=None, items_read=1)  # fmt: skip
    run = BatchRun(report=report, spec=BatchSpec(), total=1, skipped=0, doubtful=0, written=1)
    assert run.exit_code is ExitCode.FAILED_ITEMS
    bad_input = _report(StopReason.ERROR, error=InputError("<stdin>", 3, "bad"))
    run = BatchRun(report=bad_input, spec=BatchSpec(), total=None, skipped=0, doubtful=0,
                   written=1)  # fmt: skip
    assert run.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AuthenticationError("no"), ExitCode.AUTH),
        (InsufficientCreditsError("no"), ExitCode.BILLING),
        (CreditsExhausted(needed=2, available=1), ExitCode.BUDGET),
        (InputError("in.jsonl", 1, "bad"), ExitCode.USAGE),
        (SearchCansError("other"), ExitCode.ERROR),
    ],
)
def test_each_error_has_its_exit_code(error: Exception, code: ExitCode) -> None:
    """A command that fails outside a batch exits by the error's kind."""
    assert exit_code_for_error(error) is code


def test_resume_state_reads_what_earlier_runs_wrote(tmp_path: Path) -> None:
    """Succeeded wins over any failure; an uncharged failure is not doubtful."""
    out = tmp_path / "out.jsonl"
    lines = [
        {"line": 1, "kind": "search", "subject": "a", "ok": False, "error": {"charged": None}},
        {"line": 1, "kind": "search", "subject": "a", "ok": True},
        {"line": 2, "kind": "search", "subject": "b", "ok": False, "error": {"charged": False}},
        {"line": 3, "kind": "search", "subject": "c", "ok": False, "error": {"charged": None}},
    ]
    write_lines(out, lines)
    state = ResumeState.load(out, "search")
    parser = LineParser("search", "in")
    job = {n: parser.parse(n, json.dumps(s).encode()) for n, s in ((1, "a"), (2, "b"), (3, "c"))}
    assert [state.skip(j, "in") for j in job.values() if j] == ["succeeded", None, "doubtful"]
    assert ResumeState.load(tmp_path / "missing.jsonl", "search").records == 0


# -- the demo ----------------------------------------------------------------------------------


def test_the_demo_stops_at_the_budget_resumes_and_proves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's story in small: a budget stop, a top-up, a resume, and the final check.

    Its working folder (the generated input) is removed at the end.
    """
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / "demo.jsonl"
    result = invoke(
        ["demo", "--items", "120", "--latency", "0.001", "--progress", "plain", "--out", str(out)]
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert "exit code 3 (budget)" in result.stdout
    assert "exit code 0 (ok)" in result.stdout
    assert "charged exactly once, none twice, none missing" in result.stdout
    assert succeeded_lines(out) == Counter(range(1, 121))
    again = invoke(["demo", "--items", "20", "--out", str(out)])
    assert again.exit_code == ExitCode.USAGE
    assert "already exists" in one_error_line(again)
    assert list(scratch.iterdir()) == []  # nothing left behind in the temporary folder


def test_the_demo_plan_has_distinct_queries_and_a_budget_that_runs_out() -> None:
    """Past 400 items the queries stay distinct; the credits cover about 60 % of the cost."""
    from searchcans_async._cli.demo import DemoOptions, _plan  # noqa: PLC0415  # imported where the test needs it

    plan = _plan(DemoOptions(items=450))
    assert len(set(plan.queries)) == len(plan.lines) == 450
    assert plan.floor < plan.credits < plan.floor + 450
    assert plan.credits - plan.floor + plan.top_up >= 450


def test_the_demo_check_fails_loudly_on_a_double_charge(tmp_path: Path) -> None:
    """The final check reports an item charged twice, or an output line missing."""
    from searchcans_async._cli.demo import DemoOptions, _check, _plan  # noqa: PLC0415  # imported where the test needs it

    plan = _plan(DemoOptions(items=10))
    out = write_lines(tmp_path / "out.jsonl", [{"line": 1, "subject": "x", "ok": True}])
    buffer = io.StringIO()
    code = _check(Console(file=buffer), plan, Emulator(), out)
    assert code is ExitCode.ERROR
    assert "check FAILED" in buffer.getvalue()


async def test_a_failing_stdin_stops_the_batch_with_its_error(tmp_path: Path) -> None:
    """A read error on stdin ends the batch (reason error) and is reported, not raised."""

    class BrokenStdin(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            raise OSError("stdin went away")

    out = tmp_path / "out.jsonl"
    async with Emulator(latency=0) as emu:
        async with SearchCans(emu.api_key, base_url=emu.base_url) as client:
            run = await run_batch(
                client, BatchSpec(out=out, progress="off"), console=Console(file=io.StringIO()),
                events=EventCounter(), interrupts=Interrupts(print), scrub=Scrub(emu.api_key),
                stdin=BrokenStdin(), stdout=io.StringIO(),
            )  # fmt: skip
    assert run.report.stop_reason is StopReason.ERROR
    assert "stdin went away" in str(run.report.error)
    assert run.exit_code is ExitCode.ERROR


def test_a_verbose_batch_with_faults_never_shows_the_key(
    serve: Callable[..., ServedEmulator], canary_key: str, tmp_path: Path
) -> None:
    """-vv, retries, a possibly charged failure: the canary is in no output and no file."""
    faults = Faults(
        script={1: Fault.lane_busy(), 2: Fault.server_error(503), 3: Fault.reset_after_charge()}
    )
    emu = serve([AccountSpec(keys=[KeySpec(canary_key)])], faults=faults)
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c", "d"])
    out = tmp_path / "out.jsonl"
    result = invoke(["-vv", "batch", str(source), "--out", str(out)], env=emu.env())
    assert result.exit_code == ExitCode.FAILED_ITEMS
    doubtful = [record for record in records(out) if not record["ok"]]
    assert [record["error"]["charged"] for record in doubtful] == [None]
    assert "retrying" in result.stderr
    assert canary_key not in result.output + result.stderr + out.read_text()


def test_the_output_lock_refuses_a_second_holder_and_cleans_up(tmp_path: Path) -> None:
    """One holder at a time (the kernel's flock), its pid in the message, no file left."""
    from searchcans_async._cli.lock import output_lock  # noqa: PLC0415  # imported where the test needs it

    out = tmp_path / "out.jsonl"
    with output_lock(out):
        assert (tmp_path / "out.jsonl.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(CliError) as caught, output_lock(out):
            pass
        assert caught.value.exit_code == ExitCode.LOCKED
        assert f"another batch is writing {out} (process {os.getpid()})" in str(caught.value)
    assert not (tmp_path / "out.jsonl.lock").exists()
    with output_lock(out):  # free again
        pass
    with pytest.raises(CliError, match="cannot write"), output_lock(tmp_path / "no" / "o.jsonl"):
        pass


def test_a_gz_output_cut_short_resumes_and_a_plain_one_named_gz_is_refused(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    """A gzip output torn by a kill keeps its whole lines; a .gz that is not gzip is kept."""
    emu = serve()
    source = write_lines(tmp_path / "in.jsonl", ["a", "b", "c"])
    out = tmp_path / "out.jsonl.gz"
    first = {"line": 1, "kind": "search", "subject": "a", "ok": True, "credits": 1, "result": {}}
    whole = gzip.compress((json.dumps(first) + "\n").encode())
    out.write_bytes(whole + gzip.compress(b'{"line": 2, "kind": "se')[:-12])  # torn member
    result = invoke(["batch", str(source), "--out", str(out), "--resume"], env=emu.env())
    assert result.exit_code == ExitCode.OK, result.stderr
    with gzip.open(out, "rt", encoding="utf-8") as stream:
        assert Counter(json.loads(line)["line"] for line in stream) == Counter({1: 1, 2: 1, 3: 1})
    assert emu.call(emu.emulator.stats).charged == 2
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text(json.dumps(first) + "\n", encoding="utf-8")
    refused = invoke(["batch", str(source), "--out", str(plain), "--resume"], env=emu.env())
    assert refused.exit_code == ExitCode.USAGE
    assert "cannot read" in one_error_line(refused)
    assert plain.read_text(encoding="utf-8") == json.dumps(first) + "\n"  # untouched
