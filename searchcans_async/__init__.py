"""searchcans_async: the asyncio client for the SearchCans SERP and Reader API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
