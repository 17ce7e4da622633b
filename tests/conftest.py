"""Shared fixtures: a canary API key, a virtual clock, a mocked HTTP layer, an emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aioresponses import aioresponses

from searchcans_async._clock import VirtualClock
from searchcans_async.testing import AccountSpec, Emulator, KeySpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

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
async def emulator(canary_key: str) -> AsyncIterator[Emulator]:
    """A running emulator on 127.0.0.1 (1000 credits, 3 lanes) whose only key is the canary."""
    spec = AccountSpec(credits=1_000, lanes=3, keys=[KeySpec(canary_key, name="canary")])
    async with Emulator([spec], latency=0) as emu:
        yield emu
