"""The peers: what users write today to run many coroutines in N lanes, and LanePool.

Every peer has the same shape, ``await peer(fn, items, lanes=..., sink=..., account=...)``:
it runs ``await fn(item)`` for every item with at most ``lanes`` at once and hands each
result to ``sink`` (the same consumer work for all). ``account`` is the async account
source the peers that look at credits call (the chunked recipe between chunks, LanePool
when it opens, around a batch and on its rechecks).

* ``vendor``: SearchCans' own advice, ``asyncio.gather`` over coroutines each wrapped in
  ``async with asyncio.Semaphore(lanes)``. It creates every coroutine up front.
* ``chunked``: the same per chunk of ``chunk`` items, with an awaited account read (a
  remain check) between chunks, the usual way to notice credits running out.
* ``aiometer``: ``aiometer.amap(fn, items, max_at_once=lanes)`` (one task per item; it
  needs a sized sequence).
* ``workers``: ``lanes`` tasks pulling from one shared iterator. No ledger, no report,
  nothing to check: the lower bound.
* ``lanepool_batch``: ``LanePool.run_batch(fn, items, on_outcome=sink)``, the ledger on.
* ``lanepool_map``: ``async with pool.map(fn, items) as outcomes: async for ...``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Protocol

import aiometer

from searchcans_async import Account, LanePool

Work = Callable[[Any], Awaitable[Any]]
Sink = Callable[[Any], object]
AccountSource = Callable[[], Awaitable[Account]]

# The credit figures of the no-op account: large enough never to stop a run, finite so
# the ledger does its full work (reserve against the server allowance and the user cap).
NOOP_REMAIN: Final = 10**12
NOOP_BUDGET: Final = 10**11


class Peer(Protocol):
    async def __call__(
        self,
        fn: Work,
        items: Iterable[Any],
        *,
        lanes: int,
        sink: Sink,
        account: AccountSource,
        chunk: int = ...,
        recheck_every: int | None = ...,
    ) -> None: ...


def noop_account(lanes: int) -> AccountSource:
    """An instant account source (the no-op measures time scheduling, not HTTP)."""
    account = Account(remain=NOOP_REMAIN, concurrent=lanes, current=0)

    async def read_account() -> Account:
        return account

    return read_account


async def vendor(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    semaphore = asyncio.Semaphore(lanes)

    async def guarded(item: Any) -> Any:
        async with semaphore:
            return await fn(item)

    for result in await asyncio.gather(*(guarded(item) for item in items)):
        sink(result)


async def chunked(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    semaphore = asyncio.Semaphore(lanes)

    async def guarded(item: Any) -> Any:
        async with semaphore:
            return await fn(item)

    iterator = iter(items)
    while batch := list(itertools.islice(iterator, chunk)):
        for result in await asyncio.gather(*(guarded(item) for item in batch)):
            sink(result)
        if (await account()).remain <= 0:  # the remain check between chunks
            break


async def aiometer_amap(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    sequence = items if isinstance(items, range | list | tuple) else list(items)
    async with aiometer.amap(fn, sequence, max_at_once=lanes) as results:
        async for result in results:
            sink(result)


async def workers(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    iterator = iter(items)

    async def worker() -> None:
        for item in iterator:
            sink(await fn(item))

    async with asyncio.TaskGroup() as group:
        for _ in range(lanes):
            group.create_task(worker())


def _pool(account: AccountSource, lanes: int, recheck_every: int | None) -> LanePool:
    return LanePool(
        account,
        budget=NOOP_BUDGET,
        max_lanes=lanes,
        recheck_every=recheck_every,
        recheck_interval=None if recheck_every is None else 30.0,
    )


async def lanepool_batch(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    async with _pool(account, lanes, recheck_every) as pool:
        report = await pool.run_batch(fn, items, on_outcome=sink)
    assert not report.failed, report.failed[:3]


async def lanepool_map(
    fn: Work,
    items: Iterable[Any],
    *,
    lanes: int,
    sink: Sink,
    account: AccountSource,
    chunk: int = 100,
    recheck_every: int | None = 100,
) -> None:
    async with _pool(account, lanes, recheck_every) as pool, pool.map(fn, items) as outcomes:
        async for outcome in outcomes:
            sink(outcome)


PEERS: Final[dict[str, Peer]] = {
    "vendor": vendor,
    "chunked": chunked,
    "aiometer": aiometer_amap,
    "workers": workers,
    "lanepool_batch": lanepool_batch,
    "lanepool_map": lanepool_map,
}

LABELS: Final = {
    "vendor": "vendor recipe (gather + Semaphore)",
    "chunked": "vendor recipe in chunks + remain check",
    "aiometer": "aiometer.amap(max_at_once)",
    "workers": "N worker tasks (lower bound)",
    "lanepool_batch": "LanePool.run_batch + sink",
    "lanepool_map": "LanePool.map + async for",
}


async def noop(item: Any) -> Any:
    """The no-op work item of the overhead and memory measures."""
    return item


class Counter:
    """A sink that only counts (results are dropped, as a streaming consumer would)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _result: object) -> None:
        self.count += 1
