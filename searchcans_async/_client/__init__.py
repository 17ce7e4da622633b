"""The client: requests, the transport, retries, costs, the key and the typed models.

The public face is ``searchcans_async``.
"""
