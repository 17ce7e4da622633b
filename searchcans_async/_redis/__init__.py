"""Many processes, one account: the Redis lane backend (public face: ``searchcans_async.redis``).

The names below are what the layers above use; they import them from here, never from
this package's modules. Importing it needs the ``redis`` extra.
"""

from .backend import RedisBackend
from .scripts import RedisBackendError

__all__ = ["RedisBackend", "RedisBackendError"]
