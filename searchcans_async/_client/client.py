"""The API client: ``account()``, ``search()``, ``read()`` over one request path.

Why one module: the three calls share one request path (costs, metering, retries, typed
errors); options, transport, retry and models are modules of their own.

The public :class:`~searchcans_async.SearchCans` is :class:`Client` plus ``lanes()``,
defined in the lanes layer (``_lanes/client.py``): the pool sits above the client.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import warnings
from typing import TYPE_CHECKING, Any, Final, Literal, Self, overload

from .._clock import Clock, LoopClock
from .._events import CallFinished, Emitter, EventHook, RetryScheduled
from .convert import parse_account, parse_page, parse_search
from .costs import Costs
from .errors import LaneBusyError, SearchCansError
from .meter import current_lane
from .models import ReaderPage, SearchResult
from .requests import ReadRequest, SearchRequest
from .retry import RetryPolicy
from .secret import Secret
from .transport import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_BODY_BYTES,
    NO_RESULTS_CODES,
    Envelope,
    Session,
    Transport,
)

if TYPE_CHECKING:
    from types import TracebackType

    from .models import Account

__all__ = ["Client"]

logger = logging.getLogger("searchcans_async")

ACCOUNT_PATH: Final = "/api/user/key"
BASE_URL_ENV_VAR: Final = "SEARCHCANS_BASE_URL"
_TIMEOUT_MARGIN: Final = 5.0  # seconds the client waits beyond the server's own deadline


class Client:
    """The API client: ``account()``, ``search()``, ``read()`` and ``send()``.

    Users create :class:`~searchcans_async.SearchCans`, which is this client plus
    ``lanes()`` (a pool on its account); the lanes layer adds it, so that this layer needs
    nothing from the one above. The constructor's options are documented there.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        session: Session | None = None,
        timeout: float = 35.0,
        retry: RetryPolicy | None = None,
        costs: Costs | None = None,
        clock: Clock | None = None,
        on_event: EventHook | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_insecure_http: bool = False,
        trust_env: bool = False,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._transport = Transport(
            secret=Secret.resolve(api_key),
            base_url=base_url or os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL,
            session=session,
            max_body_bytes=max_body_bytes,
            allow_insecure_http=allow_insecure_http,
            trust_env=trust_env,
        )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.costs = costs or Costs()
        self.clock: Clock = clock or LoopClock()
        self.emit = Emitter(on_event)
        self._rng = random.Random()  # jitter only

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The service's address, without a trailing slash."""
        return self._transport.base_url

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._transport.closed

    @property
    def settle_grace(self) -> float:
        """Seconds after which the server has finished any call this client gave up on.

        The attempt timeout plus 5 s: a lane pool waits that long before it settles what
        such a call may have cost.

        Example:
            >>> Client("key", timeout=35.0).settle_grace
            40.0
        """
        return self.timeout + _TIMEOUT_MARGIN

    async def aclose(self) -> None:
        """Close the client's own HTTP session (a lent session stays open). Idempotent."""
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.has_open_session and not sys.is_finalizing():
            _warn(
                f"unclosed {self!r}: use 'async with {type(self).__name__}(...)' or "
                "'await client.aclose()'",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.base_url} {state}>"

    # -- endpoints ---------------------------------------------------------------------

    async def account(
        self, *, retry: RetryPolicy | None = None, timeout: float | None = None
    ) -> Account:
        """Read the account: credits left, Parallel Lanes, and every API key's quota.

        Costs no credits.

        Example:
            >>> account = await client.account()  # doctest: +SKIP
            >>> account.remain, account.concurrent, account.spendable()  # doctest: +SKIP
            (1098, 1, 1098)
        """
        envelope = await self._call(
            "account", ACCOUNT_PATH, {}, cost=0, server_wait=0.0, retry=retry, timeout=timeout
        )
        return parse_account(envelope.data)

    async def search(
        self,
        query: str,
        engine: str = "google",
        *,
        country: str | None = None,
        language: str | None = None,
        page: int | None = None,
        pages: int | None = None,
        server_timeout: float | None = None,
        wait: float | None = None,
        html: bool = False,
        knowledge_graph: bool = False,
        people_also_ask: bool = False,
        ai_summary: bool = False,
        news_aggregation: bool = False,
        video_aggregation: bool = False,
        people_also_search_for: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> SearchResult:
        """Run a SERP query.

        Args:
            query: What to search for.
            engine: ``google`` (default), ``bing``, ``google_news``, ``google_shopping``,
                ``google_images``, ``google_videos`` or ``google_short_videos``.
            country: Country code to search from, e.g. ``"us"``.
            language: Result language, e.g. ``"en"``.
            page: Fetch this one page (1 credit).
            pages: Fetch pages 1..N in one call (N > 1: Google only; N credits).
            server_timeout: Seconds the server may spend (its ``d``; 10 s by default,
                20 s advised for heavy queries).
            wait: Seconds the server waits for the page (its ``w``).
            html: Also return the page's HTML.
            knowledge_graph: Ask for the knowledge-graph block.
            people_also_ask: Ask for the "People also ask" block.
            ai_summary: Ask for the AI summary block.
            news_aggregation: Ask for aggregated news results.
            video_aggregation: Ask for aggregated video results.
            people_also_search_for: Ask for the "People also search for" block.
            retry: This call's retry policy (default: the client's).
            timeout: Seconds one attempt may take (default: the client's).

        Returns:
            The result; ``result.no_results`` is ``True`` (and nothing is charged by
            default) when the API found nothing.

        Raises:
            ValueError: An invalid option; nothing was sent.
            SearchCansError: The call failed; see the error's ``charged`` flag.

        Example:
            >>> result = await client.search("python asyncio", pages=2)  # doctest: +SKIP
            >>> [hit.link for hit in result.organic][:3]  # doctest: +SKIP
        """
        request = SearchRequest(
            query=query,
            engine=engine,
            country=country,
            language=language,
            page=page,
            pages=pages,
            server_timeout=server_timeout,
            wait=wait,
            html=html,
            knowledge_graph=knowledge_graph,
            people_also_ask=people_also_ask,
            ai_summary=ai_summary,
            news_aggregation=news_aggregation,
            video_aggregation=video_aggregation,
            people_also_search_for=people_also_search_for,
        )
        return await self.send(request, retry=retry, timeout=timeout)

    async def read(
        self,
        url: str,
        *,
        proxy: Literal[0, 1, 2, 3] = 0,
        browser: bool = False,
        wait: float | None = None,
        server_timeout: float | None = None,
        html: bool = False,
        captcha: bool = False,
        file: bool = False,
        image: Literal[0, 1, 2] = 0,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> ReaderPage:
        """Read a URL as markdown with the Reader API.

        Args:
            url: An absolute http(s) URL.
            proxy: Proxy tier 0 (direct, 2 credits), 1 (+2), 2 (+5) or 3 (+10).
            browser: Render JavaScript in a browser first (the API's ``mode: 1``).
            wait: Seconds to wait after rendering (needs ``browser=True``).
            server_timeout: Seconds the server may spend (its ``d``).
            html: Also return the page's HTML.
            captcha: Let the service solve captchas.
            file: Read a PDF or Office file.
            image: 1 for a viewport screenshot, 2 for a full-page one.
            retry: This call's retry policy (default: the client's).
            timeout: Seconds one attempt may take (default: the client's).

        Returns:
            The page; ``page.no_results`` is ``True`` (the page empty, and nothing charged
            by default) when the API answered "no results".

        Raises:
            ValueError: An invalid option (e.g. ``proxy=5``, ``wait`` without browser).
            SearchCansError: The call failed; see the error's ``charged`` flag.

        Example:
            >>> page = await client.read("https://example.com", proxy=1)  # doctest: +SKIP
            >>> page.title, page.credits  # doctest: +SKIP
            ('Example Domain', 4)
        """
        request = ReadRequest(
            url=url,
            proxy=proxy,
            browser=browser,
            wait=wait,
            server_timeout=server_timeout,
            html=html,
            captcha=captcha,
            file=file,
            image=image,
        )
        return await self.send(request, retry=retry, timeout=timeout)

    @overload
    async def send(
        self,
        request: SearchRequest,
        *,
        retry: RetryPolicy | None = ...,
        timeout: float | None = ...,
    ) -> SearchResult: ...

    @overload
    async def send(
        self, request: ReadRequest, *, retry: RetryPolicy | None = ..., timeout: float | None = ...
    ) -> ReaderPage: ...

    async def send(
        self,
        request: SearchRequest | ReadRequest,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> SearchResult | ReaderPage:
        """Send a prepared request (what ``search()`` and ``read()`` do); for batch runners."""
        cost = request.cost(self.costs)
        envelope = await self._call(
            "search" if isinstance(request, SearchRequest) else "read",
            request.path,
            request.body(),
            cost=cost,
            server_wait=request.server_wait,
            retry=retry,
            timeout=timeout,
        )
        if envelope.code in NO_RESULTS_CODES:  # an empty result, not an error
            credits = cost if self.costs.no_results_charged else 0
            if isinstance(request, SearchRequest):
                return SearchResult(
                    query=request.query,
                    engine=request.engine,
                    no_results=True,
                    credits=credits,
                    request_id=envelope.request_id,
                    raw=envelope.data,
                )
            return ReaderPage(
                url=request.url,
                no_results=True,
                credits=credits,
                request_id=envelope.request_id,
                raw=envelope.data,
            )
        if isinstance(request, SearchRequest):
            return parse_search(
                envelope.data,
                query=request.query,
                engine=request.engine,
                credits=cost,
                request_id=envelope.request_id,
            )
        return parse_page(
            envelope.data, url=request.url, credits=cost, request_id=envelope.request_id
        )

    # -- the one request path ------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        path: str,
        body: dict[str, Any],
        *,
        cost: int,
        server_wait: float,
        retry: RetryPolicy | None,
        timeout: float | None,
    ) -> Envelope:
        """Send until an answer, metering each attempt in the caller's lane; the retry loop.

        Every decision (retry or not, how long to wait, whether the deadline allows another
        whole attempt) is the policy's; this loop sends, meters and reports. It is one
        coroutine between ``send`` and the transport: each level of coroutines is resumed on
        every I/O step (about 0.2 us a call a level, measured with two steps).
        """
        # Before any lane covers a cost: a closed client sends nothing, so charges nothing.
        self._transport.ensure_open()
        policy = retry or self.retry
        min_attempt = server_wait + _TIMEOUT_MARGIN  # never give up while the server works
        policy.check_deadline(min_attempt, endpoint)
        attempt_timeout = max(timeout or self.timeout, min_attempt)
        deadline = policy.deadline
        lane = current_lane.get() if cost else None
        clock = self.clock
        started = clock.now()
        number = 0
        while True:
            number += 1
            if lane is not None and not lane.cover_nowait(cost):
                await lane.cover(cost)
            # The deadline may shorten a generous client timeout, never the server's wait.
            budget = attempt_timeout
            if deadline is not None:
                left = deadline if number == 1 else deadline - (clock.now() - started)
                budget = max(min_attempt, min(attempt_timeout, left))
            attempt_started = clock.now() if self.emit else 0.0
            try:
                envelope = await self._transport.post(path, body, timeout=budget)
            except SearchCansError as error:
                if lane is not None:
                    lane.settle(cost, error.charged)
                    if isinstance(error, LaneBusyError):
                        lane.lane_busy()
                self._finished(endpoint, number, error, attempt_started, 0)
                wait = policy.next_wait(
                    error,
                    number,
                    elapsed=clock.now() - started,
                    min_attempt=min_attempt,
                    rng=self._rng,
                )
                if wait is None:
                    raise
                self._retrying(endpoint, error, number, wait, policy)
                await clock.sleep(wait)
                continue
            except BaseException:
                if lane is not None:  # cancelled mid-flight: the server may have served it
                    lane.settle(cost, None)
                raise
            charged = envelope.code == 0 or self.costs.no_results_charged
            if lane is not None:
                lane.settle(cost, charged)
            if self.emit:
                self._finished(endpoint, number, envelope, attempt_started, cost if charged else 0)
            return envelope

    def _retrying(
        self, endpoint: str, error: SearchCansError, number: int, wait: float, policy: RetryPolicy
    ) -> None:
        reason = type(error).__name__
        logger.debug(
            "retrying %s after %s (attempt %d of %d) in %.3fs",
            endpoint,
            reason,
            number,
            policy.attempts,
            wait,
        )
        if self.emit:
            self.emit(RetryScheduled(endpoint=endpoint, attempt=number, delay=wait, reason=reason))

    def _finished(
        self,
        endpoint: str,
        number: int,
        result: Envelope | SearchCansError,
        started: float,
        credits: int,
    ) -> None:
        if not self.emit:
            return
        if isinstance(result, SearchCansError):
            outcome, status, code = type(result).__name__, result.http_status, result.code
        else:
            outcome = "ok" if result.code == 0 else "no_results"
            status, code = result.http_status, result.code
        self.emit(
            CallFinished(
                endpoint=endpoint,
                attempt=number,
                outcome=outcome,
                http_status=status,
                code=code,
                credits=credits,
                elapsed=self.clock.now() - started,
            )
        )
