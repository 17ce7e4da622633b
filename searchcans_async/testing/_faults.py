"""Faults the emulator can inject: what each kind answers, and whether the server charged."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ._config import ENDPOINTS, derived_random

__all__ = ["CHARGED_KINDS", "FAULT_KINDS", "Fault", "FaultPlan", "Faults"]

#: Faults answered right after authentication, without a lane and without a charge.
REFUSAL_KINDS: Final = frozenset(
    {
        "lane_busy",
        "rate_limited",
        "server_error",
        "api_timeout",
        "throttled",
        "network_code",
        "no_results",
        "bad_request",
        "unknown_code",
    }
)
#: Faults that damage the delivery of a success the server has already charged.
CHARGED_KINDS: Final = frozenset(
    {"truncated_json", "wrong_types", "huge_body", "reset_after_charge", "slow_body"}
)
#: Every fault kind, by name.
FAULT_KINDS: Final = frozenset({*REFUSAL_KINDS, *CHARGED_KINDS, "reset_before"})

_ALLOWED_CODES: Final[Mapping[str, frozenset[int]]] = {
    "lane_busy": frozenset({1010}),
    "rate_limited": frozenset({429}),
    "bad_request": frozenset({400}),
    "api_timeout": frozenset({1001, -1001}),
    "throttled": frozenset({1002, 1003, 1004, 1005, 1006, 1009}),
    "network_code": frozenset({443, 10054}),
    "no_results": frozenset({9999, -9999}),
}
_DEFAULT_CODES: Final[Mapping[str, int]] = {
    "lane_busy": 1010,
    "rate_limited": 429,
    "server_error": 503,
    "api_timeout": 1001,
    "throttled": 1002,
    "network_code": 443,
    "no_results": 9999,
    "bad_request": 400,
    "unknown_code": 7777,
}
_SERVER_ERROR_STATUSES: Final = frozenset({500, 502, 503, 504})
_TWO_MIB: Final = 2 * 1024 * 1024
# Constructor parameters stored under another field name, so the repr reads as a call.
_PARAMETER_NAMES: Final[Mapping[tuple[str, str], str]] = {("server_error", "code"): "status"}


@attrs.frozen(repr=False)
class Fault:
    """One injected fault: a kind plus the few parameters that kind uses.

    Build faults with the constructors (`Fault.lane_busy()`, `Fault.rate_limited(2)`, ...) or
    by name with `Fault.from_name("server_error")`. Faults are hashable, so they key
    `Faults.rates`. `charged` says whether the server has charged when it injects this fault.

    Example:
        >>> Fault.rate_limited(retry_after=2, http_date=True)
        Fault.rate_limited(retry_after=2, http_date=True)
        >>> Fault.reset_after_charge().charged
        True
    """

    kind: str
    code: int | None = None
    retry_after: float | str | None = None
    http_date: bool = False
    html: bool = False
    size: int = _TWO_MIB
    keep: float = 0.5
    cut_connection: bool = False
    chunk_size: int = 64
    chunk_delay: float = 0.05

    def __attrs_post_init__(self) -> None:
        if self.code is None and self.kind in _DEFAULT_CODES:
            # One spelling per fault, so `Fault("throttled") == Fault.throttled()` as rate keys.
            object.__setattr__(self, "code", _DEFAULT_CODES[self.kind])
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}: expected one of {sorted(FAULT_KINDS)}"
            )
        allowed = _ALLOWED_CODES.get(self.kind)
        if allowed is not None and self.code is not None and self.code not in allowed:
            raise ValueError(f"{self.kind} takes a code in {sorted(allowed)}, not {self.code}")
        if self.kind not in _DEFAULT_CODES and self.code is not None:
            raise ValueError(f"{self.kind} sends no code of its own, got code={self.code}")
        if self.kind == "server_error" and self.code not in (None, *_SERVER_ERROR_STATUSES):
            raise ValueError(
                f"server_error takes a status in {sorted(_SERVER_ERROR_STATUSES)}, not {self.code}"
            )
        if not 0.0 < self.keep < 1.0:
            raise ValueError(f"keep is the fraction of the body sent, in (0, 1): got {self.keep}")
        if self.size < 0 or self.chunk_size < 1 or self.chunk_delay < 0:
            raise ValueError("size must be >= 0, chunk_size >= 1 and chunk_delay >= 0")

    def __repr__(self) -> str:
        defaults = Fault.from_name(self.kind)
        changed = [
            f"{_PARAMETER_NAMES.get((self.kind, name), name)}={getattr(self, name)!r}"
            for name in (field.name for field in attrs.fields(Fault)[1:])
            if getattr(self, name) != getattr(defaults, name)
        ]
        return f"Fault.{self.kind}({', '.join(changed)})"

    @property
    def charged(self) -> bool:
        """Whether the server charges the request when it injects this fault.

        Example:
            >>> Fault.lane_busy().charged, Fault.slow_body().charged
            (False, True)
        """
        return self.kind in CHARGED_KINDS

    @property
    def answer_code(self) -> int | None:
        """The code (or HTTP status, for 429/5xx) this fault answers with; None for resets.

        Example:
            >>> Fault.server_error(502).answer_code
            502
        """
        return self.code

    @classmethod
    def from_name(cls, kind: str) -> Fault:
        """Return the fault of this kind with its default parameters.

        Example:
            >>> Fault.from_name("throttled")
            Fault.throttled()
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: expected one of {sorted(FAULT_KINDS)}")
        constructor: Callable[[], Fault] = getattr(cls, kind)
        return constructor()

    @classmethod
    def lane_busy(cls) -> Fault:
        """Code 1010 (HTTP 200): all lanes busy. Not charged."""
        return cls("lane_busy")

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1, *, http_date: bool = False) -> Fault:
        """HTTP 429 with a `Retry-After` header. Not charged.

        `retry_after` a number sends seconds (`"2"`, or `"0.05"` for a fractional number, which
        strict parsers may reject); with `http_date=True` it sends now + that many seconds as an
        HTTP-date; a string is sent verbatim (use it for garbage); None sends no header.

        Example:
            >>> Fault.rate_limited("soon").retry_after
            'soon'
        """
        return cls("rate_limited", retry_after=retry_after, http_date=http_date)

    @classmethod
    def server_error(cls, status: int = 503, *, html: bool = False) -> Fault:
        """HTTP 500/502/503/504, with a JSON envelope or (`html=True`) an HTML error page."""
        return cls("server_error", code=status, html=html)

    @classmethod
    def api_timeout(cls, code: int = 1001) -> Fault:
        """Code 1001 or -1001 (HTTP 200): server-side timeout. Not charged."""
        return cls("api_timeout", code=code)

    @classmethod
    def throttled(cls, code: int = 1002) -> Fault:
        """Codes 1002-1006 or 1009 (HTTP 200): frequency or load limits. Not charged."""
        return cls("throttled", code=code)

    @classmethod
    def network_code(cls, code: int = 443) -> Fault:
        """Code 443 or 10054 (HTTP 200): a network error reported in the envelope. Not charged."""
        return cls("network_code", code=code)

    @classmethod
    def no_results(cls, code: int = 9999) -> Fault:
        """Code 9999 or -9999 (HTTP 200, `data` an empty list): no results. Not charged."""
        return cls("no_results", code=code)

    @classmethod
    def bad_request(cls) -> Fault:
        """HTTP 400 with code 400. Not charged."""
        return cls("bad_request")

    @classmethod
    def unknown_code(cls, code: int = 7777) -> Fault:
        """A code the client cannot know (HTTP 200). Not charged."""
        return cls("unknown_code", code=code)

    @classmethod
    def truncated_json(cls, keep: float = 0.5, *, cut_connection: bool = False) -> Fault:
        """A charged success whose JSON body is cut after the fraction `keep`.

        By default the response is complete at the HTTP level (its Content-Length is the cut
        length), so the client reads malformed JSON. With `cut_connection=True` the headers
        announce the whole body and the connection closes mid-body (a transport error).
        """
        return cls("truncated_json", keep=keep, cut_connection=cut_connection)

    @classmethod
    def wrong_types(cls) -> Fault:
        """A charged success with fields of the wrong type (`organic` a string, `remain` "12")."""
        return cls("wrong_types")

    @classmethod
    def huge_body(cls, size: int = _TWO_MIB) -> Fault:
        """A charged, valid success padded to about `size` bytes (default 2 MiB)."""
        return cls("huge_body", size=size)

    @classmethod
    def reset_before(cls) -> Fault:
        """The connection drops on arrival, before any processing. Not charged."""
        return cls("reset_before")

    @classmethod
    def reset_after_charge(cls) -> Fault:
        """The request succeeds and is charged, then the connection drops without a response."""
        return cls("reset_after_charge")

    @classmethod
    def slow_body(cls, chunk_size: int = 64, chunk_delay: float = 0.05) -> Fault:
        """A charged success dribbled in `chunk_size` byte chunks, `chunk_delay` s apart."""
        return cls("slow_body", chunk_size=chunk_size, chunk_delay=chunk_delay)


def _freeze_script(script: Mapping[int, Fault]) -> Mapping[int, Fault]:
    return MappingProxyType(dict(script))


def _freeze_rates(rates: Mapping[Fault, float]) -> Mapping[Fault, float]:
    return MappingProxyType(dict(rates))


def _freeze_endpoints(endpoints: Collection[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(endpoints))


@attrs.frozen
class Faults:
    """Which requests get which fault: scripted by ordinal and/or drawn with seeded rates.

    `script` maps a request ordinal (1-based, counted over `endpoints` only, from the moment
    these faults were installed) to a fault. `rates` maps faults to probabilities (summing to
    at most 1) for the requests the script does not name; draws derive from the emulator seed
    and the ordinal, so a seed replays the same faults. `endpoints` are among `account`,
    `search` and `url`.

    Example:
        >>> faults = Faults(script={2: Fault.lane_busy()}, rates={Fault.server_error(): 0.1})
        >>> faults.endpoints
        ('search', 'url')
    """

    script: Mapping[int, Fault] = attrs.field(factory=dict, converter=_freeze_script)
    rates: Mapping[Fault, float] = attrs.field(factory=dict, converter=_freeze_rates)
    endpoints: tuple[str, ...] = attrs.field(default=("search", "url"), converter=_freeze_endpoints)

    def __attrs_post_init__(self) -> None:
        if any(ordinal < 1 for ordinal in self.script):
            raise ValueError("script ordinals are 1-based: the first request is 1")
        if any(not math.isfinite(rate) or not 0.0 <= rate <= 1.0 for rate in self.rates.values()):
            raise ValueError(f"fault rates must be probabilities in [0, 1], got {dict(self.rates)}")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must sum to at most 1, got {sum(self.rates.values())}")
        unknown = set(self.endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}: expected some of {ENDPOINTS}")


class FaultPlan:
    """The live side of a `Faults`: counts requests and picks each one's fault (internal)."""

    def __init__(self, faults: Faults | None, *, seed: int, generation: int) -> None:
        self._faults = faults
        self._seed = seed
        self._generation = generation
        self._ordinal = 0

    def next_fault(self, endpoint: str) -> Fault | None:
        """Count one arrival at `endpoint` and return its fault, if any."""
        faults = self._faults
        if faults is None or endpoint not in faults.endpoints:
            return None
        self._ordinal += 1
        scripted = faults.script.get(self._ordinal)
        if scripted is not None or not faults.rates:
            return scripted
        draw = derived_random(self._seed, "fault", self._generation, self._ordinal).random()
        threshold = 0.0
        for fault, rate in faults.rates.items():
            threshold += rate
            if draw < threshold:
                return fault
        return None
