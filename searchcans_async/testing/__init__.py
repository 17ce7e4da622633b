"""An offline SearchCans: the emulator and the pytest helpers built on it.

`Emulator` is an aiohttp.web server speaking the SearchCans API (accounts, Parallel Lanes,
credits, keys, latency, scripted or seeded faults) that records what it saw, so tests can
assert on the server's view. It shares no code with the client on purpose: a bug on one
side cannot hide on the other. `VirtualClock` is the client's own clock for tests: give
it to `SearchCans(clock=...)` and backoff, deadlines and rechecks never make a test wait.

Example:
    >>> from searchcans_async.testing import Emulator, Fault, Faults
    >>> async def test_retries_a_busy_lane():  # doctest: +SKIP
    ...     async with Emulator(faults=Faults(script={1: Fault.lane_busy()})) as emu:
    ...         ...  # call emu.base_url with emu.api_key
    ...         assert emu.stats().faults["lane_busy"] == 1
"""

from __future__ import annotations

from .._clock import VirtualClock  # the client's test clock: backoff without waiting
from ._config import AccountSpec, EmulatorCosts, KeySpec, Latency, WireOptions, mask_key
from ._emulator import Emulator
from ._faults import FAULT_KINDS, Fault, Faults
from ._main import emulator_from_options, parse_fault_rate, serve
from ._state import EmulatorStats, RequestRecord

__all__ = [
    "FAULT_KINDS",
    "AccountSpec",
    "Emulator",
    "EmulatorCosts",
    "EmulatorStats",
    "Fault",
    "Faults",
    "KeySpec",
    "Latency",
    "RequestRecord",
    "VirtualClock",
    "WireOptions",
    "emulator_from_options",
    "mask_key",
    "parse_fault_rate",
    "serve",
]
