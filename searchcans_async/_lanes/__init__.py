"""The lane pool: lanes held, credits reserved and settled, batches, reports; SearchCans.

The public face is ``searchcans_async``. The names below are what the layers above use;
they import them from here, never from this package's modules.
"""

from .backend import CreditState, LaneBackend, LocalBackend, Permit
from .batch import Batch
from .client import SearchCans
from .pool import LanePool
from .report import BatchReport, Outcome, PoolStatistics, StopReason

__all__ = [
    "Batch",
    "BatchReport",
    "CreditState",
    "LaneBackend",
    "LanePool",
    "LocalBackend",
    "Outcome",
    "Permit",
    "PoolStatistics",
    "SearchCans",
    "StopReason",
]
