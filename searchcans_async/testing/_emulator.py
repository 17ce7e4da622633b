"""`Emulator`: a SearchCans-compatible server for tests, benchmarks and offline demos."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Self

from aiohttp import web

from ._app import Service
from ._config import AccountSpec, EmulatorCosts, Latency, WireOptions, digest, mask_key
from ._state import AccountState, EmulatorStats, KeyState, RequestRecord

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from types import TracebackType

    from ._faults import Faults

__all__ = ["Emulator"]


def generated_key(seed: int, account: str, name: str) -> str:
    """The deterministic key the emulator gives a `KeySpec(key=None)`."""
    return "sk_emu_" + digest("key", seed, account, name).hex()[:32]


class Emulator:
    """An in-process SearchCans server: accounts, lanes, credits, keys, latency and faults.

    It answers `/api/user/key`, `/api/v1/search` and `/api/v1/url` (and the deprecated v0
    paths) with the real envelope and codes, and records what it saw so tests can assert on
    the server's view (`stats()`, `log`, `charges_by_subject()`). With `accounts=None` it builds
    one account from `credits` and `lanes` with one active key. Live changes (`set_lanes`,
    `drain`, ...) take effect at once; call them from the event loop's thread.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with Emulator(credits=100, lanes=2) as emu:
        ...         print(emu.base_url, emu.api_key)  # http://127.0.0.1:54321 sk_emu_...
        ...         # point any client at emu.base_url with emu.api_key
        ...         assert emu.stats().peak_in_flight <= 2
    """

    def __init__(
        self,
        accounts: Sequence[AccountSpec] | None = None,
        *,
        credits: int = 10_000,
        lanes: int = 3,
        latency: float | Latency = 0.003,
        faults: Faults | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        costs: EmulatorCosts | None = None,
        no_results: Collection[str] = (),
        legacy_search_shape: bool = False,
        log_limit: int | None = None,
        wire: WireOptions | None = None,
        shutdown_timeout: float = 1.0,
    ) -> None:
        specs = (
            tuple(accounts)
            if accounts is not None
            else (AccountSpec(credits=credits, lanes=lanes),)
        )
        if not specs:
            raise ValueError("an Emulator needs at least one AccountSpec (or accounts=None)")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"account names must be unique, got {names}")
        self._accounts: dict[str, AccountState] = {}
        keys: dict[str, KeyState] = {}
        for spec in specs:
            state = AccountState(spec)
            for key_spec in spec.keys:
                key = key_spec.key or generated_key(seed, spec.name, key_spec.name)
                if key in keys:
                    raise ValueError(f"key {mask_key(key)} is configured twice")
                state.keys.append(KeyState(key_spec, key, state))
                keys[key] = state.keys[-1]
            self._accounts[spec.name] = state
        self._keys = keys
        self._service = Service(
            list(self._accounts.values()),
            keys,
            seed=seed,
            latency=Latency.coerce(latency),
            faults=faults,
            costs=costs if costs is not None else EmulatorCosts(),
            no_results=no_results,
            legacy_search_shape=legacy_search_shape,
            log_limit=log_limit,
            wire=wire if wire is not None else WireOptions(),
        )
        self._host = host
        self._port = port
        self._shutdown_timeout = shutdown_timeout
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        where = self._base_url or "not serving"
        requests = sum(account.requests for account in self._accounts.values())
        return f"<Emulator {where} accounts={list(self._accounts)} requests={requests}>"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Serve on `host`:`port` (port 0 picks a free one); see `base_url`.

        Example:
            >>> emu = Emulator()  # doctest: +SKIP
            >>> await emu.start()  # doctest: +SKIP
            >>> await emu.aclose()  # doctest: +SKIP
        """
        if self._runner is not None:
            raise RuntimeError("this Emulator is already serving: call aclose() before start()")
        runner = web.AppRunner(
            self._service.make_app(),
            access_log=None,
            handler_cancellation=False,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def aclose(self) -> None:
        """Stop serving (idempotent); requests still running get `shutdown_timeout` to finish.

        Example:
            >>> await emu.aclose()  # doctest: +SKIP
        """
        runner, self._runner, self._base_url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    @property
    def running(self) -> bool:
        """Whether the emulator is serving.

        Example:
            >>> Emulator().running
            False
        """
        return self._runner is not None

    @property
    def app(self) -> web.Application:
        """An `aiohttp.web.Application` answering from this emulator's state, to mount elsewhere.

        Example:
            >>> web.run_app(Emulator().app, port=8765)  # doctest: +SKIP
        """
        if self._app is None:
            self._app = self._service.make_app()
        return self._app

    @property
    def base_url(self) -> str:
        """Where the emulator serves, e.g. `http://127.0.0.1:54321` (only while running).

        Example:
            >>> async with Emulator() as emu:  # doctest: +SKIP
            ...     emu.base_url
            'http://127.0.0.1:54321'
        """
        if self._base_url is None:
            raise RuntimeError(
                "the Emulator is not serving: use `async with Emulator() as emu:` or "
                "`await emu.start()` first"
            )
        return self._base_url

    # -- keys and accounts -----------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The first key of the first account.

        Example:
            >>> Emulator(seed=1).api_key.startswith("sk_emu_")
            True
        """
        return next(iter(self._keys))

    @property
    def keys(self) -> tuple[str, ...]:
        """Every configured key, account by account, in configuration order.

        Example:
            >>> len(Emulator().keys)
            1
        """
        return tuple(self._keys)

    @property
    def accounts(self) -> tuple[str, ...]:
        """The account names, in configuration order.

        Example:
            >>> Emulator().accounts
            ('main',)
        """
        return tuple(self._accounts)

    def key_for(self, name: str = "default", account: str | None = None) -> str:
        """Return the key called `name` in `account` (default: the first account).

        Example:
            >>> from searchcans_async.testing import KeySpec
            >>> emu = Emulator([AccountSpec(keys=[KeySpec(name="a"), KeySpec(name="b")])])
            >>> emu.key_for("b") == emu.keys[1]
            True
        """
        state = self._account(account)
        for key in state.keys:
            if key.name == name:
                return key.key
        names = [key.name for key in state.keys]
        raise KeyError(f"account {state.name!r} has no key named {name!r}; its keys: {names}")

    def _account(self, account: str | None) -> AccountState:
        if account is None:
            return next(iter(self._accounts.values()))
        try:
            return self._accounts[account]
        except KeyError:
            raise KeyError(f"no account {account!r}; accounts: {list(self._accounts)}") from None

    # -- live changes ----------------------------------------------------------------------

    def set_lanes(self, lanes: int, account: str | None = None) -> None:
        """Change `concurrent` now (plan stacking); running requests keep their lanes.

        Example:
            >>> Emulator().set_lanes(5)
        """
        if lanes < 0:
            raise ValueError(f"lanes must be >= 0, got {lanes}")
        self._account(account).lanes = lanes

    def add_credits(self, credits: int, account: str | None = None) -> None:
        """Add paid credits now (a top-up); to remove credits use `drain`.

        Example:
            >>> Emulator(credits=1).add_credits(10)
        """
        if credits < 0:
            raise ValueError(f"add_credits takes a positive amount, got {credits}: use drain()")
        self._account(account).add_credits(credits)

    def drain(self, credits: int, account: str | None = None) -> int:
        """Spend credits as another consumer of the account would; return what was spent.

        Permanent credits go first; the remain stops at 0. Recorded as `external_drain`,
        never as a charge of any key.

        Example:
            >>> Emulator(credits=5).drain(8)
            5
        """
        if credits < 0:
            raise ValueError(f"drain takes a positive amount, got {credits}: use add_credits()")
        return self._account(account).drain(credits)

    def set_key_active(self, key: str, active: bool) -> None:
        """Activate or deactivate `key` (the key itself, as a client sends it).

        Example:
            >>> emu = Emulator()
            >>> emu.set_key_active(emu.api_key, False)
        """
        try:
            self._keys[key].active = active
        except KeyError:
            raise KeyError(f"no emulated key {mask_key(key)}") from None

    def set_faults(self, faults: Faults | None) -> None:
        """Replace the faults now (None: no faults); script ordinals count again from 1.

        Example:
            >>> Emulator().set_faults(Faults(script={1: Fault.lane_busy()}))  # doctest: +SKIP
        """
        self._service.install_faults(faults)

    def pause(self) -> None:
        """Hold every admitted search/url request in its lane, after its latency, until `resume`.

        A testing switch instead of sleeps: pause, send requests, wait until
        `stats().in_flight` shows them admitted, assert, then resume.

        Example:
            >>> async def test_refuses_the_fourth(emu):  # doctest: +SKIP
            ...     emu.pause()
            ...     ...  # start four requests with 3 lanes; one gets 1010
            ...     emu.resume()
        """
        self._service.pause()

    def resume(self) -> None:
        """Let the requests held by `pause` finish (and new ones run without holding).

        Example:
            >>> Emulator().resume()
        """
        self._service.resume()

    def set_latency(self, latency: float | Latency) -> None:
        """Replace the latency now (a number means `Latency.fixed`).

        Example:
            >>> Emulator().set_latency(0.0)
        """
        self._service.latency = Latency.coerce(latency)

    # -- records ---------------------------------------------------------------------------

    def stats(self, account: str | None = None) -> EmulatorStats:
        """A frozen snapshot of `account` (default: the first) as the server saw it.

        Requests with a missing or unknown key count on the first account.

        Example:
            >>> Emulator(credits=7).stats().remain
            7
        """
        return self._account(account).snapshot()

    @property
    def log(self) -> tuple[RequestRecord, ...]:
        """Every request handled so far (the last `log_limit` ones, if set), oldest first.

        Example:
            >>> Emulator().log
            ()
        """
        return tuple(self._service.log)

    def charges_by_subject(self, account: str | None = None) -> Counter[str]:
        """How many times each subject (the body's `s`) was charged, for `account`.

        Example:
            >>> async def check(emu):  # doctest: +SKIP
            ...     assert max(emu.charges_by_subject().values(), default=0) <= 1
        """
        return Counter(self._account(account).charges_by_subject)
