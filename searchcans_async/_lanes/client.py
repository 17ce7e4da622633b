"""``SearchCans``: the API client plus ``lanes()``, a pool on its account.

The client layer's :class:`~searchcans_async._client.Client` sends the calls; a
:class:`LanePool` sits above it and takes any account source. ``lanes()`` ties the two for
the common case, so it is defined here, in the layer that knows both: the client layer
imports nothing from above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._client import Client
from .pool import LanePool

if TYPE_CHECKING:
    from .._client import ApiKey
    from .backend import LaneBackend

__all__ = ["SearchCans"]


class SearchCans(Client):
    """An asyncio client for the SearchCans API.

    Args:
        api_key: The API key; default: the ``SEARCHCANS_API_KEY`` environment variable.
            It is only ever sent in the Authorization header and never shown.
        base_url: The service's address; default: the ``SEARCHCANS_BASE_URL`` environment
            variable, else ``https://www.searchcans.com``. Point it at an
            :class:`~searchcans_async.testing.Emulator` in tests. Plain ``http://`` is
            refused unless the host is loopback or ``allow_insecure_http=True``.
        session: An ``aiohttp.ClientSession`` to borrow (never closed by the client).
            Without one the client creates its own and closes it in :meth:`aclose`.
        timeout: Seconds one attempt may take. Raised automatically to the server's
            own wait (``server_timeout`` + ``wait``) plus 5 s, so the client never gives
            up before the server does (which would leave a call possibly charged).
        retry: The default :class:`RetryPolicy`; each call may pass its own.
        costs: The credit price list used to reserve credits in a lane.
        clock: Time source for backoff and deadlines (a ``VirtualClock`` in tests).
        on_event: A callable receiving :mod:`events <searchcans_async.events>`.
        max_body_bytes: Larger answers are refused (``ResponseFormatError``).
        allow_insecure_http: Allow plain http to a non-loopback host.
        trust_env: Let aiohttp read proxy settings from the environment (off by default).

    Raises:
        AuthenticationError: No key was given and ``SEARCHCANS_API_KEY`` is unset.

    Example:
        >>> async def main():
        ...     async with SearchCans() as client:
        ...         account = await client.account()
        ...         print(account.remain, account.concurrent)
        ...         result = await client.search("asyncio semaphore")
        ...         page = await client.read("https://docs.python.org/3/library/asyncio.html")
    """

    def lanes(
        self,
        *,
        budget: int | None = None,
        floor: int = 0,
        max_lanes: int | None = None,
        for_key: str | ApiKey | None = None,
        recheck_every: int | None = 100,
        recheck_interval: float | None = 30.0,
        settle_grace: float | None = None,
        backend: LaneBackend | None = None,
    ) -> LanePool:
        """A :class:`LanePool` on this client's account; use it with ``async with``.

        Entering it reads the account once to size the lanes (``concurrent``, capped by
        ``max_lanes``) and the budget (the key's spendable credits minus ``floor``,
        capped by ``budget``). See :class:`LanePool` for the options; ``settle_grace``
        defaults to this client's attempt timeout plus 5 s (by then the server has
        finished any call the client gave up on).

        Example:
            >>> async with client.lanes(budget=500) as pool:  # doctest: +SKIP
            ...     async with pool.map(client.read, urls, cost=2) as outcomes:
            ...         async for outcome in outcomes:
            ...             print(outcome.item, outcome.ok)
        """
        return LanePool(
            self.account,
            budget=budget,
            floor=floor,
            max_lanes=max_lanes,
            for_key=for_key,
            recheck_every=recheck_every,
            recheck_interval=recheck_interval,
            settle_grace=self.settle_grace if settle_grace is None else settle_grace,
            clock=self.clock,
            on_event=self.emit,
            backend=backend,
        )
