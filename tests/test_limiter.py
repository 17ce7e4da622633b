"""LaneLimiter on its own: a FIFO, resizable counting limiter (no pool, no network)."""

from __future__ import annotations

import asyncio

import pytest

from searchcans_async._lanes.limiter import LaneLimiter


async def test_lanes_are_taken_up_to_the_limit_and_given_back() -> None:
    """acquire_nowait takes free lanes only; release hands one back; peak remembers."""
    lanes = LaneLimiter(2)
    assert [lanes.acquire_nowait() for _ in range(3)] == [True, True, False]
    assert (lanes.in_use, lanes.peak) == (2, 2)
    lanes.release()
    assert lanes.acquire_nowait()
    assert (lanes.in_use, lanes.peak) == (2, 2)


async def test_waiters_are_served_first_come_first_served() -> None:
    """Three waiters on a full limiter get the lanes in the order they asked."""
    lanes = LaneLimiter(1)
    assert lanes.acquire_nowait()
    served: list[int] = []

    async def wait(number: int) -> None:
        await lanes.acquire()
        served.append(number)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert lanes.waiting == 3
    assert not lanes.acquire_nowait()  # nobody jumps the queue
    for _ in range(3):
        lanes.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2]


async def test_shrinking_absorbs_lanes_as_they_return_and_growing_wakes_waiters() -> None:
    """set_limit(1) with 3 held: nothing is handed out until two came back."""
    lanes = LaneLimiter(3)
    for _ in range(3):
        assert lanes.acquire_nowait()
    lanes.set_limit(1)
    waiter = asyncio.create_task(lanes.acquire())
    lanes.release()
    lanes.release()
    await asyncio.sleep(0)
    assert not waiter.done()  # 1 held: the limit
    lanes.set_limit(2)
    await asyncio.wait_for(waiter, 1)
    assert lanes.in_use == 2


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    """Cancelled while waiting: it takes no lane and the next waiter is served."""
    lanes = LaneLimiter(1)
    assert lanes.acquire_nowait()
    gone = asyncio.create_task(lanes.acquire())
    kept = asyncio.create_task(lanes.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    lanes.release()
    await asyncio.wait_for(kept, 1)
    assert (lanes.in_use, lanes.waiting) == (1, 0)


async def test_a_lane_granted_as_its_waiter_is_cancelled_is_passed_on() -> None:
    """Granted and cancelled in the same step: the lane goes to the next waiter, not lost."""
    lanes = LaneLimiter(1)
    assert lanes.acquire_nowait()
    first = asyncio.create_task(lanes.acquire())
    second = asyncio.create_task(lanes.acquire())
    await asyncio.sleep(0)
    lanes.release()  # grants the lane to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert lanes.in_use == 1
