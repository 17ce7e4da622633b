"""The README and the docs say what the code does: their examples run, their tables match.

Every ```python block of the README and of the docs pages below runs here, as written,
against an emulator: ``SearchCans()`` finds it because the test points the client's default
base URL at it and sets ``SEARCHCANS_API_KEY`` to its key. Functions named ``test_*`` that a
page defines are then called with a fresh emulator, as the pytest fixture would.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_cli import ServedEmulator, serving

import searchcans_async
from searchcans_async import SearchCans, SearchCansError
from searchcans_async._cli.app import cli
from searchcans_async._cli.errors import ExitCode
from searchcans_async._client.errors import error_from_answer
from searchcans_async.testing import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import click

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Pages whose examples are the CLI work's to keep running (emulator.md has its own owner).
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/tutorial.md",
    "docs/how-to/crawler.md",
    "docs/how-to/agent.md",
    "docs/how-to/mcp.md",
    "docs/how-to/resume.md",
    "docs/how-to/share-account.md",
    "docs/how-to/testing.md",
    "docs/errors.md",
]
_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: str) -> list[tuple[int, str]]:
    """The page's ```python blocks with their first line number (conftest snippets left out)."""
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        code = match.group(1)
        if not code.startswith("# conftest.py"):
            blocks.append((text.count("\n", 0, match.start()) + 2, code))
    return blocks


@pytest.fixture
def serve() -> Iterator[Callable[..., ServedEmulator]]:
    """A factory of emulators served from a background loop (see test_cli.py)."""
    yield from serving()


async def _call_test(function: Callable[..., Any]) -> None:
    """Call a page's test function the way the searchcans_emulator fixture would."""
    if "searchcans_emulator" not in inspect.signature(function).parameters:
        await function()
        return
    options: dict[str, Any] = {}
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "searchcans_emulator":
            options.update(mark.kwargs)
    async with Emulator(**options) as emulator:
        await function(searchcans_emulator=emulator)


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_run_as_written(
    page: str,
    serve: Callable[..., ServedEmulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Each page's python blocks run in order, offline, against an emulator."""
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python example"
    emu = serve()
    defaults = SearchCans.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "base_url", emu.base_url)
    monkeypatch.setenv("SEARCHCANS_API_KEY", emu.api_key)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for line, code in blocks:
        exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102  # the docs' own code
    for name, function in list(namespace.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(function):
            asyncio.run(_call_test(function))


def test_the_readme_starts_with_the_two_commands() -> None:
    """After the intro, the first block is `make demo` and `make test`, and nothing else."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_heading = text.index("\n## ")
    first_block = re.search(r"```console\n(.*?)```", text[first_heading:], re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert text.index("make demo") > text.index("\n## ") > text.index("# searchcans_async")


def test_the_readme_installs_from_a_checkout_with_every_extra() -> None:
    """No index serves the package yet: the install block uses `.`, one line per extra."""
    import tomllib  # noqa: PLC0415  # imported where the test needs it

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Install") : text.index("## Quickstart")]
    block = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands[0] == "pip install ."
    extras = [re.fullmatch(r"pip install '\.\[(\w+)\]'", c) for c in commands[1:]]
    assert all(extras), commands
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    offered = set(project["optional-dependencies"]) - {"dev", "docs", "bench"}
    assert {m.group(1) for m in extras if m} == offered


_ROW = re.compile(r"^\| `(\w+)` \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|$", re.MULTILINE)


def test_the_error_reference_matches_the_code() -> None:
    """Every public error is in docs/errors.md, with the flags and signals the code has."""
    rows = {match.group(1): match.groups()[1:] for match in _ROW.finditer(
        (DOCS / "errors.md").read_text(encoding="utf-8"))}  # fmt: skip
    public = {
        name
        for name in searchcans_async.__all__
        if isinstance(obj := getattr(searchcans_async, name), type)
        and issubclass(obj, SearchCansError)
        and obj is not SearchCansError
    }
    assert set(rows) == public
    for name, (signal, charged, retried, _) in rows.items():
        cls = getattr(searchcans_async, name)
        if charged == "no":
            assert cls.default_charged is False, name
        if retried in ("yes", "no"):
            assert cls.default_retryable is (retried == "yes"), name
        statuses = re.search(r"HTTP ((?:\d+/)*\d+)", signal)
        for status in statuses.group(1).split("/") if statuses else ():
            error = error_from_answer(http_status=int(status), code=None, message="")
            assert type(error) is cls, (name, status)
        codes = re.search(r"code ((?:-?\d+/)*-?\d+)", signal)
        for code in codes.group(1).split("/") if codes else ():
            error = error_from_answer(http_status=200, code=int(code), message="")
            assert type(error) is cls, (name, code)


def test_the_cli_reference_lists_every_command_and_option() -> None:
    """docs/cli.md names every command, every option, and every exit code."""
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands: dict[str, click.Command] = {"": cli, **cli.commands}
    for name, command in commands.items():
        if name:
            assert f"## `{name}" in reference, name
        for parameter in command.params:
            for option in parameter.opts:
                if option.startswith("--") and option != "--help":
                    assert f"`{option}" in reference, (name, option)
    for code in ExitCode:
        assert f"\n| {int(code)} | " in reference, code
