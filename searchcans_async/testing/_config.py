"""Immutable configuration of the emulator: keys, accounts, costs and latency."""

from __future__ import annotations

import hashlib
import math
import random
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "ENDPOINTS",
    "AccountSpec",
    "EmulatorCosts",
    "KeySpec",
    "Latency",
    "WireOptions",
    "derived_random",
    "digest",
    "mask_key",
]

#: The emulator's endpoint names, as used by `Latency.per_endpoint` and `Faults.endpoints`.
ENDPOINTS: Final = ("account", "search", "url")
_BULLETS: Final = "\u2022" * 6


def mask_key(key: str) -> str:
    """Return `key` masked the way the service masks keys (`sk_••••••ab12`).

    Short keys are masked completely, so the result never reveals a key in full.

    Example:
        >>> mask_key("sk_emu_0123456789abcdef")
        'sk_••••••cdef'
    """
    if len(key) <= 10:
        return _BULLETS
    return f"{key[:3]}{_BULLETS}{key[-4:]}"


def digest(*parts: object) -> bytes:
    """Return a stable 32-byte digest of `parts` (never `hash()`, which is salted per process).

    Example:
        >>> digest("seed", 1) == digest("seed", 1)
        True
    """
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()


def derived_random(*parts: object) -> random.Random:
    """Return a `random.Random` seeded from `parts` (e.g. the emulator seed, a stream, an ordinal).

    Deriving one generator per request, instead of sharing one, keeps request N's draw the same
    whatever the order in which concurrent requests happen to reach the generator.

    Example:
        >>> derived_random(0, "latency", 1).random() == derived_random(0, "latency", 1).random()
        True
    """
    return random.Random(int.from_bytes(digest(*parts)[:16], "big"))


def _mask_for_repr(key: str | None) -> str:
    return "None" if key is None else repr(mask_key(key))


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


def _optional_non_negative(
    _instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0 or None, got {value}")


@attrs.frozen
class KeySpec:
    """One API key of an emulated account.

    `key=None` lets the emulator generate a deterministic key from its seed (`sk_emu_<hex>`).
    `quota=None` means the key has no own cap (`total == -1`: it draws on the account); an int
    gives it its own quota, and every charge must then fit both the key's and the account's
    remain. The repr masks the key.

    Example:
        >>> KeySpec("sk_test_0123456789", name="crawler", quota=500)
        KeySpec(key='sk_••••••6789', name='crawler', active=True, quota=500)
    """

    key: str | None = attrs.field(default=None, repr=_mask_for_repr)
    name: str = attrs.field(default="default", kw_only=True)
    active: bool = attrs.field(default=True, kw_only=True)
    quota: int | None = attrs.field(default=None, kw_only=True, validator=_optional_non_negative)

    @key.validator
    def _check_key(self, _attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and not value.strip():
            raise ValueError("KeySpec.key must be a non-empty string, or None to generate one")


def _to_key_tuple(keys: Sequence[KeySpec]) -> tuple[KeySpec, ...]:
    return tuple(keys)


@attrs.frozen
class AccountSpec:
    """One emulated account: credits, Parallel Lanes and keys.

    `credits` is the paid remain, `permanent_credits` the bonus credits consumed first; the
    account's `remain` is their sum. `lanes` is `concurrent`.

    Example:
        >>> keys = [KeySpec(name="a"), KeySpec(name="b", quota=10)]
        >>> spec = AccountSpec("team", credits=100, lanes=2, keys=keys)
        >>> [key.name for key in spec.keys]
        ['a', 'b']
    """

    name: str = "main"
    credits: int = attrs.field(default=10_000, kw_only=True, validator=_non_negative)
    permanent_credits: int = attrs.field(default=0, kw_only=True, validator=_non_negative)
    lanes: int = attrs.field(default=3, kw_only=True, validator=_non_negative)
    keys: tuple[KeySpec, ...] = attrs.field(
        default=(KeySpec(),), kw_only=True, converter=_to_key_tuple
    )
    nickname: str = attrs.field(default="emulated", kw_only=True)
    email: str = attrs.field(default="emulated@example.invalid", kw_only=True)

    @keys.validator
    def _check_keys(
        self, _attribute: attrs.Attribute[tuple[KeySpec, ...]], value: tuple[KeySpec, ...]
    ) -> None:
        if not value:
            raise ValueError(f"account {self.name!r} needs at least one KeySpec")
        names = [key.name for key in value]
        if len(set(names)) != len(names):
            raise ValueError(f"account {self.name!r} has duplicate key names: {names}")


def _proxy_costs(value: Sequence[int]) -> tuple[int, int, int, int]:
    costs = tuple(value)
    if len(costs) != 4 or any(cost < 0 for cost in costs):
        raise ValueError(f"proxy costs must be four non-negative ints (tiers 0-3), got {value!r}")
    return (costs[0], costs[1], costs[2], costs[3])


@attrs.frozen(kw_only=True)
class EmulatorCosts:
    """Credits each request costs; the defaults are API.md's documented prices.

    Search costs `search_per_page` per page; Reader costs `reader_base` plus the proxy tier's
    extra, plus the (undocumented, default 0) extras for `mode`, `captcha`, `file` and `image`.
    `no_results_charged` says whether a 9999 "no results" answer is charged (default: no).

    Example:
        >>> EmulatorCosts(mode=1).reader(proxy=2, mode=True)
        8
    """

    search_per_page: int = attrs.field(default=1, validator=_non_negative)
    reader_base: int = attrs.field(default=2, validator=_non_negative)
    proxy: tuple[int, int, int, int] = attrs.field(default=(0, 2, 5, 10), converter=_proxy_costs)
    mode: int = attrs.field(default=0, validator=_non_negative)
    captcha: int = attrs.field(default=0, validator=_non_negative)
    file: int = attrs.field(default=0, validator=_non_negative)
    image: int = attrs.field(default=0, validator=_non_negative)
    no_results_charged: bool = False

    def search(self, pages: int) -> int:
        """Return the cost of a search fetching `pages` pages.

        Example:
            >>> EmulatorCosts().search(3)
            3
        """
        return self.search_per_page * pages

    def reader(
        self,
        *,
        proxy: int = 0,
        mode: bool = False,
        captcha: bool = False,
        file: bool = False,
        image: bool = False,
    ) -> int:
        """Return the cost of a Reader call with these options.

        Example:
            >>> EmulatorCosts().reader(proxy=3)
            12
        """
        extras = (
            (self.mode if mode else 0)
            + (self.captcha if captcha else 0)
            + (self.file if file else 0)
            + (self.image if image else 0)
        )
        return self.reader_base + self.proxy[proxy] + extras


_DISTRIBUTIONS: Final = ("fixed", "uniform", "lognormal")


@attrs.frozen
class Latency:
    """How long the emulator takes to answer: fixed or seeded random, optionally per endpoint.

    Build one with `Latency.fixed`, `Latency.uniform` or `Latency.lognormal`; `per_endpoint`
    returns a copy with other latencies for some endpoints (`account`, `search`, `url`).
    Draws come from generators derived from the emulator seed, so a seed replays a run.

    Example:
        >>> latency = Latency.fixed(0.002).per_endpoint(url=Latency.uniform(0.01, 0.02))
        >>> latency.for_endpoint("search"), latency.for_endpoint("url").distribution
        (Latency(distribution='fixed', params=(0.002,), overrides=()), 'uniform')
    """

    distribution: str
    params: tuple[float, ...]
    overrides: tuple[tuple[str, Latency], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {_DISTRIBUTIONS}, not {self.distribution!r}"
            )
        if any(not math.isfinite(value) or value < 0 for value in self.params):
            raise ValueError(f"latency parameters must be finite and >= 0, got {self.params}")
        for endpoint, _latency in self.overrides:
            if endpoint not in ENDPOINTS:
                raise ValueError(f"unknown endpoint {endpoint!r}: expected one of {ENDPOINTS}")

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        """Always take `seconds`.

        Example:
            >>> Latency.fixed(0.01).mean
            0.01
        """
        return cls("fixed", (float(seconds),))

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        """Take a uniformly drawn time between `low` and `high` seconds.

        Example:
            >>> Latency.uniform(0.01, 0.03).mean
            0.02
        """
        if high < low:
            raise ValueError(f"uniform latency needs low <= high, got {low} > {high}")
        return cls("uniform", (float(low), float(high)))

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Latency:
        """Take a log-normally drawn time with this median (seconds) and shape `sigma`.

        Example:
            >>> Latency.lognormal(0.8, 0.5).distribution
            'lognormal'
        """
        if median <= 0:
            raise ValueError(f"lognormal latency needs median > 0, got {median}")
        return cls("lognormal", (float(median), float(sigma)))

    @classmethod
    def coerce(cls, value: float | Latency) -> Latency:
        """Return `value` as a `Latency` (a number means `Latency.fixed(number)`).

        Example:
            >>> Latency.coerce(0.5) == Latency.fixed(0.5)
            True
        """
        return value if isinstance(value, Latency) else cls.fixed(value)

    def per_endpoint(self, **endpoints: float | Latency) -> Latency:
        """Return a copy answering the named endpoints with other latencies.

        Example:
            >>> Latency.fixed(0.0).per_endpoint(account=0.05).for_endpoint("account").mean
            0.05
        """
        merged: Mapping[str, Latency] = {
            **dict(self.overrides),
            **{name: Latency.coerce(value) for name, value in endpoints.items()},
        }
        return Latency(self.distribution, self.params, tuple(sorted(merged.items())))

    def for_endpoint(self, endpoint: str) -> Latency:
        """Return the latency used for `endpoint` (its override, or this one without overrides).

        Example:
            >>> Latency.fixed(0.1).for_endpoint("url")
            Latency(distribution='fixed', params=(0.1,), overrides=())
        """
        for name, latency in self.overrides:
            if name == endpoint:
                return latency
        return Latency(self.distribution, self.params) if self.overrides else self

    @property
    def mean(self) -> float:
        """The expected latency in seconds (without endpoint overrides).

        Example:
            >>> round(Latency.lognormal(1.0, 0.0).mean, 3)
            1.0
        """
        if self.distribution == "fixed":
            return self.params[0]
        if self.distribution == "uniform":
            return (self.params[0] + self.params[1]) / 2
        median, sigma = self.params
        return median * math.exp(sigma * sigma / 2)

    @property
    def is_random(self) -> bool:
        """Whether drawing needs a random generator (false for fixed latencies).

        Example:
            >>> Latency.fixed(1).is_random
            False
        """
        return self.distribution != "fixed"

    def draw(self, rng: random.Random | None = None) -> float:
        """Draw one latency in seconds (`rng` is required unless the latency is fixed).

        Example:
            >>> Latency.uniform(1, 2).draw(random.Random(0)) < 2
            True
        """
        if self.distribution == "fixed":
            return self.params[0]
        if rng is None:
            raise ValueError(f"a {self.distribution} latency needs a random generator to draw")
        if self.distribution == "uniform":
            return rng.uniform(self.params[0], self.params[1])
        median, sigma = self.params
        return rng.lognormvariate(math.log(median), sigma)


# -- How the answers look on the wire (issue 16) -----------------------------------------------
# Kept apart from the costs and accounts above: these options only shape what is sent.

_DEEP_PAGES: Final = ("one", "all", "refuse")
_NO_RESULTS_DATA: Final = ("list", "object")
_COUNTERS: Final = ("split", "combined", "frozen")


@attrs.frozen(kw_only=True)
class WireOptions:
    """How the emulator's answers look where the public docs leave room (API.md).

    The defaults are as close to the published examples as the emulator can be:

    * `deep_pages`: what `page: N > 1` does off Google, which is undocumented: `"one"`
      (default) serves one page and charges one; `"all"` serves pages 1..N and charges N, as
      Google does; `"refuse"` answers HTTP 400.
    * `no_results_data`: the `data` of a 9999 "no results" answer, `"list"` (`[]`, default)
      or `"object"` (`{}`); the service has sent both.
    * `request_ids`: send the emulator's request id as `requestId` (a convenience to match
      a client's result with `Emulator.log`); the published example sends `null` (default).
    * `key_suffix`: mask keys as `sk_••••••cdef` (a convenience to tell keys apart); the
      published example shows `sk_` and bullets only (default).
    * `counters`: how the consumption counters move. `"split"` (default, as published):
      `current` counts paid credits, `permanentCurrent` the bonus credits spent first;
      `"combined"`: `current` counts both; `"frozen"`: neither ever moves (a lagging or
      broken counter). Only `remain` is billed against in every case.

    Example:
        >>> WireOptions(deep_pages="all").no_results_data
        'list'
    """

    deep_pages: str = attrs.field(default="one", validator=attrs.validators.in_(_DEEP_PAGES))
    no_results_data: str = attrs.field(
        default="list", validator=attrs.validators.in_(_NO_RESULTS_DATA)
    )
    request_ids: bool = False
    key_suffix: bool = False
    counters: str = attrs.field(default="split", validator=attrs.validators.in_(_COUNTERS))
