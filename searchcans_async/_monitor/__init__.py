"""Watching an account: the live watch and its Prometheus metrics.

The public face is ``searchcans_async.monitor``. The names below are what the layers above
use; they import them from here. The Prometheus side needs the ``monitor`` extra, so it is
imported from ``_monitor.prometheus`` where it is used (the one exception).
"""

from .watch import AccountObserver, AccountReading, AccountWatch, CreditWarning, format_duration

__all__ = ["AccountObserver", "AccountReading", "AccountWatch", "CreditWarning", "format_duration"]
