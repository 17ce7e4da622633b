"""Shared fixtures: a canary API key, a virtual clock, a mocked HTTP layer, an emulator."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aioresponses import aioresponses

from searchcans_async._clock import VirtualClock
from searchcans_async.testing import AccountSpec, Emulator, KeySpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

pytest_plugins = ["searchcans_async.testing.pytest_plugin"]

#: A key that must never show up in any error, log record, repr or event.
CANARY_KEY = "sk_canary_7f3a9c2e5b1d4f60aa"


@pytest.fixture
def canary_key() -> str:
    """The canary API key (a fixture, so test modules never import conftest)."""
    return CANARY_KEY


@pytest.fixture
def clock() -> VirtualClock:
    """A clock whose sleeps advance virtual time at once and are recorded."""
    return VirtualClock()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aiohttp's requests answered by aioresponses (nothing reaches the network)."""
    with aioresponses() as mock:
        yield mock


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session, for tests that speak HTTP to the emulator themselves."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def emulator(canary_key: str) -> AsyncIterator[Emulator]:
    """A running emulator on 127.0.0.1 (1000 credits, 3 lanes) whose only key is the canary."""
    spec = AccountSpec(credits=1_000, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0) as emu:
        yield emu


def linked_errors(error: BaseException) -> Iterator[BaseException]:
    """error and everything chained to it through __cause__ and __context__."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


@pytest.fixture
def assert_key_free(canary_key: str) -> Callable[[BaseException], None]:
    """A check that the canary is nowhere in an error: text, attributes, chain, traceback."""

    def check(error: BaseException) -> None:
        for linked in linked_errors(error):
            assert not isinstance(linked, aiohttp.ClientError), f"aiohttp chained: {linked!r}"
            for text in (str(linked), repr(linked), repr(vars(linked))):
                assert canary_key not in text
        assert canary_key not in "".join(traceback.format_exception(error))

    return check


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-seeds N``: run the seeded chaos runs of test_chaos.py for seeds 0..N-1."""
    parser.addoption(
        "--chaos-seeds",
        type=int,
        default=None,
        metavar="N",
        help="chaos runs to make in tests/test_chaos.py (default: its fixed list of 1000)",
    )
