"""Monitoring: Prometheus metrics, an account watch, and the pieces the ``monitor`` command uses.

* :class:`AccountWatch` reads the account every N seconds (one request in flight at most,
  backing off on errors), follows the burn rate and warns when credits run low or would
  run out soon. It needs nothing beyond the core package.
* :class:`PrometheusMetrics` is an ``on_event`` hook that counts calls, retries and items,
  times calls, and exposes the account's and a pool's figures as gauges;
  :class:`MetricsServer` serves them on ``/metrics``. Both need the ``monitor`` extra
  (``pip install 'searchcans-async[monitor]'``, i.e. prometheus-client), imported only
  when one of them is used.

Example:
    >>> from searchcans_async import SearchCans
    >>> from searchcans_async.monitor import AccountWatch, MetricsServer, PrometheusMetrics
    >>> async def main():  # doctest: +SKIP
    ...     metrics = PrometheusMetrics()
    ...     async with SearchCans(on_event=metrics) as client, MetricsServer(metrics, 9464):
    ...         watch = AccountWatch(client.account, interval=30, metrics=metrics,
    ...                              warn_below=1_000, warn_runout=3_600)
    ...         await watch.run()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._events import fan_out
from ._monitor import AccountObserver, AccountReading, AccountWatch, CreditWarning

if TYPE_CHECKING:
    from ._monitor.prometheus import MetricsServer, PrometheusMetrics

__all__ = [
    "AccountObserver",
    "AccountReading",
    "AccountWatch",
    "CreditWarning",
    "MetricsServer",
    "PrometheusMetrics",
    "fan_out",
]

_NEEDS_PROMETHEUS = frozenset({"MetricsServer", "PrometheusMetrics"})


def __getattr__(name: str) -> Any:
    """Import the Prometheus pieces on first use, naming the extra when it is missing."""
    if name not in _NEEDS_PROMETHEUS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from ._monitor import prometheus as _prometheus  # noqa: PLC0415  # prometheus-client is an optional extra
    except ImportError as error:
        if not (error.name or "").startswith("prometheus_client"):
            raise
        raise ImportError(
            f"searchcans_async.monitor.{name} needs prometheus-client, which is not "
            "installed: pip install 'searchcans-async[monitor]'",
            name=error.name,
        ) from None
    return getattr(_prometheus, name)
