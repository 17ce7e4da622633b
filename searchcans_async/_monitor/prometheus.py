"""Prometheus metrics for the client, a lane pool and the account (the ``monitor`` extra).

Why one module: every metric and the collector that fills it are declared together, so what
is exported reads in one place.

Built on prometheus-client, the reference Python client: its exposition (text and
OpenMetrics, content negotiation, gzip) and HTTP server are maintained with the format,
so nothing here writes the format by hand. It is imported only through
``searchcans_async.monitor``, which says which extra to install when it is missing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import TYPE_CHECKING, Any, Final, Self

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .._events import (
    BudgetRebased,
    CallFinished,
    ItemFinished,
    LanesResized,
    RetryScheduled,
    Stopped,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from .._client import Account
    from .._events import Event
    from .._lanes import LanePool, PoolStatistics

__all__ = ["DEFAULT_BUCKETS", "KNOWN_CODES", "MetricsServer", "PrometheusMetrics"]

logger = logging.getLogger("searchcans_async")

#: Call latency buckets (seconds): a SERP call takes about a second, a Reader call with a
#: browser and a wait up to the 35 s client timeout.
DEFAULT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

#: The envelope codes and HTTP statuses the API documents; any other becomes ``"other"``
#: in the ``code`` label, so an odd server cannot grow the number of series.
KNOWN_CODES: Final = frozenset(
    {0, 9999, -9999, 1010, 1001, -1001, 1002, 1003, 1004, 1005, 1006, 1009, 443, 10054}
    | {400, 401, 402, 403, -2008, 429, 500, 502, 503, 504}
)

_DEFAULT_MAX_KEYS: Final = 20
_SCRAPE_TIMEOUT: Final = 5.0  # seconds a scrape waits for the event loop to read the pool


def code_label(code: int | None, http_status: int | None) -> str:
    """The ``code`` label of a call: the envelope code, else the HTTP status, else none.

    Example:
        >>> code_label(1010, 200), code_label(None, 502), code_label(None, None)
        ('1010', '502', 'none')
        >>> code_label(7777, 200)
        'other'
    """
    value = code if code is not None else http_status
    if value is None:
        return "none"
    return str(value) if value in KNOWN_CODES else "other"


@attrs.frozen
class _AccountState:
    """What the last account reading said (``None``: not known yet)."""

    remain: int
    checked: float
    month: int | None = None
    permanent_remain: int | None = None
    lanes: int | None = None
    keys: tuple[tuple[str, int, int], ...] = ()  # (label, quota, remain), own quotas only


def _key_labels(account: Account, limit: int) -> tuple[tuple[str, int, int], ...]:
    """Per-key quota gauges' values, labelled by key name (the id when names clash)."""
    capped = [key for key in account.keys if key.has_own_quota]
    if len(capped) > limit:
        logger.warning(
            "the account has %d keys with their own quota; only the first %d get gauges "
            "(raise max_keys to see more)",
            len(capped),
            limit,
        )
        capped = capped[:limit]
    names = [key.name for key in capped]
    return tuple(
        (
            key.name if key.name and names.count(key.name) == 1 else key.id or key.name,
            key.total,
            max(0, key.remain),
        )
        for key in capped
    )


class _StateCollector(Collector):
    """The gauges of state, built at scrape time: the account's and the pool's."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families(None, None))

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        return list(self._families(metrics._account, metrics._pool_statistics()))

    @staticmethod
    def _families(
        account: _AccountState | None, pool: PoolStatistics | None
    ) -> Iterator[GaugeMetricFamily]:
        def gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation, labels=[])
            if value is not None:
                family.add_metric([], value)
            return family

        def known(field: str) -> Any:
            return None if account is None else getattr(account, field)

        yield gauge(
            "searchcans_account_remain_credits",
            "Credits left on the account (remain), permanent credits included.",
            known("remain"),
        )
        yield gauge(
            "searchcans_account_month_credits",
            "Credits consumed this calendar month (month).",
            known("month"),
        )
        yield gauge(
            "searchcans_account_permanent_remain_credits",
            "Non-expiring bonus credits left (permanentRemain), spent first.",
            known("permanent_remain"),
        )
        yield gauge(
            "searchcans_account_lanes",
            "Parallel Lanes of the account (concurrent).",
            known("lanes"),
        )
        yield gauge(
            "searchcans_account_last_check_timestamp_seconds",
            "Unix time of the last successful account reading.",
            known("checked"),
        )
        quota = GaugeMetricFamily(
            "searchcans_key_quota_credits",
            "Own credit quota of an API key (keys drawing on the account are left out).",
            labels=["key"],
        )
        left = GaugeMetricFamily(
            "searchcans_key_remain_credits",
            "Credits left of an API key's own quota.",
            labels=["key"],
        )
        for label, total, remain in known("keys") or ():
            quota.add_metric([label], total)
            left.add_metric([label], remain)
        yield quota
        yield left
        for name, documentation, field in (
            ("searchcans_pool_lanes", "Lanes the pool may use now.", "lanes"),
            ("searchcans_pool_lanes_busy", "Lanes held by running work.", "in_flight"),
            ("searchcans_pool_waiting", "Callers waiting for a lane.", "waiting"),
            ("searchcans_pool_reserved_credits", "Credits reserved by work in flight.", "reserved"),
            (
                "searchcans_pool_committed_credits",
                "Credits spent by the pool's work that succeeded.",
                "committed",
            ),
            (
                "searchcans_pool_possibly_charged_credits",
                "Credits of failures that may have been billed, until an account check.",
                "possibly_charged",
            ),
            (
                "searchcans_pool_budget_left_credits",
                "Credits new work may still reserve.",
                "budget_left",
            ),
        ):
            yield gauge(name, documentation, None if pool is None else getattr(pool, field))


class PrometheusMetrics:
    """Prometheus metrics for SearchCans: an ``on_event`` hook plus account and pool gauges.

    Pass it as ``SearchCans(on_event=metrics)`` (the client's pools inherit it) to count
    calls, retries, items and stops and to time calls; feed it accounts with
    :meth:`observe_account` (an :class:`~searchcans_async.monitor.AccountWatch` does)
    and a pool with :meth:`observe_pool`, whose figures are read at scrape time.

    Labels stay few and bounded: ``endpoint`` (``account``, ``search``, ``read``),
    ``outcome`` (``ok``, ``no_results`` or an error class name), ``code`` (a documented
    API code or HTTP status, else ``other`` or ``none``), ``reason`` and, for per-key
    quota gauges, ``key``: the key's *name* (its id when names clash), only for keys
    with their own quota, at most ``max_keys`` of them. Never a query, a URL or a key.

    A gauge that is not known yet (no account read, no pool observed) has no sample, so
    an alert on ``searchcans_account_remain_credits < 100`` never fires on a missing 0.

    Args:
        registry: Where the metrics are registered; default: a new registry of their own
            (pass ``prometheus_client.REGISTRY`` to join the process's default one).
        buckets: Call latency histogram buckets, in seconds.
        max_keys: Most API keys given per-key quota gauges (0: none).

    Example:
        >>> metrics = PrometheusMetrics()
        >>> metrics(CallFinished("search", 1, "ok", 200, 0, credits=1, elapsed=0.8))
        >>> metrics.registry.get_sample_value(
        ...     "searchcans_calls_total", {"endpoint": "search", "outcome": "ok", "code": "0"})
        1.0
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        max_keys: int = _DEFAULT_MAX_KEYS,
    ) -> None:
        if max_keys < 0:
            raise ValueError(f"max_keys must be >= 0, got {max_keys}")
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_keys = max_keys
        self._account: _AccountState | None = None
        self._pool: Callable[[], PoolStatistics] | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        registry = self.registry
        self._calls = Counter(
            "searchcans_calls",
            "HTTP attempts to the API, by endpoint, outcome and API code.",
            ["endpoint", "outcome", "code"],
            registry=registry,
        )
        self._duration = Histogram(
            "searchcans_call_duration_seconds",
            "Seconds an HTTP attempt to the API took.",
            ["endpoint"],
            buckets=tuple(buckets),
            registry=registry,
        )
        self._charged = Counter(
            "searchcans_charged_credits",
            "Credits charged by successful calls, as the client counts them.",
            ["endpoint"],
            registry=registry,
        )
        self._retries = Counter(
            "searchcans_retries",
            "Retries scheduled, by endpoint and the error class that caused them.",
            ["endpoint", "reason"],
            registry=registry,
        )
        self._items = Counter(
            "searchcans_pool_items",
            "Units of pool work finished, by outcome (succeeded, failed, cancelled).",
            ["outcome"],
            registry=registry,
        )
        self._resizes = Counter(
            "searchcans_pool_resizes",
            "Changes of a pool's usable lanes, by reason (plan, lane_busy, recovered).",
            ["reason"],
            registry=registry,
        )
        self._stops = Counter(
            "searchcans_batch_stops",
            "Batches ended, by stop reason (completed, budget, billing, auth, ...).",
            ["reason"],
            registry=registry,
        )
        registry.register(_StateCollector(self))
        self._children: dict[tuple[object, ...], Any] = {}
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            CallFinished: self._call_finished,
            RetryScheduled: self._retry_scheduled,
            ItemFinished: self._item_finished,
            LanesResized: self._lanes_resized,
            Stopped: self._stopped,
            BudgetRebased: self._budget_rebased,
        }

    def __repr__(self) -> str:
        remain = "?" if self._account is None else str(self._account.remain)
        pool = "yes" if self._pool is not None else "no"
        return f"<PrometheusMetrics remain={remain} pool={pool}>"

    # -- the on_event hook ------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Count ``event`` (the ``on_event`` hook)."""
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        # labels() costs a lock and a dict lookup each time; a call should not.
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _call_finished(self, event: CallFinished) -> None:
        code = code_label(event.code, event.http_status)
        self._child(self._calls, event.endpoint, event.outcome, code).inc()
        self._child(self._duration, event.endpoint).observe(max(0.0, event.elapsed))
        if event.credits:
            self._child(self._charged, event.endpoint).inc(event.credits)

    def _retry_scheduled(self, event: RetryScheduled) -> None:
        self._child(self._retries, event.endpoint, event.reason).inc()

    def _item_finished(self, event: ItemFinished) -> None:
        self._child(self._items, event.outcome).inc()

    def _lanes_resized(self, event: LanesResized) -> None:
        self._child(self._resizes, event.reason).inc()

    def _stopped(self, event: Stopped) -> None:
        self._child(self._stops, event.reason).inc()

    def _budget_rebased(self, event: BudgetRebased) -> None:
        # A pool's account check: fresh remain for free (the other fields stay as they were).
        state = self._account
        if state is None:
            self._account = _AccountState(remain=event.remain, checked=time.time())
        else:
            self._account = attrs.evolve(state, remain=event.remain, checked=time.time())

    # -- state ------------------------------------------------------------------------------

    def observe_account(self, account: Account) -> None:
        """Set the account gauges from ``account``: remain, month, lanes, key quotas."""
        self._account = _AccountState(
            remain=account.remain,
            checked=time.time(),
            month=account.month,
            permanent_remain=account.permanent_remain,
            lanes=account.concurrent,
            keys=_key_labels(account, self.max_keys),
        )

    def observe_pool(self, pool: LanePool | None) -> None:
        """Read ``pool.statistics()`` at each scrape for the pool gauges (``None``: stop).

        Call it from the pool's event loop: a scrape from another thread (the metrics
        server's) asks that loop for the figures instead of reading them mid-update.
        """
        self._pool = None if pool is None else pool.statistics
        try:
            self._pool_loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pool_loop = None

    def _pool_statistics(self) -> PoolStatistics | None:
        source, loop = self._pool, self._pool_loop
        if source is None:
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed() or not loop.is_running():
            return source()
        answer: concurrent.futures.Future[PoolStatistics] = concurrent.futures.Future()

        def read() -> None:
            if answer.set_running_or_notify_cancel():
                try:
                    answer.set_result(source())
                except Exception as error:  # noqa: BLE001  # handed to the scraping thread
                    answer.set_exception(error)

        try:
            loop.call_soon_threadsafe(read)
            return answer.result(timeout=_SCRAPE_TIMEOUT)
        except RuntimeError:  # the loop closed meanwhile: nothing changes the pool now
            return source()
        except concurrent.futures.TimeoutError:
            answer.cancel()
            logger.warning("the event loop did not answer a scrape in time; pool gauges skipped")
            return None


class MetricsServer:
    """Serves ``/metrics`` over HTTP (prometheus-client's own server, in a thread).

    Binds ``127.0.0.1`` unless told otherwise: the metrics describe your account, so
    exposing them beyond the machine is a choice to make explicitly.

    Args:
        metrics: The metrics to serve, or a prometheus-client registry.
        port: The TCP port; 0 picks a free one (see :attr:`port`).
        host: The address to bind.

    Example:
        >>> async with MetricsServer(metrics, 9464) as server:  # doctest: +SKIP
        ...     print("scrape", server.url)
    """

    def __init__(
        self, metrics: PrometheusMetrics | CollectorRegistry, port: int, *, host: str = "127.0.0.1"
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self.registry = metrics.registry if isinstance(metrics, PrometheusMetrics) else metrics
        self.host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound (the requested one until started)."""
        server = self._server
        return int(server.server_port) if server is not None else self._requested_port

    @property
    def url(self) -> str:
        """Where to scrape, e.g. ``http://127.0.0.1:9464/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def start(self) -> None:
        """Bind and start serving (``async with`` does this).

        Raises:
            OSError: The address cannot be bound (e.g. the port is in use).
        """
        if self._server is not None:
            raise RuntimeError("this MetricsServer is already serving")
        self._server, self._thread = await asyncio.to_thread(
            start_http_server, self._requested_port, self.host, self.registry
        )
        logger.info("serving metrics on %s", self.url)

    async def aclose(self) -> None:
        """Stop serving and release the port. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join)
        self._server = self._thread = None

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

    def __repr__(self) -> str:
        state = "serving" if self._server is not None else "stopped"
        return f"<MetricsServer {self.url} {state}>"
