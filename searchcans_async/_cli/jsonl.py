"""The batch command's files: JSONL input lines, the JSONL output, and resuming from it.

Why one module: reading input, writing output and resuming from it share one line format,
kept in one place.

Input: one item per line, either a JSON string (the query, or the URL for ``--kind read``)
or an object with ``query`` / ``url`` plus per-item options named like the keyword
arguments of ``SearchCans.search`` / ``SearchCans.read``. Blank lines are skipped; line
numbers count every physical line from 1.

Output: one JSON object per finished item, written and flushed as it finishes::

    {"line": 3, "kind": "search", "subject": "asyncio", "ok": true, "result": {...}}
    {"line": 4, "kind": "search", "subject": "aiohttp", "ok": false, "error": {...}}

Resuming reads the output first: an input line whose number and subject are recorded
there as succeeded is skipped, so nothing already paid for is paid again.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import threading
import zlib
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, Literal, NamedTuple

import attrs

from .._client import Costs, ReadRequest, SearchCansError, SearchRequest
from .output import dumps, error_payload, result_payload

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
    from pathlib import Path

    from .._client import ReaderPage, SearchResult
    from .._lanes import Outcome

__all__ = [
    "InputError",
    "InputFormat",
    "Job",
    "Kind",
    "LineParser",
    "OutputError",
    "ResultWriter",
    "ResumeState",
    "StdinLines",
    "complete_lines",
    "job_json",
    "open_results",
    "read_jobs",
]

Kind = Literal["search", "read"]

SUBJECT_FIELD: Final[Mapping[str, str]] = {"search": "query", "read": "url"}
_REQUEST_TYPE: Final = {"search": SearchRequest, "read": ReadRequest}
_EXCERPT_CHARS: Final = 60


def option_fields(kind: Kind) -> tuple[str, ...]:
    """The per-item options a batch of ``kind`` accepts (the request's own fields)."""
    subject = SUBJECT_FIELD[kind]
    return tuple(field.name for field in attrs.fields(_REQUEST_TYPE[kind]) if field.name != subject)


class InputError(Exception):
    """A line of the batch input (or of the output being resumed) cannot be used."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = f"{source} line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


class Job(NamedTuple):
    """One item of a batch: its input line number and its validated request."""

    line: int
    request: SearchRequest | ReadRequest

    @property
    def subject(self) -> str:
        """The query or the URL."""
        return self.request.subject


def job_json(job: Job) -> str:
    """A job as one JSONL input line: its query (or URL) and the options it sets.

    Example:
        >>> job_json(Job(3, SearchRequest(query="q", engine="bing")))
        '{"query": "q", "engine": "bing"}'
    """
    request = job.request
    subject = SUBJECT_FIELD["search" if isinstance(request, SearchRequest) else "read"]
    line: dict[str, Any] = {subject: request.subject}
    for field in attrs.fields(type(request)):
        value = getattr(request, field.name)
        if field.name != subject and value != field.default:
            line[field.name] = value
    return json.dumps(line, ensure_ascii=False)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


InputFormat = Literal["auto", "jsonl", "text"]


class LineParser:
    """Turns one input line into a :class:`Job`, or says exactly what is wrong with it.

    ``fmt`` is the input's format: ``"jsonl"`` (a JSON string or object per line),
    ``"text"`` (the line itself is the query or URL) or ``"auto"``: JSONL if the first
    non-blank line is a JSON string or object, plain text otherwise, for the whole input.
    """

    def __init__(
        self,
        kind: Kind,
        source: str,
        defaults: Mapping[str, Any] | None = None,
        *,
        fmt: InputFormat = "auto",
    ) -> None:
        self.kind = kind
        self.source = source
        self.subject_field = SUBJECT_FIELD[kind]
        self.options = frozenset(option_fields(kind))
        self.defaults = dict(defaults or {})
        self.format = fmt
        self._request = _REQUEST_TYPE[kind]

    def _detect(self, text: str) -> InputFormat:
        """Settle ``auto`` on the first non-blank line."""
        if self.format == "auto":
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            self.format = "jsonl" if isinstance(value, str | dict) else "text"
        return self.format

    def _fail(self, line: int, problem: str) -> InputError:
        return InputError(self.source, line, problem)

    def parse(self, line: int, raw: bytes) -> Job | None:
        """Parse the input's line number ``line``; ``None`` for a blank line.

        Raises:
            InputError: The line is not JSON, not a string or an object, has an unknown
                field, lacks the query/URL, or has an invalid option.
        """
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail(line, "is not UTF-8 text") from None
        if line == 1:
            text = text.removeprefix("\ufeff")
        text = text.strip()
        if not text:
            return None
        if self._detect(text) == "text":
            return Job(line, self._request_from(line, {self.subject_field: text}))
        try:
            value = json.loads(text)
        except ValueError as error:
            message = getattr(error, "msg", "invalid JSON")
            raise self._fail(
                line, f"is not valid JSON ({message}): {_excerpt(text)!r}; write one JSON "
                f"string or object per line, e.g. \"python asyncio\" or "
                f"{{\"{self.subject_field}\": \"...\"}}, or use --format text for one "
                f"plain {self.subject_field} per line"
            ) from None  # fmt: skip
        if isinstance(value, str):
            fields: dict[str, Any] = {self.subject_field: value}
        elif isinstance(value, dict):
            fields = value
        else:
            raise self._fail(
                line,
                f"expected a JSON string or an object with {self.subject_field!r}, "
                f"got {type(value).__name__} {_excerpt(text)!r}",
            )
        return Job(line, self._request_from(line, fields))

    def _request_from(self, line: int, fields: dict[str, Any]) -> SearchRequest | ReadRequest:
        unknown = sorted(set(fields) - self.options - {self.subject_field})
        if unknown:
            other = "url" if self.kind == "search" else "query"
            hint = (
                f" ({other!r} belongs to --kind {'read' if other == 'url' else 'search'})"
                if unknown == [other]
                else ""
            )
            raise self._fail(
                line,
                f"unknown field {unknown[0]!r}{hint}; fields for --kind {self.kind}: "
                f"{self.subject_field}, {', '.join(sorted(self.options))}",
            )
        if self.subject_field not in fields:
            raise self._fail(line, f"the object has no {self.subject_field!r}")
        options = {**self.defaults, **fields}
        try:
            request: SearchRequest | ReadRequest = self._request(**options)
        except (TypeError, ValueError) as error:
            raise self._fail(line, str(error)) from None
        return request


def read_jobs(stream: IO[bytes], parser: LineParser) -> Iterator[Job]:
    """Every job of a binary JSONL stream, in order; raises :class:`InputError` on a bad line."""
    for number, raw in enumerate(stream, 1):
        job = parser.parse(number, raw)
        if job is not None:
            yield job


def open_results(path: Path) -> gzip.GzipFile | BinaryIO:
    """Open a results file for reading, through gzip when its name ends with ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


def complete_lines(stream: Iterable[bytes]) -> Iterator[bytes]:
    """The stream's lines, stopping quietly where a compressed file was cut short."""
    try:
        yield from stream
    except (EOFError, gzip.BadGzipFile, zlib.error):  # a run killed mid-write: a torn tail
        return


class StdinLines:
    """Lines of a blocking binary stream (stdin), read in a thread, as an async iterator.

    Reading stdin on the event loop would stall every lane while the producer is slow;
    a daemon thread reads ahead by at most ``read_ahead`` lines instead, and stops when
    the batch no longer wants lines (``close()``), even if stdin never ends.
    """

    def __init__(self, stream: IO[bytes], *, read_ahead: int = 256) -> None:
        self._stream = stream
        self._room = threading.Semaphore(read_ahead)
        self._stop = threading.Event()
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="searchcans-stdin", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody reads any more
            return False
        return True

    def _read(self) -> None:
        lines = self._lines()
        try:
            while not self._stop.is_set():
                if not self._room.acquire(timeout=0.1):
                    continue
                raw = next(lines, b"")
                if not raw or not self._put(raw):
                    break
        except Exception as error:  # noqa: BLE001  # handed to the reader, who reports it
            self._put(error)
            return
        self._put(None)

    def _lines(self) -> Iterator[bytes]:
        """The stream's lines, read from its file descriptor when it has one.

        A thread blocked in a buffered ``readline()`` holds the buffer's lock, and an
        interpreter exiting while stdin is still open then aborts ("Fatal Python error:
        could not acquire lock ... daemon threads", exit 134). ``os.read`` on the file
        descriptor holds no such lock, so the process exits with its own code.
        """
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream: no descriptor
            yield from iter(self._stream.readline, b"")
            return
        pending = b""
        while True:
            chunk = os.read(fd, 65_536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
        if pending:
            yield pending

    def close(self) -> None:
        """Stop reading ahead."""
        self._stop.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self._queue.get()
                self._room.release()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()


class ResumeState:
    """What an earlier run wrote: which input lines succeeded, or failed possibly charged.

    A line is *succeeded* when any record of it is ``ok``; it is *doubtful* when it never
    succeeded and one of its failures was possibly charged (``"charged": null`` or
    ``true``, e.g. cancelled in flight). Resuming skips both by default, like the client's
    retries, which never resend a possibly charged call unless asked to.
    """

    def __init__(self, name: str, kind: Kind, scrub: Callable[[str], str] | None = None) -> None:
        self.name = name
        self.kind = kind
        # The output holds subjects as written: masked where they contained the key.
        self._scrub: Callable[[str], str] = scrub or str
        self.succeeded: dict[int, str] = {}
        self.doubtful: dict[int, str] = {}
        self.records = 0
        self.spent = 0  # credits the job's earlier runs spent, or may have (per the records)
        self.complete_bytes = 0
        self.missing_newline = False

    @classmethod
    def load(cls, path: Path, kind: Kind, scrub: Callable[[str], str] | None = None) -> ResumeState:
        """Read the output file ``path`` (missing: nothing done yet).

        A last line cut short (the process was killed while writing it) is ignored and
        ``complete_bytes`` says where the complete lines end; any other unreadable line
        is an :class:`InputError`.
        """
        state = cls(str(path), kind, scrub)
        try:
            stream = open_results(path)
        except FileNotFoundError:
            return state
        with stream:
            for number, raw in enumerate(complete_lines(stream), 1):
                if not raw.endswith(b"\n"):  # the last line, without its newline
                    if state._record(raw) is not None:
                        state.missing_newline = True
                        state.complete_bytes += len(raw)
                        state._add(number, raw)
                    break  # else a torn last line: its item runs again
                state.complete_bytes += len(raw)
                if raw.strip():
                    state._add(number, raw)
        for line in state.succeeded:
            state.doubtful.pop(line, None)
        return state

    @classmethod
    def is_record(cls, raw: bytes) -> bool:
        """Whether ``raw`` is one whole result line of a batch."""
        return cls._record(raw) is not None

    @staticmethod
    def _record(raw: bytes) -> dict[str, Any] | None:
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if (
            isinstance(record, dict)
            and isinstance(record.get("line"), int)
            and isinstance(record.get("subject"), str)
            and isinstance(record.get("ok"), bool)
        ):
            return record
        return None

    def _add(self, number: int, raw: bytes) -> None:
        record = self._record(raw)
        if record is None:
            raise InputError(
                self.name, number, "is not a result line of searchcans-async batch; "
                "--resume needs the --out file of an earlier run of the same batch"
            )  # fmt: skip
        if record.get("kind", self.kind) != self.kind:
            raise InputError(
                self.name,
                number,
                f"holds a {record.get('kind')} result, but this batch is --kind {self.kind}",
            )
        self.records += 1
        self.spent += _credits_of(record)
        line, subject = record["line"], record["subject"]
        if record["ok"]:
            self.succeeded[line] = subject
            return
        error = record.get("error")
        if not isinstance(error, dict) or error.get("charged", None) is not False:
            self.doubtful[line] = subject

    def skip(self, job: Job, input_name: str, *, retry_doubtful: bool = False) -> str | None:
        """Why ``job`` must not run again (``"succeeded"``, ``"doubtful"``), or ``None``.

        Raises:
            InputError: The output records another subject for this input line: the
                input changed since that run.
        """
        for reason, lines in (("succeeded", self.succeeded), ("doubtful", self.doubtful)):
            recorded = lines.get(job.line)
            if recorded is None:
                continue
            subject = self._scrub(job.subject)  # compared as written, never shown in clear
            if recorded != subject:
                raise InputError(
                    input_name,
                    job.line,
                    f"is {_excerpt(subject)!r} but {self.name} records "
                    f"{_excerpt(recorded)!r} for it: the input changed since that run; "
                    "resume with the same input, or write to a new --out",
                )
            if reason == "doubtful" and retry_doubtful:
                return None
            return reason
        return None


def _credits_of(record: Mapping[str, Any]) -> int:
    """What one output record cost, or may have: its ``credits`` and ``possibly_charged``.

    Records written before those fields existed carry the cost in ``result.credits``.
    """
    spent = 0
    for name in ("credits", "possibly_charged"):
        value = record.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            spent += value
    if "credits" not in record and isinstance(record.get("result"), dict):
        value = record["result"].get("credits")
        spent += value if isinstance(value, int) and not isinstance(value, bool) else 0
    return spent


class ResultWriter:
    """Writes one JSON line per finished item, flushed at once, never with the key in it."""

    def __init__(
        self,
        stream: IO[str],
        kind: Kind,
        scrub: Callable[[str], str],
        fields: tuple[str, ...] | None = None,
        costs: Costs | None = None,
    ) -> None:
        self._costs = costs or Costs()
        self._stream = stream
        self._kind = kind
        self._scrub = scrub
        self._fields = fields
        self.written = 0
        self.succeeded = 0
        self.failed = 0
        self.credits = 0
        # After a write error (a full disk, a closed pipe) every record is kept here
        # instead, so that results already paid for are never lost.
        self.error: OSError | None = None
        self.unwritten: list[str] = []
        self.unwritten_lines: list[int] = []

    def write(self, outcome: Outcome[Job, SearchResult | ReaderPage]) -> None:
        """Write ``outcome`` (``LanePool.run_batch``'s ``on_outcome``)."""
        job = outcome.item
        record: dict[str, Any] = {"line": job.line, "kind": self._kind, "subject": job.subject}
        if outcome.error is None and outcome.result is not None:
            record["ok"] = True
            record["credits"] = outcome.result.credits
            payload = result_payload(outcome.result)
            record["result"] = payload if self._fields is None else keep(payload, self._fields)
            self.succeeded += 1
            self.credits += outcome.result.credits
        else:
            record["ok"] = False
            error = outcome.error or RuntimeError("no result")
            charged = error.charged if isinstance(error, SearchCansError) else None
            cost = job.request.cost(self._costs)
            # What the item cost, or may have: a resumed job's budget counts it.
            record["credits"] = cost if charged else 0
            if charged is None:
                record["possibly_charged"] = cost
            record["error"] = error_payload(error)
            self.failed += 1
        text = self._scrub(dumps(record)) + "\n"
        if self.error is None:
            try:
                self._stream.write(text)
                self._stream.flush()
            except OSError as error:  # stops the batch (on_outcome raised); nothing is lost
                self.error = error
            else:
                self.written += 1
                return
        self.unwritten.append(text)
        self.unwritten_lines.append(job.line)
        if len(self.unwritten) == 1:
            raise OutputError(self.error)

    def close(self) -> None:
        """Flush what is buffered; a write error here is kept like any other."""
        if self.error is not None:
            return
        try:
            self._stream.flush()
        except OSError as error:
            self.error = error


def keep(payload: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Only ``fields`` of a result: ``name`` keeps a key, ``name.sub`` one key of its items.

    Example:
        >>> keep({"organic": [{"link": "l", "title": "t"}], "credits": 1}, ("organic.link",))
        {'organic': [{'link': 'l'}]}
    """
    kept: dict[str, Any] = {}
    for field in fields:
        name, _, sub = field.partition(".")
        if name not in payload:
            continue
        value = payload[name]
        if not sub:
            kept[name] = value
        elif isinstance(value, list):
            previous = kept.get(name) or [{} for _ in value]
            kept[name] = [
                {**old, **({sub: item[sub]} if isinstance(item, dict) and sub in item else {})}
                for old, item in zip(previous, value, strict=True)
            ]
        elif isinstance(value, dict):
            kept[name] = {**kept.get(name, {}), **({sub: value[sub]} if sub in value else {})}
    return kept


class OutputError(Exception):
    """Writing the results failed; the batch stops, and the unwritten results are kept."""

    def __init__(self, error: OSError | None) -> None:
        reason = (error.strerror if error is not None else None) or str(error)
        super().__init__(f"cannot write the results: {reason}")
