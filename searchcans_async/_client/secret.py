"""The API key's holder: it never shows the key in a repr, str, log line or pickle."""

from __future__ import annotations

import os
from typing import Final, NoReturn

from .errors import AuthenticationError

__all__ = ["ENV_VAR", "Secret"]

ENV_VAR: Final = "SEARCHCANS_API_KEY"


class Secret:
    """An API key that redacts itself everywhere but the Authorization header.

    Example:
        >>> key = Secret("sk_live_canary")
        >>> key
        Secret('********')
        >>> key.reveal()
        'sk_live_canary'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"the API key must be a str, not {type(value).__name__}")
        value = value.strip()
        if not value:
            raise AuthenticationError(
                "the API key is empty: pass api_key=... or set SEARCHCANS_API_KEY"
            )
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            # A stray newline in a key read from a file would otherwise let
            # aiohttp raise a header error that quotes the header value.
            raise AuthenticationError("the API key contains whitespace or control characters")
        self._value = value

    @classmethod
    def resolve(cls, api_key: str | Secret | None) -> Secret:
        """Take the key from the argument, else from ``SEARCHCANS_API_KEY``."""
        if isinstance(api_key, Secret):
            return api_key
        if api_key is None:
            api_key = os.environ.get(ENV_VAR)
            if not api_key:
                raise AuthenticationError(
                    f"no API key: pass api_key=... or set the {ENV_VAR} environment variable"
                )
        return cls(api_key)

    def reveal(self) -> str:
        """Return the key itself; only the transport calls this, to build the header."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("an API key is not picklable; pass it to each process explicitly")
