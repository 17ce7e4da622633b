"""Live state of emulated accounts and keys, and the frozen records tests assert on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._config import AccountSpec, KeySpec, digest, mask_key

__all__ = ["AccountState", "EmulatorStats", "KeyState", "RequestRecord"]


def _frozen_mapping(value: Mapping[Any, int]) -> Mapping[Any, int]:
    return MappingProxyType(dict(value))


@attrs.frozen
class EmulatorStats:
    """A snapshot of one account as the server saw it.

    `requests`, `successes` and `charged` cover the billable endpoints (`search`, `url`);
    `successes` counts every request the server completed and charged, including the charged
    faults whose answer never reached the client intact. `refusals` counts every other answer
    by its code (the envelope code, or the HTTP status for 429 and 5xx), on every endpoint.
    `peak_in_flight` is the most requests processed at once (never above the lane count at
    their admission); `peak_offered` adds the 1010 refusals that arrived while those lanes
    were still busy, so `peak_offered > lanes` shows that clients sent too much.

    Example:
        >>> async def check(emu):  # doctest: +SKIP
        ...     stats = emu.stats()
        ...     assert stats.peak_in_flight <= stats.lanes and 1010 not in stats.refusals
    """

    account: str
    lanes: int
    remain: int
    permanent_remain: int
    in_flight: int
    peak_in_flight: int
    peak_offered: int
    requests: int
    successes: int
    charged: int
    external_drain: int
    account_calls: int
    charged_by_key: Mapping[str, int] = attrs.field(converter=_frozen_mapping)
    refusals: Mapping[int, int] = attrs.field(converter=_frozen_mapping)
    faults: Mapping[str, int] = attrs.field(converter=_frozen_mapping)


@attrs.frozen
class RequestRecord:
    """One request as the server handled it; it never holds the API key, only its name.

    `ordinal` counts every request to the emulator (1-based). `started` and `finished` are
    positions on one event sequence shared by all requests, so two records overlapped in
    time when each started before the other finished. `code` is the envelope code (None when
    no envelope was sent: HTML error pages and dropped connections); `fault` is the injected
    fault's kind, if any.

    Example:
        >>> async def check(emu):  # doctest: +SKIP
        ...     assert all(record.credits_charged == 0 for record in emu.log if record.code)
    """

    ordinal: int
    endpoint: str
    path: str
    account: str | None
    key_name: str | None
    subject: str | None
    body: Mapping[str, Any] | None
    http_status: int | None
    code: int | None
    credits_charged: int
    fault: str | None
    request_id: str
    latency: float | None
    started: int
    finished: int


class KeyState:
    """One key's live state (internal)."""

    __slots__ = (
        "account",
        "active",
        "charged",
        "id",
        "key",
        "masked",
        "name",
        "own_remain",
        "quota",
    )

    def __init__(self, spec: KeySpec, key: str, account: AccountState) -> None:
        self.key = key
        self.masked = mask_key(key)
        self.name = spec.name
        self.active = spec.active
        self.quota = spec.quota
        self.own_remain = spec.quota if spec.quota is not None else 0
        self.charged = 0
        self.account = account
        self.id = "uk_" + digest("key-id", account.name, spec.name).hex()[:20]

    def __repr__(self) -> str:
        return f"<KeyState {self.name!r} key={self.masked} active={self.active}>"


class AccountState:
    """One account's live credits, lanes and counters (internal)."""

    def __init__(self, spec: AccountSpec) -> None:
        self.name = spec.name
        self.nickname = spec.nickname
        self.email = spec.email
        self.id = "u_" + digest("account-id", spec.name).hex()[:20]
        self.lanes = spec.lanes
        self.paid_remain = spec.credits
        self.paid_total = spec.credits
        self.permanent_remain = spec.permanent_credits
        self.permanent_total = spec.permanent_credits
        self.current = 0
        self.permanent_current = 0
        self.keys: list[KeyState] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.refused_while_busy = 0
        self.peak_offered = 0
        self.requests = 0
        self.successes = 0
        self.charged = 0
        self.external_drain = 0
        self.account_calls = 0
        self.charged_by_key: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.charges_by_subject: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"<AccountState {self.name!r} remain={self.remain} lanes={self.lanes}"
            f" in_flight={self.in_flight}>"
        )

    @property
    def remain(self) -> int:
        """Spendable credits: paid plus permanent."""
        return self.paid_remain + self.permanent_remain

    def try_admit(self) -> bool:
        """Take a lane if one is free; otherwise count a refusal while the lanes are busy."""
        if self.in_flight >= self.lanes:
            self.refused_while_busy += 1
            self.peak_offered = max(self.peak_offered, self.in_flight + self.refused_while_busy)
            return False
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.peak_offered = max(self.peak_offered, self.in_flight + self.refused_while_busy)
        return True

    def release(self) -> None:
        """Free a lane; refusals seen while it was busy no longer count as offered."""
        self.in_flight -= 1
        self.refused_while_busy = 0

    def fits(self, cost: int, key: KeyState) -> bool:
        """Whether `key` may spend `cost` now (account remain and the key's own quota)."""
        if cost > self.remain:
            return False
        return key.quota is None or cost <= key.own_remain

    def _consume(self, credits: int) -> int:
        """Take credits, permanent ones first; return how many were taken."""
        from_permanent = min(credits, self.permanent_remain)
        from_paid = min(credits - from_permanent, self.paid_remain)
        self.permanent_remain -= from_permanent
        self.permanent_current += from_permanent
        self.paid_remain -= from_paid
        self.current += from_paid  # bonus credits are counted in permanent_current only
        return from_permanent + from_paid

    def charge(
        self, cost: int, key: KeyState, subject: str | None, *, success: bool = True
    ) -> None:
        """Deduct a request's cost (callers check `fits` first); `success` counts it as one."""
        self._consume(cost)
        if key.quota is not None:
            key.own_remain -= cost
        key.charged += cost
        self.charged += cost
        self.successes += success
        self.charged_by_key[key.name] += cost
        if subject is not None:
            self.charges_by_subject[subject] += 1

    def drain(self, credits: int) -> int:
        """Spend credits as another consumer would (clamped at 0); return what was spent."""
        taken = self._consume(credits)
        self.external_drain += taken
        return taken

    def add_credits(self, credits: int) -> None:
        """Add paid credits (a top-up)."""
        self.paid_remain += credits
        self.paid_total += credits

    def snapshot(self) -> EmulatorStats:
        """Return the frozen stats of this account."""
        return EmulatorStats(
            account=self.name,
            lanes=self.lanes,
            remain=self.remain,
            permanent_remain=self.permanent_remain,
            in_flight=self.in_flight,
            peak_in_flight=self.peak_in_flight,
            peak_offered=self.peak_offered,
            requests=self.requests,
            successes=self.successes,
            charged=self.charged,
            external_drain=self.external_drain,
            account_calls=self.account_calls,
            charged_by_key=self.charged_by_key,
            refusals=self.refusals,
            faults=self.faults,
        )
