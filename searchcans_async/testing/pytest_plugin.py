"""pytest fixtures that serve a SearchCans emulator to your tests (needs pytest-asyncio).

Enable them in your root `conftest.py`:

    pytest_plugins = ["searchcans_async.testing.pytest_plugin"]

Then (an `async def` test that uses these fixtures runs on asyncio without a marker):

    async def test_my_crawler(searchcans_emulator):
        await crawl(base_url=searchcans_emulator.base_url, api_key=searchcans_emulator.api_key)
        assert searchcans_emulator.stats().peak_in_flight <= 3

Customise the emulator with the `searchcans_emulator` marker (keyword arguments of
`Emulator`), with an indirect parametrisation (a dict of the same arguments), or build several
with `searchcans_emulator_factory`:

    @pytest.mark.searchcans_emulator(credits=50, lanes=1)
    async def test_small_account(searchcans_emulator): ...

    @pytest.mark.parametrize("searchcans_emulator", [{"lanes": 1}, {"lanes": 5}], indirect=True)
    async def test_any_lanes(searchcans_emulator): ...

    async def test_two(searchcans_emulator_factory):
        first = await searchcans_emulator_factory(lanes=1)
        second = await searchcans_emulator_factory(seed=7)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from ._emulator import Emulator

__all__ = [
    "EmulatorFactory",
    "pytest_configure",
    "pytest_pycollect_makeitem",
    "searchcans_emulator",
    "searchcans_emulator_factory",
]

#: The factory fixture's type: awaits to a running `Emulator` built from `Emulator`'s arguments.
EmulatorFactory = Callable[..., Awaitable[Emulator]]


def pytest_configure(config: pytest.Config) -> None:
    """Register the `searchcans_emulator` marker (so `--strict-markers` accepts it)."""
    config.addinivalue_line(
        "markers",
        "searchcans_emulator(**options): keyword arguments of the Emulator that the "
        "searchcans_emulator fixture serves",
    )


_FIXTURES = frozenset({"searchcans_emulator", "searchcans_emulator_factory"})


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run ``async def`` tests that use these fixtures on asyncio, with no marker or config.

    pytest-asyncio's default (strict) mode only runs coroutine tests marked
    ``@pytest.mark.asyncio``; a test that asks for an emulator fixture clearly wants
    asyncio, so it gets the marker here (unless it already has it). Other tests are left
    to your own configuration.
    """
    del collector, name
    if not inspect.iscoroutinefunction(obj):
        return
    try:
        wanted = _FIXTURES & set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # no signature to read
        return
    marks = getattr(obj, "pytestmark", [])
    if wanted and not any(mark.name == "asyncio" for mark in marks):
        pytest.mark.asyncio(obj)


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("searchcans_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, dict):
            raise TypeError(
                "parametrize searchcans_emulator indirectly with dicts of Emulator arguments, "
                f"e.g. [{{'lanes': 1}}], not {param!r}"
            )
        options.update(param)
    return options


@pytest_asyncio.fixture
async def searchcans_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """A running `Emulator` (default: 10 000 credits, 3 lanes, one key), closed after the test.

    Example:
        >>> async def test_account(searchcans_emulator):  # doctest: +SKIP
        ...     assert searchcans_emulator.stats().remain == 10_000
    """
    async with Emulator(**_options(request)) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def searchcans_emulator_factory() -> AsyncIterator[EmulatorFactory]:
    """An async factory of running emulators, all closed after the test.

    Example:
        >>> async def test_two_accounts(searchcans_emulator_factory):  # doctest: +SKIP
        ...     small = await searchcans_emulator_factory(credits=10, lanes=1)
    """
    async with contextlib.AsyncExitStack() as stack:

        async def factory(*args: Any, **kwargs: Any) -> Emulator:
            return await stack.enter_async_context(Emulator(*args, **kwargs))

        yield factory
