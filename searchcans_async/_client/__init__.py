"""The client: requests, the transport, retries, costs, the key and the typed models.

The public face is ``searchcans_async``. The names below are what the layers above use;
they import them from here, never from this package's modules.
"""

from .client import Client
from .costs import Costs
from .errors import (
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
from .meter import LaneMeter, current_lane
from .models import (
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
from .requests import ENGINES, ReadRequest, SearchRequest
from .retry import RetryPolicy
from .secret import ENV_VAR
from .transport import DEFAULT_BASE_URL

__all__ = [
    "DEFAULT_BASE_URL",
    "ENGINES",
    "ENV_VAR",
    "Account",
    "ApiKey",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "Costs",
    "CreditsExhausted",
    "DeadlineTooShortError",
    "ImageResult",
    "InsufficientCreditsError",
    "LaneBusyError",
    "LaneMeter",
    "LeaseExpiredError",
    "NewsResult",
    "NewsSource",
    "NoLanesError",
    "OrganicResult",
    "RateLimitedError",
    "ReadRequest",
    "ReaderPage",
    "ResponseFormatError",
    "RetryPolicy",
    "SearchCansError",
    "SearchRequest",
    "SearchResult",
    "ServerError",
    "ShoppingResult",
    "ShortVideoResult",
    "TransportError",
    "UnexpectedResponseError",
    "VideoResult",
    "current_lane",
]
