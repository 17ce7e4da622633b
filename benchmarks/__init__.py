"""Benchmarks of searchcans_async against what users would write instead.

Run everything with ``python -m benchmarks`` (``make bench``); ``--quick`` runs a tiny
version of every measure to check the harness. See ``benchmarks/README.md``.
"""
