"""CreditLedger on its own: reservations, commitments and doubts against a budget."""

from __future__ import annotations

import pytest

from searchcans_async._lanes.ledger import CreditLedger, _could_be_charged


def ledger(cap: int | None = 100, spendable: int = 1_000, current: int | None = 0) -> CreditLedger:
    return CreditLedger(cap=cap, floor=0, spendable=spendable, current=current)


def test_a_reservation_fits_the_cap_and_the_server_allowance() -> None:
    """reserve() takes credits while both limits allow; finish() settles them."""
    credits = ledger(cap=10, spendable=8)
    assert credits.reserve(5)
    assert not credits.reserve(4)  # 9 > the server's 8
    assert credits.reserve(3)
    credits.finish(5, committed=5, possibly_charged=0, now=0.0)
    credits.finish(3, committed=0, possibly_charged=0, now=0.0)  # failed, not charged
    assert (credits.committed, credits.reserved, credits.left) == (5, 0, 3)


def test_a_possibly_charged_failure_stays_counted_until_a_check_frees_it() -> None:
    """Committed 5, a doubt of 10: a check whose counters show only the 5 frees the doubt."""
    credits = ledger()
    credits.reserve(5)
    credits.finish(5, committed=5, possibly_charged=0, now=0.0)
    credits.reserve(10)
    credits.finish(10, committed=0, possibly_charged=10, now=0.0)
    assert (credits.possibly_charged, credits.left) == (10, 85)
    credits.rebase(credits.mark(now=1.0), spendable=995, current=5)
    assert (credits.possibly_charged, credits.left) == (0, 95)


@pytest.mark.parametrize(
    ("doubts", "consumed", "committed", "open_"),
    [
        (10, 5, 5, 0),  # the counters show our spending and nothing more
        (10, 9, 5, 4),  # 4 more than ours: at most 4 of the doubts were billed
        (10, 50, 5, 10),  # much more (another consumer): all may have been
        (10, 0, 5, 10),  # frozen: the counters do not even show our own spending
        (10, 3, 5, 10),  # lagging behind our spending
        (10, 0, 0, 10),  # nothing of ours to compare with: no evidence
    ],
)
def test_doubts_are_freed_only_on_consistent_evidence(
    doubts: int, consumed: int, committed: int, open_: int
) -> None:
    """_could_be_charged: what the counters leave open of the doubts."""
    assert _could_be_charged(doubts, consumed=consumed, committed=committed) == open_


def test_unknown_counters_free_nothing() -> None:
    """An account without `current` (or a reading that went backwards) is no evidence."""
    credits = ledger(current=None)
    credits.reserve(10)
    credits.finish(10, committed=0, possibly_charged=10, now=0.0)
    credits.rebase(credits.mark(now=1.0), spendable=1_000, current=0)
    assert credits.possibly_charged == 10


def test_a_check_only_settles_doubts_older_than_the_grace() -> None:
    """A doubt that ended after now - grace may still be billed after the reading."""
    credits = CreditLedger(cap=100, floor=0, spendable=1_000, current=0, grace=5.0)
    credits.reserve(1)
    credits.finish(1, committed=1, possibly_charged=0, now=0.0)
    credits.reserve(10)
    credits.finish(10, committed=0, possibly_charged=10, now=8.0)
    credits.rebase(credits.mark(now=10.0), spendable=999, current=1)  # the doubt is 2 s old
    assert credits.possibly_charged == 10
    credits.rebase(credits.mark(now=20.0), spendable=999, current=1)
    assert credits.possibly_charged == 0
