"""Watching an account: the live watch and its Prometheus metrics.

The public face is ``searchcans_async.monitor``.
"""
