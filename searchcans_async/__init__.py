"""searchcans_async: the asyncio client for the SearchCans SERP and Reader API.

Example:
    >>> import asyncio
    >>> from searchcans_async import SearchCans
    >>> async def main():
    ...     async with SearchCans() as client:           # key from SEARCHCANS_API_KEY
    ...         account = await client.account()
    ...         async with client.lanes(budget=100) as pool:
    ...             report = await pool.run_batch(client.search, ["asyncio", "aiohttp"])
    ...         print(report.summary())
"""

from __future__ import annotations

import logging

from ._client.client import SearchCans
from ._client.costs import Costs
from ._client.errors import (
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    CreditsExhausted,
    DeadlineTooShortError,
    InsufficientCreditsError,
    LaneBusyError,
    LeaseExpiredError,
    NoLanesError,
    RateLimitedError,
    ResponseFormatError,
    SearchCansError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from ._client.models import (
    Account,
    ApiKey,
    ImageResult,
    NewsResult,
    NewsSource,
    OrganicResult,
    ReaderPage,
    SearchResult,
    ShoppingResult,
    ShortVideoResult,
    VideoResult,
)
from ._client.retry import RetryPolicy
from ._lanes.batch import Batch
from ._lanes.pool import LanePool, PoolStatistics
from ._lanes.report import BatchReport, Outcome, StopReason
from ._version import __version__

# A library logs through `logging.getLogger("searchcans_async")` and stays silent
# unless the application configures logging.
logging.getLogger("searchcans_async").addHandler(logging.NullHandler())

__all__ = [
    "Account",
    "ApiKey",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchReport",
    "Costs",
    "CreditsExhausted",
    "DeadlineTooShortError",
    "ImageResult",
    "InsufficientCreditsError",
    "LaneBusyError",
    "LanePool",
    "LeaseExpiredError",
    "NewsResult",
    "NewsSource",
    "NoLanesError",
    "OrganicResult",
    "Outcome",
    "PoolStatistics",
    "RateLimitedError",
    "ReaderPage",
    "ResponseFormatError",
    "RetryPolicy",
    "SearchCans",
    "SearchCansError",
    "SearchResult",
    "ServerError",
    "ShoppingResult",
    "ShortVideoResult",
    "StopReason",
    "TransportError",
    "UnexpectedResponseError",
    "VideoResult",
    "__version__",
]
