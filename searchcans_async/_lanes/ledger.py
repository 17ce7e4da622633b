"""CreditLedger: credits reserved, committed and possibly charged, by the credit rules.

The local backend keeps one (the Redis backend keeps its twin in ``_redis/lua/``). All
methods here are synchronous and never wait: waiting is the pool's business.

The credit rules, in one place:

* An item starts only if ``committed + possibly_charged + reserved + cost <= cap``
  (the user's own budget, if any) and the credits not yet reflected in the server's
  last ``remain`` plus ``cost`` fit what that reading allows (``spendable - floor``).
* A finished item turns its reservation into committed credits (success), nothing
  (an uncharged failure) or possibly charged credits (a failure after sending).
* An account check (:meth:`CreditLedger.rebase`) re-bases the server allowance on the
  new ``remain``: credits of items finished before the check was sent are in it now,
  those still in flight are counted against it in full. Possibly charged credits are
  freed for the user's cap only when the account's consumption (``current`` plus
  ``permanentCurrent``) grew by at least what the pool committed, and then only as far
  as that growth leaves room for them (see :func:`_could_be_charged`).
"""

from __future__ import annotations

import collections
from typing import NamedTuple

__all__ = ["CreditLedger", "RecheckMark", "check_cost"]


def check_cost(cost: int) -> None:
    """Refuse a cost that is not a whole, non-negative number of credits."""
    if isinstance(cost, bool) or not isinstance(cost, int):
        raise TypeError(f"cost must be an int number of credits, not {type(cost).__name__}")
    if cost < 0:
        raise ValueError(f"cost must be >= 0 credits, got {cost}")


class RecheckMark(NamedTuple):
    """The ledger's totals at the moment an account check was sent."""

    committed_unreflected: int
    doubts: int  # how many of the oldest possibly charged entries the check settles
    doubt_credits: int
    committed: int


class CreditLedger:
    """Reservations, commitments and possibly charged credits against a budget.

    Args:
        cap: The user's own limit on what this pool spends, or ``None``.
        floor: Credits to leave untouched on the account.
        spendable: What the key may spend per the first account reading.
        current: The account's all-time consumption at that reading (``None`` if unknown).
        grace: Seconds after a possibly charged call ended before an account check is
            trusted to show its charge (the server may still be finishing it).
    """

    __slots__ = (
        "_committed_unreflected",
        "_current_at_start",
        "_doubt_settled",
        "_doubts",
        "_doubts_reflected",
        "allowance",
        "cap",
        "committed",
        "floor",
        "grace",
        "outstanding",
        "possibly_charged_total",
        "reserved",
    )

    def __init__(
        self,
        *,
        cap: int | None,
        floor: int,
        spendable: int,
        current: int | None,
        grace: float = 0.0,
    ) -> None:
        self.cap = cap
        self.floor = floor
        self.grace = grace
        self.allowance = spendable - floor
        self.reserved = 0
        self.committed = 0
        self.possibly_charged_total = 0
        self.outstanding = 0  # credits the server's last `remain` may not reflect yet
        self._committed_unreflected = 0
        self._doubts: collections.deque[tuple[float, int]] = collections.deque()
        self._doubts_reflected = 0  # possibly charged credits old enough to show in a check
        self._doubt_settled = 0  # ... of which a check proved this many were not billed
        self._current_at_start = current

    @property
    def possibly_charged(self) -> int:
        """Credits of failed calls that may have been billed, not yet settled by a check."""
        return self.possibly_charged_total - self._doubt_settled

    @property
    def left(self) -> int:
        """Credits that new reservations may still take."""
        by_server = self.allowance - self.outstanding
        if self.cap is None:
            return max(0, by_server)
        by_cap = self.cap - self.committed - self.possibly_charged - self.reserved
        return max(0, min(by_server, by_cap))

    @property
    def left_when_settled(self) -> int:
        """What ``left`` would be once everything in flight failed uncharged.

        If even this cannot cover a cost, waiting for in-flight work cannot help.
        """
        by_server = self.allowance - (self.outstanding - self.reserved)
        if self.cap is None:
            return max(0, by_server)
        return max(0, min(by_server, self.cap - self.committed - self.possibly_charged))

    def reserve(self, cost: int) -> bool:
        """Reserve ``cost`` credits if they fit; the hot path (no allocation)."""
        if cost > self.allowance - self.outstanding:
            return False
        cap = self.cap
        if cap is not None and (
            self.committed
            + self.possibly_charged_total
            - self._doubt_settled
            + self.reserved
            + cost
            > cap
        ):
            return False
        self.reserved += cost
        self.outstanding += cost
        return True

    def finish(self, reserved: int, committed: int, possibly_charged: int, now: float) -> None:
        """Close a reservation: what was committed, what may have been charged."""
        self.reserved -= reserved
        self.committed += committed
        self.outstanding += committed + possibly_charged - reserved
        self._committed_unreflected += committed
        if possibly_charged:
            self.possibly_charged_total += possibly_charged
            self._doubts.append((now, possibly_charged))

    def mark(self, now: float) -> RecheckMark:
        """Snapshot taken as an account check is sent."""
        old_enough = now - self.grace
        count = credits = 0
        for finished_at, amount in self._doubts:
            if finished_at > old_enough:
                break
            count += 1
            credits += amount
        return RecheckMark(self._committed_unreflected, count, credits, self.committed)

    def rebase(self, mark: RecheckMark, *, spendable: int, current: int | None) -> None:
        """Re-base on an account reading sent at ``mark``; see the module docstring."""
        self.outstanding -= mark.committed_unreflected + mark.doubt_credits
        self._committed_unreflected -= mark.committed_unreflected
        for _ in range(mark.doubts):
            self._doubts.popleft()
        self._doubts_reflected += mark.doubt_credits
        self.allowance = spendable - self.floor
        start = self._current_at_start
        if start is None or current is None or current < start:
            self._doubt_settled = 0  # no evidence: every doubt stays charged
            return
        self._doubt_settled = self._doubts_reflected - _could_be_charged(
            self._doubts_reflected, consumed=current - start, committed=mark.committed
        )


def _could_be_charged(doubts: int, *, consumed: int, committed: int) -> int:
    """How many of ``doubts`` possibly charged credits the account's consumption leaves open.

    ``consumed`` is the growth of ``current + permanent_current`` since the pool opened,
    ``committed`` what the pool itself spent before the check was sent. The counters are
    trusted only when they show at least that spending (they may lag, stand still, or miss
    bonus credits): then what they show beyond it bounds what the doubts can have cost.
    Otherwise, and before the pool has spent anything to compare with, every doubt stays.
    The Redis ``rebase`` script applies the same rule.
    """
    if committed <= 0 or consumed < committed:
        return doubts
    return max(0, min(doubts, consumed - committed))
