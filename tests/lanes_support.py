"""Test doubles for the lane pool: an account that bills like the server does.

The pool knows nothing of HTTP (it takes any async account source), so most pool tests
run against this in-memory account; the end-to-end ones use the real emulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from searchcans_async import Account, ApiKey, InsufficientCreditsError


class FakeAccount:
    """An account source with server-side accounting: charges, lanes, reads."""

    def __init__(self, remain: int = 1_000, concurrent: int = 3, *, keys: tuple[ApiKey, ...] = ()):
        self.remain = remain
        self.concurrent = concurrent
        self.current = 0
        self.keys = keys
        self.reads = 0
        self.charged = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.fail_reads: BaseException | None = None
        self.read_gate: asyncio.Event | None = None

    async def __call__(self) -> Account:
        self.reads += 1
        if self.read_gate is not None:
            await self.read_gate.wait()
        if self.fail_reads is not None:
            raise self.fail_reads
        return Account(
            remain=self.remain, concurrent=self.concurrent, current=self.current, keys=self.keys
        )

    def charge(self, credits: int) -> None:
        """Bill like the server: refuse (402) what the remain cannot cover."""
        if credits > self.remain:
            raise InsufficientCreditsError("insufficient credits", http_status=402, code=402)
        self.remain -= credits
        self.current += credits
        self.charged += credits

    def drain(self, credits: int) -> None:
        """Another consumer of the same account spends credits."""
        credits = min(credits, self.remain)
        self.remain -= credits
        self.current += credits

    def work(self, *, yields: int = 1, cost: int | None = None) -> Any:
        """An item function that holds its lane for a few loop turns, then is billed."""

        async def run(item: Any) -> Any:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                for _ in range(yields):
                    await asyncio.sleep(0)
                self.charge(cost if cost is not None else item_cost(item))
            finally:
                self.in_flight -= 1
            return item

        return run


def item_cost(item: Any) -> int:
    """Items in these tests carry their cost as ``(name, cost)`` or are plain (cost 1)."""
    return item[1] if isinstance(item, tuple) else 1


def buckets(report: Any) -> dict[int, str]:
    """Every item index read, mapped to the one bucket the report put it in."""
    seen: dict[int, str] = {}
    for outcome in report.failed:
        assert outcome.index not in seen
        seen[outcome.index] = "failed"
    for index, _item in report.not_started:
        assert index not in seen
        seen[index] = "not_started"
    succeeded = [i for i in range(report.items_read) if i not in seen]
    assert len(succeeded) == report.succeeded
    seen.update(dict.fromkeys(succeeded, "succeeded"))
    return seen
