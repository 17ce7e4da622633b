"""The emulator's HTTP side: one aiohttp handler that authenticates, admits, bills and answers."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ._config import EmulatorCosts, Latency, WireOptions, derived_random, digest
from ._faults import Fault, FaultPlan, Faults
from ._requests import BadRequestError, ReaderQuery, SearchQuery, parse_reader, parse_search
from ._responses import (
    FAULT_MESSAGES,
    Call,
    deliver_damaged,
    drop,
    refusal_fault,
    reply,
    sleep,
)
from ._results import account_data, legacy_search_data, reader_data, search_data
from ._state import AccountState, KeyState, RequestRecord

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Mapping

__all__ = ["Service"]

ENDPOINT_BY_PATH: Final = {
    "/api/user/key": "account",
    "/api/v1/search": "search",
    "/api/v1/url": "url",
    "/api/search": "search",
    "/api/url": "url",
}
_UNKNOWN_KEY: Final = "missing or unknown API key: send Authorization: Bearer <key>"


class Service:
    """The emulator's live state and its request handler (internal; `Emulator` wraps it)."""

    def __init__(
        self,
        accounts: list[AccountState],
        keys: Mapping[str, KeyState],
        *,
        seed: int,
        latency: Latency,
        faults: Faults | None,
        costs: EmulatorCosts,
        no_results: Collection[str],
        legacy_search_shape: bool,
        log_limit: int | None,
        wire: WireOptions,
    ) -> None:
        self.accounts = accounts
        self.keys = keys
        self.seed = seed
        self.latency = latency
        self.costs = costs
        self.no_results = frozenset(no_results)
        self.legacy_search_shape = legacy_search_shape
        self.wire = wire
        self.log: deque[RequestRecord] = deque(maxlen=log_limit)
        self._ordinal = 0
        self._sequence = 0
        self._fault_generation = 0
        self._plan = FaultPlan(faults, seed=seed, generation=0)
        self._gate: asyncio.Event | None = None

    def pause(self) -> None:
        """Hold admitted requests in their lanes until `resume` (a testing switch)."""
        if self._gate is None:
            self._gate = asyncio.Event()

    def resume(self) -> None:
        """Release the requests held by `pause`."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def install_faults(self, faults: Faults | None) -> None:
        """Replace the faults; script ordinals count again from 1."""
        self._fault_generation += 1
        self._plan = FaultPlan(faults, seed=self.seed, generation=self._fault_generation)

    def make_app(self) -> web.Application:
        """A fresh `aiohttp.web.Application` answering the API's paths from this state."""
        app = web.Application()
        for path in ENDPOINT_BY_PATH:
            app.router.add_post(path, self._handler_for(path))
        return app

    def _handler_for(self, path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        # One handler per API path, so the app answers the same when mounted under a prefix.
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, path)

        return handler

    def _tick(self) -> int:
        self._sequence += 1
        return self._sequence

    def _key_from(self, authorization: str | None) -> KeyState | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.keys.get(token.strip())

    async def handle(self, request: web.Request, path: str) -> web.StreamResponse:
        """Answer one request to the API path `path` (e.g. `/api/v1/search`)."""
        self._ordinal += 1
        endpoint = ENDPOINT_BY_PATH[path]
        call = Call(
            self._ordinal,
            endpoint,
            path,
            self._key_from(request.headers.get("Authorization")),
        )
        account = call.account or self.accounts[0]
        if endpoint == "account":
            account.account_calls += 1
        else:
            account.requests += 1
        call.started = self._tick()
        call.request_id = (
            f"emu-{digest('request', self.seed, call.ordinal).hex()[:12]}-{call.ordinal}"
        )
        if self.wire.request_ids:
            call.wire_id = call.request_id
        call.planned = self._plan.next_fault(endpoint)
        try:
            return await self._process(request, call)
        finally:
            self._finish(call, account)

    def _finish(self, call: Call, account: AccountState) -> None:
        status, code = call.http_status, call.code
        if status is not None and not (status == 200 and code == 0):
            account.refusals[code if code not in (None, 0) else status] += 1
        body = call.body
        self.log.append(
            RequestRecord(
                ordinal=call.ordinal,
                endpoint=call.endpoint,
                path=call.path,
                account=call.account.name if call.account is not None else None,
                key_name=call.key.name if call.key is not None else None,
                subject=call.subject,
                body=dict(body) if body is not None else None,
                http_status=status,
                code=code,
                credits_charged=call.charged,
                fault=call.fault,
                request_id=call.request_id,
                latency=call.latency,
                started=call.started,
                finished=self._tick(),
            )
        )

    def _inject(self, call: Call, fault: Fault) -> None:
        call.fault = fault.kind
        (call.account or self.accounts[0]).faults[fault.kind] += 1

    async def _read_body(self, request: web.Request, call: Call) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return None
        if isinstance(body, dict):
            call.body = body
            subject = body.get("s")
            call.subject = subject if isinstance(subject, str) else None
        return body

    def _draw_latency(self, call: Call) -> float:
        latency = self.latency.for_endpoint(call.endpoint)
        rng = derived_random(self.seed, "latency", call.ordinal) if latency.is_random else None
        return latency.draw(rng)

    async def _process(self, request: web.Request, call: Call) -> web.StreamResponse:
        planned = call.planned
        if planned is not None and planned.kind == "reset_before":
            self._inject(call, planned)
            return drop(request)
        body = await self._read_body(request, call)
        key = call.key
        if key is None:
            return reply(call, 401, 401, _UNKNOWN_KEY)
        refusal = self._refuse_early(call, key, planned)
        if refusal is not None:
            return refusal
        if call.endpoint == "account":
            call.latency = self._draw_latency(call)
            await sleep(call.latency)
            data = account_data(
                key.account,
                key,
                seed=self.seed,
                key_suffix=self.wire.key_suffix,
                counters=self.wire.counters,
            )
            return await self._success(request, call, data)
        try:
            query, cost = self._parse(call.endpoint, body)
        except BadRequestError as error:
            return reply(call, 400, 400, str(error))
        return await self._billable(request, call, key, query, cost)

    def _refuse_early(
        self, call: Call, key: KeyState, planned: Fault | None
    ) -> web.Response | None:
        """The answers given before any work: an inactive key, then the uncharged faults."""
        if not key.active:
            return reply(call, 403, 403, "this API key is inactive")
        if planned is not None and not planned.charged:
            self._inject(call, planned)
            return refusal_fault(call, planned, empty=self._empty())
        return None

    def _parse(self, endpoint: str, body: Any) -> tuple[SearchQuery | ReaderQuery, int]:
        """Validate a billable body and price it; raises `BadRequestError`."""
        if not isinstance(body, dict):
            raise BadRequestError("body: must be a JSON object")
        if endpoint == "search":
            search = parse_search(body, deep_pages=self.wire.deep_pages)
            return search, self.costs.search(len(search.pages))
        reader = parse_reader(body)
        cost = self.costs.reader(
            proxy=reader.proxy,
            mode=reader.mode,
            captcha=reader.captcha,
            file=reader.file,
            image=bool(reader.image),
        )
        return reader, cost

    async def _billable(
        self,
        request: web.Request,
        call: Call,
        key: KeyState,
        query: SearchQuery | ReaderQuery,
        cost: int,
    ) -> web.StreamResponse:
        account = key.account
        if not account.try_admit():
            return reply(call, 200, 1010, FAULT_MESSAGES["lane_busy"])
        try:
            if not account.fits(cost, key):
                return self._insufficient(call, key, cost)
            call.latency = self._draw_latency(call) + query.wait_ms / 1000
            deadline = query.timeout_ms / 1000
            if call.latency > deadline:
                await sleep(deadline)
                return reply(call, 200, 1001, f"server-side timeout after d={query.timeout_ms} ms")
            await sleep(call.latency)
            while self._gate is not None:
                await self._gate.wait()
            if call.subject in self.no_results:
                if self.costs.no_results_charged and account.fits(cost, key):
                    account.charge(cost, key, call.subject, success=False)
                    call.charged = cost
                return reply(call, 200, 9999, "no results", self._empty())
            if not account.fits(cost, key):
                # Another request or consumer spent the credits while this one ran.
                return self._insufficient(call, key, cost)
            account.charge(cost, key, call.subject)
            call.charged = cost
            data = self._data(query, call.path)
        finally:
            # Free the lane before a single byte of the answer goes out: a client that reads
            # the answer and sends its next request at once must find the lane free.
            account.release()
        return await self._success(request, call, data)

    def _insufficient(self, call: Call, key: KeyState, cost: int) -> web.Response:
        account = key.account
        message = f"insufficient credits: this call costs {cost}, the account has {account.remain}"
        if key.quota is not None:
            message += f" and this key's own quota has {key.own_remain}"
        return reply(call, 402, 402, message)

    def _empty(self) -> Any:
        """The `data` of a "no results" answer: `[]` or `{}` (both seen from the service)."""
        return {} if self.wire.no_results_data == "object" else []

    def _data(self, query: SearchQuery | ReaderQuery, path: str) -> Any:
        if isinstance(query, ReaderQuery):
            return reader_data(query)
        # The v0 path answers the documented v0 list; the option puts it on v1 as well.
        if self.legacy_search_shape or path == "/api/search":
            return legacy_search_data(query)
        return search_data(query)

    async def _success(self, request: web.Request, call: Call, data: Any) -> web.StreamResponse:
        fault = call.planned
        if fault is None or not fault.charged:
            return reply(call, 200, 0, "success", data)
        self._inject(call, fault)
        return await deliver_damaged(request, call, fault, data)
