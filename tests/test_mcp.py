"""``searchcans-async mcp`` in a subprocess, driven by the MCP SDK's own client.

The emulator serves from the test's event loop, so each test reads the server's records
(peak lanes in flight, credits charged, requests seen) beside what the tools answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from searchcans_async._cli.app import cli
from searchcans_async._cli.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import pytest
    from mcp.types import CallToolResult

    from searchcans_async.testing import Emulator

_DEADLINE = 60  # seconds; a safety net against a hung child, not a timing assertion


@asynccontextmanager
async def mcp_session(
    emu: Emulator, key: str, stderr: Path, *args: str
) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session with ``searchcans-async mcp ARGS`` on stdio."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHCANS_")}
    env["SEARCHCANS_API_KEY"] = key
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "searchcans_async", "mcp", "--base-url", emu.base_url, *args],
        env=env,
    )
    with stderr.open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def text_of(result: CallToolResult) -> str:
    """Everything a tool call answered, as one text: content blocks and structured content."""
    texts = [getattr(block, "text", "") for block in result.content]
    return "\n".join([*texts, json.dumps(result.structured_content)])


async def test_the_tools_are_listed_with_their_schemas_and_costs(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """search, read and account are listed with input and output schemas and their prices."""
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(emulator, canary_key, tmp_path / "err.log") as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"search", "read", "account"}
    search, read, account = tools["search"], tools["read"], tools["account"]
    assert search.input_schema["required"] == ["query"]
    assert {"engine", "country", "language", "pages", "max_results", "people_also_ask"} <= set(
        search.input_schema["properties"]
    )
    assert {"url", "proxy", "browser", "wait", "max_chars"} <= set(read.input_schema["properties"])
    assert search.output_schema is not None
    assert {"results", "credits_charged", "budget_left"} <= set(search.output_schema["properties"])
    hit = search.output_schema["$defs"]["SearchHit"]["properties"]
    assert set(hit) == {"title", "link", "snippet", "position"}
    assert read.output_schema is not None
    assert "markdown" in read.output_schema["properties"]
    assert "1 credit per page" in (search.description or "")
    assert "0: 2, 1: 4, 2: 7, 3: 12" in (read.description or "")
    assert "0 credits" in (account.description or "")


async def test_results_are_structured_capped_and_priced(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """A search returns typed hits capped to max_results; a read caps its markdown."""
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(emulator, canary_key, tmp_path / "err.log") as session:
            found = await session.call_tool(
                "search", {"query": "lanes", "max_results": 3, "pages": 2}
            )
            page = await session.call_tool("read", {"url": "https://example.com", "max_chars": 100})
    assert not found.is_error
    assert not page.is_error
    assert found.structured_content is not None
    assert page.structured_content is not None
    results = found.structured_content["results"]
    assert len(results) == 3
    assert found.structured_content["truncated"] is True
    assert [hit["position"] for hit in results] == [1, 2, 3]
    assert all(hit["link"].startswith("http") and hit["title"] for hit in results)
    assert found.structured_content["credits_charged"] == 2
    assert len(page.structured_content["markdown"]) == 100
    assert page.structured_content["chars_total"] > 100
    assert page.structured_content["truncated"]
    assert page.structured_content["credits_charged"] == 2
    assert emulator.stats().charged == 4


async def test_concurrent_calls_beyond_the_lanes_wait_for_one(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """Seven concurrent searches on 3 lanes: 3 run, 4 wait in the server; the server saw <= 3."""
    emulator.pause()
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(emulator, canary_key, tmp_path / "err.log") as session:
            calls = [
                asyncio.create_task(session.call_tool("search", {"query": f"q{n}"}))
                for n in range(7)
            ]
            while emulator.stats().in_flight < 3:  # noqa: ASYNC110  # polls the server's own count
                await asyncio.sleep(0.01)
            state = await session.call_tool("account", {})
            emulator.resume()
            results = await asyncio.gather(*calls)
    assert state.structured_content is not None
    assert state.structured_content["in_flight"] == 3
    assert state.structured_content["waiting"] == 4
    assert not any(result.is_error for result in results)
    stats = emulator.stats()
    assert stats.peak_in_flight == 3
    assert stats.peak_offered == 3  # nothing was sent beyond the lanes
    assert 1010 not in stats.refusals
    assert stats.charged == 7


async def test_the_budget_refuses_the_call_it_cannot_cover_before_sending(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """--budget 5: five searches run; the sixth is a tool error and never reaches the server."""
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(
            emulator, canary_key, tmp_path / "err.log", "--budget", "5"
        ) as session:
            done = [await session.call_tool("search", {"query": f"q{n}"}) for n in range(5)]
            before = emulator.stats()
            refused = await session.call_tool("search", {"query": "one too many"})
            refused_read = await session.call_tool(
                "read", {"url": "https://example.com", "proxy": 2}
            )
            after = emulator.stats()
            state = await session.call_tool("account", {})
    assert not any(result.is_error for result in done)
    assert refused.is_error
    assert refused_read.is_error
    assert "budget left 0 credits, this call costs 1" in text_of(refused)
    assert "budget left 0 credits, this call costs 7" in text_of(refused_read)
    assert "Nothing was charged" in text_of(refused)
    assert (after.requests, after.charged) == (before.requests, before.charged) == (5, 5)
    assert "one too many" not in emulator.charges_by_subject()
    assert state.structured_content is not None
    assert state.structured_content["credits_spent"] == 5
    assert state.structured_content["budget_left"] == 0


async def test_a_bad_key_is_a_clear_tool_error(emulator: Emulator, tmp_path: Path) -> None:
    """A key the server rejects: the server still starts, and each call says to fix the key."""
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(emulator, "sk_not_a_real_key_123", tmp_path / "err.log") as session:
            result = await session.call_tool("search", {"query": "anything"})
            account = await session.call_tool("account", {})
    assert result.is_error
    assert account.is_error
    assert "rejected the API key" in text_of(result)
    assert "SEARCHCANS_API_KEY" in text_of(result)
    assert emulator.stats().requests == 0
    assert emulator.stats().charged == 0


async def test_a_server_that_could_not_open_its_pool_opens_it_on_the_next_call(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """The key inactive at start: calls say so; once active again, the next call runs."""
    emulator.set_key_active(canary_key, False)
    async with asyncio.timeout(_DEADLINE):
        async with mcp_session(
            emulator, canary_key, tmp_path / "err.log", "--budget", "4"
        ) as session:
            refused = await session.call_tool("search", {"query": "while inactive"})
            emulator.set_key_active(canary_key, True)
            found = await session.call_tool("search", {"query": "once active"})
            state = await session.call_tool("account", {})
    assert refused.is_error
    assert "rejected the API key" in text_of(refused)
    assert not found.is_error
    assert emulator.charges_by_subject() == {"once active": 1}
    assert state.structured_content is not None
    assert state.structured_content["budget_left"] == 3


async def test_the_key_is_in_no_tool_output_or_log(
    emulator: Emulator, canary_key: str, tmp_path: Path
) -> None:
    """Successes, refusals and bad arguments, logged with -vv: the canary key shows nowhere."""
    stderr = tmp_path / "err.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHCANS_")}
    env["SEARCHCANS_API_KEY"] = canary_key
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "searchcans_async", "-vv", "mcp", "--base-url", emulator.base_url,
              "--budget", "3"],
        env=env,
    )  # fmt: skip
    outputs: list[str] = []
    async with asyncio.timeout(_DEADLINE):
        with stderr.open("w", encoding="utf-8") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("search", {"query": canary_key[:6]}),
                    ("read", {"url": "https://example.com"}),
                    ("read", {"url": "not a url"}),
                    ("search", {"query": "over budget", "pages": 5}),
                    ("account", {}),
                ]
                for name, arguments in calls:
                    outputs.append(text_of(await session.call_tool(name, arguments)))
    log = stderr.read_text(encoding="utf-8")
    assert "pool open" in log  # the log was written (and -vv logged the client's work)
    assert "budget left" in outputs[3]
    for text in [*outputs, log]:
        assert canary_key not in text


async def test_streamable_http_serves_the_same_tools(emulator: Emulator, canary_key: str) -> None:
    """--http 127.0.0.1:0 serves the tools over streamable HTTP; a search runs in the pool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCHCANS_")}
    env["SEARCHCANS_API_KEY"] = canary_key
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "searchcans_async", "mcp", "--base-url", emulator.base_url,
        "--http", "127.0.0.1:0", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        async with asyncio.timeout(_DEADLINE):
            url = ""
            while not url:
                line = (await process.stderr.readline()).decode()
                assert line, "the server exited before listening"
                if "streamable HTTP" in line:
                    url = line.split(" on ")[-1].strip()
            async with (
                streamable_http_client(url) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                names = {tool.name for tool in (await session.list_tools()).tools}
                result = await session.call_tool("search", {"query": "over http"})
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(_DEADLINE):
            rest = await process.stderr.read()
            await process.wait()
    assert names == {"search", "read", "account"}
    assert not result.is_error
    assert emulator.charges_by_subject() == {"over http": 1}
    assert canary_key not in rest.decode()


def test_without_the_extra_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No mcp SDK: one line naming the [mcp] extra, exit 2, no traceback."""
    for name in [n for n in sys.modules if n == "mcp" or n.startswith("mcp.")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import mcp...` fail
    for name in [n for n in sys.modules if n.startswith("searchcans_async._mcp")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("SEARCHCANS_API_KEY", "sk_unused")
    # An unreachable base URL: should the import succeed after all, nothing leaves the machine.
    args = ["mcp", "--base-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == ExitCode.USAGE
    assert "pip install 'searchcans-async[mcp]'" in result.output
    assert "Traceback" not in result.output
