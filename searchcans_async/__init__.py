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

from ._client import (
    Account,
    ApiKey,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    Costs,
    CreditsExhausted,
    DeadlineTooShortError,
    ImageResult,
    InsufficientCreditsError,
    LaneBusyError,
    LeaseExpiredError,
    NewsResult,
    NewsSource,
    NoLanesError,
    OrganicResult,
    RateLimitedError,
    ReaderPage,
    ResponseFormatError,
    RetryPolicy,
    SearchCansError,
    SearchResult,
    ServerError,
    ShoppingResult,
    ShortVideoResult,
    TransportError,
    UnexpectedResponseError,
    VideoResult,
)
from ._lanes import (
    Batch,
    BatchReport,
    LanePool,
    Outcome,
    PoolStatistics,
    SearchCans,
    StopReason,
)
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
