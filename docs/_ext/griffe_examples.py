"""A griffe extension for the API reference: read ``Example:`` sections as examples.

The package's docstrings use Google style, where ``Example:`` and ``Examples:`` both open an
examples section; griffe only knows the plural and renders the singular as an admonition
(doctest lines then become nested blockquotes). Renaming the header at load time keeps the
docstrings as they are and renders their ``>>>`` lines as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:`` in every loaded docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the object's docstring header before it is parsed."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
