"""The lane pool: lanes held, credits reserved and settled, batches, reports.

The public face is ``searchcans_async``.
"""
