"""Share one account's Parallel Lanes and credits between processes, through Redis.

Needs the ``redis`` extra (``pip install 'searchcans-async[redis]'``); the rest of the
package never imports Redis. Every worker of a job opens its pool with a backend for
the same ``account`` name on the same Redis, and together they never have more
requests in flight than the account's lanes, nor spend past the shared budget.

Example:
    >>> from searchcans_async import SearchCans
    >>> from searchcans_async.redis import open_backend
    >>> async def worker(queries):  # doctest: +SKIP
    ...     backend = await open_backend("redis://127.0.0.1:6379/0", "team")
    ...     async with SearchCans() as client, client.lanes(backend=backend) as pool:
    ...         return await pool.run_batch(client.search, queries)
"""

from __future__ import annotations

from typing import Any

from ._redis import RedisBackend, RedisBackendError

__all__ = ["RedisBackend", "RedisBackendError", "open_backend"]


async def open_backend(url: str, account: str, **options: Any) -> RedisBackend:
    """Connect to Redis and return a :class:`RedisBackend` for ``account`` (for the CLI).

    Checks that Redis answers and loads the scripts, so a wrong URL fails here rather
    than at the first lane. The backend is opened by the pool it is given to and closed
    with it (or use it as ``async with``).

    Args:
        url: The Redis URL (``redis://host:port/db``).
        account: The group's name: every worker of one job uses the same.
        **options: :meth:`RedisBackend.from_url`'s options (``request_timeout``,
            ``lease``, ``socket_timeout``, ...).

    Raises:
        RedisBackendError: Redis cannot be reached.

    Example:
        >>> backend = await open_backend("redis://127.0.0.1:6379/0", "team")  # doctest: +SKIP
        >>> async with client.lanes(backend=backend) as pool:  # doctest: +SKIP
        ...     ...
    """
    backend = RedisBackend.from_url(url, account=account, **options)
    try:
        await backend.connect()
    except BaseException:
        await backend.aclose()
        raise
    return backend
