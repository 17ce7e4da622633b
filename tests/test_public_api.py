"""The public surface: exactly the names below, each documented. A new name is a decision."""

from __future__ import annotations

import inspect
import types

import pytest

import searchcans_async
from searchcans_async import events

PUBLIC_NAMES = [
    "Account",
    "ApiKey",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchReport",
    "Costs",
    "CreditsExhausted",
    "DeadlineTooShortError",
    "ImageResult",
    "InsufficientCreditsError",
    "LaneBusyError",
    "LanePool",
    "LeaseExpiredError",
    "NewsResult",
    "NewsSource",
    "NoLanesError",
    "OrganicResult",
    "Outcome",
    "PoolStatistics",
    "RateLimitedError",
    "ReaderPage",
    "ResponseFormatError",
    "RetryPolicy",
    "SearchCans",
    "SearchCansError",
    "SearchResult",
    "ServerError",
    "ShoppingResult",
    "ShortVideoResult",
    "StopReason",
    "TransportError",
    "UnexpectedResponseError",
    "VideoResult",
    "__version__",
]

EVENT_NAMES = [
    "BudgetRebased",
    "CallFinished",
    "Event",
    "EventHook",
    "ItemFinished",
    "LanesResized",
    "RetryScheduled",
    "Stopped",
    "fan_out",
]


def test_the_public_names_are_pinned() -> None:
    """searchcans_async.__all__ is exactly this sorted list."""
    assert searchcans_async.__all__ == PUBLIC_NAMES
    assert sorted(searchcans_async.__all__) == searchcans_async.__all__


def test_the_event_names_are_pinned() -> None:
    """searchcans_async.events.__all__ is exactly this sorted list."""
    assert events.__all__ == EVENT_NAMES


def test_every_public_name_exists() -> None:
    """Each name in __all__ is importable from the package."""
    for name in [*searchcans_async.__all__, *(f"events.{n}" for n in events.__all__)]:
        owner = events if name.startswith("events.") else searchcans_async
        assert hasattr(owner, name.removeprefix("events.")), name


def test_nothing_else_looks_public() -> None:
    """Besides __all__, the package exposes only modules and __future__ flags (no helpers)."""
    stray = [
        name
        for name, value in vars(searchcans_async).items()
        if not name.startswith("_")
        and name not in searchcans_async.__all__
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    ]
    assert stray == []


LANE_POOL_MEMBERS = [
    "account", "aclose", "backend", "fresh_account", "has_capacity", "is_open", "lane",
    "lanes", "limiter", "map", "open", "recheck", "reserve", "run", "run_batch", "statistics",
    "stop", "stop_reason", "take",
]  # fmt: skip


def test_the_lane_pools_public_members_are_pinned() -> None:
    """LanePool's surface, the seat API included (limiter, backend, take, reserve)."""
    members = sorted(name for name in vars(searchcans_async.LanePool) if not name.startswith("_"))
    assert members == LANE_POOL_MEMBERS


SEARCHCANS_MEMBERS = [
    "account", "aclose", "base_url", "clock", "closed", "costs", "emit", "lanes", "read",
    "retry", "search", "send", "settle_grace", "timeout",
]  # fmt: skip


def test_the_clients_public_members_are_pinned() -> None:
    """SearchCans' surface: what the client layer's Client offers, and lanes() on top."""
    client = searchcans_async.SearchCans("pinned-key")
    members = sorted(name for name in dir(client) if not name.startswith("_"))
    assert members == SEARCHCANS_MEMBERS
    assert "lanes" in vars(searchcans_async.SearchCans)  # added by the lanes layer


def test_the_version_is_a_string() -> None:
    """__version__ is a dotted version string."""
    assert isinstance(searchcans_async.__version__, str)
    assert searchcans_async.__version__.count(".") >= 1


def public_objects() -> list[tuple[str, object]]:
    """Every exported class and function, then its public methods and properties."""
    found: list[tuple[str, object]] = []
    for name in searchcans_async.__all__:
        if name == "__version__":
            continue
        value = getattr(searchcans_async, name)
        found.append((name, value))
        if not inspect.isclass(value):
            continue
        # Its own members and those it inherits from the package's classes (SearchCans
        # inherits account(), search() ... from the client layer's Client).
        members: dict[str, object] = {}
        for cls in reversed(value.__mro__):
            if cls.__module__.startswith("searchcans_async"):
                members.update(vars(cls))
        for attribute, member in members.items():
            if attribute.startswith("_"):
                continue
            if isinstance(member, property | staticmethod | classmethod) or inspect.isfunction(
                member
            ):
                found.append((f"{name}.{attribute}", member))
    return found


@pytest.mark.parametrize(
    ("name", "value"), [pytest.param(name, value, id=name) for name, value in public_objects()]
)
def test_every_public_name_has_a_docstring(name: str, value: object) -> None:
    """Every exported class, function, method and property documents itself."""
    doc = inspect.getdoc(value)
    assert doc, f"{name} has no docstring"
    assert doc.strip()


def test_the_package_and_events_modules_are_documented() -> None:
    """The package and its events module have docstrings with an example."""
    for module in (searchcans_async, events):
        assert module.__doc__
        assert ">>>" in module.__doc__
