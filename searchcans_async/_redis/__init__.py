"""Many processes, one account: the Redis lane backend (public face: ``searchcans_async.redis``)."""
