"""The API key never leaks: not in reprs, errors, tracebacks, log records or events."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from searchcans_async import RetryPolicy, SearchCans, SearchCansError
from searchcans_async._client.secret import Secret
from searchcans_async.testing import FAULT_KINDS, AccountSpec, Emulator, Fault, Faults, KeySpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from aioresponses import aioresponses

    from searchcans_async._clock import VirtualClock
    from searchcans_async.events import Event

SEARCH_URL = "https://www.searchcans.com/api/v1/search"


# -- the holder ------------------------------------------------------------------------------


def test_the_holder_redacts_itself(canary_key: str) -> None:
    """repr, str and f-strings of a Secret show asterisks, never the key."""
    secret = Secret(canary_key)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert canary_key not in text
        assert "********" in text
    assert secret.reveal() == canary_key


def test_the_holder_is_not_picklable(canary_key: str) -> None:
    """Pickling (or deep-copying through pickle's protocol) a Secret is refused."""
    secret = Secret(canary_key)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="not picklable"):
        copy.deepcopy(secret)


def test_the_holder_compares_by_value_without_showing_it(canary_key: str) -> None:
    """Two Secrets of the same key are equal and hash alike; a str never equals one."""
    assert Secret(canary_key) == Secret(canary_key)
    assert hash(Secret(canary_key)) == hash(Secret(canary_key))
    assert Secret(canary_key) != Secret("sk_other")
    assert Secret(canary_key) != canary_key


def test_the_holder_has_no_instance_dict(canary_key: str) -> None:
    """A slotted Secret has no __dict__ that a debugger or vars() would print."""
    with pytest.raises(TypeError):
        vars(Secret(canary_key))


def test_the_client_repr_hides_the_key(canary_key: str) -> None:
    """repr(client) and repr of its attributes never show the key."""
    client = SearchCans(canary_key)
    assert canary_key not in repr(client)
    assert canary_key not in repr(vars(client))
    assert canary_key not in str(client)


def test_a_bad_key_is_not_quoted_in_its_error() -> None:
    """A key refused for a control character is not repeated in the error."""
    with pytest.raises(SearchCansError) as caught:
        Secret("sk_canary_secret\n2")
    assert "sk_canary_secret" not in str(caught.value)


# -- errors from mocked answers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"code": 401, "data": None, "msg": "invalid key", "requestId": "r"}),
        (403, {"code": 403, "data": None, "msg": "inactive", "requestId": None}),
        (402, {"code": 402, "data": None, "msg": "no credits", "requestId": "r"}),
        (200, {"code": -2008, "data": None, "msg": "bad key", "requestId": "r"}),
        (200, {"code": 1010, "data": None, "msg": "busy", "requestId": "r"}),
        (429, {"code": 429, "data": None, "msg": "slow down", "requestId": "r"}),
        (503, "<html>Service Unavailable</html>"),
        (200, "not json at all"),
        (200, {"code": 0, "data": {"organic": "broken"}, "msg": "ok", "requestId": "r"}),
        (200, {"code": 7777, "data": None, "msg": "odd", "requestId": "r"}),
    ],
)
async def test_no_mocked_answer_puts_the_key_in_its_error(
    mocked: aioresponses,
    clock: VirtualClock,
    canary_key: str,
    assert_key_free: Callable[[BaseException], None],
    status: int,
    body: Any,
) -> None:
    """Every kind of failed answer raises an error free of the key, chain and traceback too."""
    if isinstance(body, dict):
        mocked.post(SEARCH_URL, status=status, payload=body)
    else:
        mocked.post(SEARCH_URL, status=status, body=body)
    async with SearchCans(canary_key, clock=clock, retry=RetryPolicy.never()) as client:
        with pytest.raises(SearchCansError) as caught:
            await client.search("asyncio")
    assert_key_free(caught.value)


# -- errors from the real emulator -----------------------------------------------------------


def account_with(canary_key: str, **options: Any) -> AccountSpec:
    """An account whose only key is the canary."""
    active = options.pop("active", True)
    return AccountSpec(keys=[KeySpec(canary_key, name="canary", active=active)], **options)


async def test_an_unknown_key_error_is_key_free(
    clock: VirtualClock, canary_key: str, assert_key_free: Callable[[BaseException], None]
) -> None:
    """A 401 for the canary (unknown to the server) mentions it nowhere."""
    async with Emulator(latency=0) as emu:
        async with SearchCans(canary_key, base_url=emu.base_url, clock=clock) as client:
            with pytest.raises(SearchCansError) as caught:
                await client.account()
    assert caught.value.http_status == 401
    assert_key_free(caught.value)


@pytest.mark.parametrize(
    ("options", "status"), [({"active": False}, 403), ({"credits": 0}, 402)], ids=["403", "402"]
)
async def test_inactive_and_billing_errors_are_key_free(
    clock: VirtualClock,
    canary_key: str,
    assert_key_free: Callable[[BaseException], None],
    options: dict[str, Any],
    status: int,
) -> None:
    """A 403 (inactive key) and a 402 (no credits) for the canary never show it."""
    async with Emulator([account_with(canary_key, **options)], latency=0) as emu:
        async with SearchCans(canary_key, base_url=emu.base_url, clock=clock) as client:
            with pytest.raises(SearchCansError) as caught:
                await client.search("asyncio")
    assert caught.value.http_status == status
    assert_key_free(caught.value)


#: Faults whose answer the client still reads as a success (slow, or "no results").
SUCCEEDING_FAULTS = frozenset({"slow_body", "no_results"})


def fault_of(kind: str) -> Fault:
    """The fault of this kind, kept fast (no dribbling) and made to fail (small body cap)."""
    if kind == "slow_body":
        return Fault.slow_body(chunk_size=512, chunk_delay=0.0)
    if kind == "huge_body":
        return Fault.huge_body(size=300_000)
    return Fault.from_name(kind)


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
async def test_no_fault_puts_the_key_in_an_error_event_or_log(
    clock: VirtualClock,
    canary_key: str,
    assert_key_free: Callable[[BaseException], None],
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """Each emulator fault, retried at DEBUG: no error, event or log record holds the key."""
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    faults = Faults(script=dict.fromkeys((1, 2, 3), fault_of(kind)), endpoints=["search"])
    policy = RetryPolicy(attempts=3, retry_possibly_charged=True)
    async with Emulator([account_with(canary_key)], faults=faults, latency=0) as emu:
        async with SearchCans(
            canary_key,
            base_url=emu.base_url,
            clock=clock,
            retry=policy,
            on_event=events.append,
            max_body_bytes=100_000,
        ) as client:
            if kind in SUCCEEDING_FAULTS:
                await client.search("asyncio")
            else:
                with pytest.raises(SearchCansError) as caught:
                    await client.search("asyncio")
                assert_key_free(caught.value)
    assert events  # every attempt reported something
    for event in events:
        assert canary_key not in repr(event)
    for record in caplog.records:
        assert canary_key not in record.getMessage()
        assert canary_key not in repr(record.args)
        assert canary_key not in (record.exc_text or "")


async def test_retry_logs_say_what_happened_without_the_key(
    clock: VirtualClock, canary_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The DEBUG line of a retry names the endpoint, the error and the wait, not the key."""
    caplog.set_level(logging.DEBUG, logger="searchcans_async")
    faults = Faults(script={1: Fault.lane_busy(), 2: Fault.rate_limited(2)})
    async with Emulator([account_with(canary_key)], faults=faults, latency=0) as emu:
        async with SearchCans(canary_key, base_url=emu.base_url, clock=clock) as client:
            await client.search("asyncio")
    messages = [r.getMessage() for r in caplog.records if r.name == "searchcans_async"]
    assert len(messages) == 2
    assert messages[0].startswith("retrying search after LaneBusyError (attempt 1 of 5)")
    assert messages[1] == "retrying search after RateLimitedError (attempt 2 of 5) in 2.000s"
    assert all(canary_key not in message for message in messages)


async def test_the_unclosed_warning_is_key_free(
    clock: VirtualClock, canary_key: str, emulator: Emulator
) -> None:
    """The ResourceWarning of an unclosed client shows its address, not its key."""
    clients = [SearchCans(canary_key, base_url=emulator.base_url, clock=clock)]
    await clients[0].account()
    session = clients[0]._transport._session  # the test closes it itself
    assert session is not None
    with pytest.warns(ResourceWarning) as warned:
        clients.clear()
    await session.close()
    assert all(canary_key not in str(w.message) for w in warned)
