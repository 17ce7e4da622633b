"""The MCP server: ``search``, ``read`` and ``account`` tools over one client and one pool.

Needs the ``mcp`` extra (the official Model Context Protocol SDK). Every tool call runs in
one :class:`~searchcans_async.LanePool` opened when the server starts, so an agent's
concurrent calls share the account's lanes and one credit budget; a call the budget cannot
cover is refused before it is sent, with an error the model can act on. Modules:

* ``outputs``: the tools' structured results (pydantic models, as the SDK expects);
* ``tools``: the tools themselves and the errors they report;
* ``server``: the ``MCPServer`` with the tools registered, over stdio or streamable HTTP.
"""

from __future__ import annotations

from .server import McpOptions, build_server, serve
from .tools import SearchCansTools

__all__ = ["McpOptions", "SearchCansTools", "build_server", "serve"]
