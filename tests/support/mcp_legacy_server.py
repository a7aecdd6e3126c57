"""A hand-written MCP stdio server of the handshake era (protocol 2025-06-18, what servers built
with SDK 1.x or other languages speak): it knows initialize, tools/list and tools/call and
answers anything else (such as the 2026 `server/discover` probe) with METHOD_NOT_FOUND.
Offers one tool, `echo(text)`. Run: `python tests/support/mcp_legacy_server.py`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

VERSION = "2025-06-18"
ECHO = {
    "name": "echo",
    "description": "Say the text back.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one JSON-RPC message (None for a notification)."""
    method, params, ident = request.get("method"), request.get("params") or {}, request.get("id")
    if ident is None:
        return None
    if method == "initialize":
        result: dict[str, Any] = {"protocolVersion": VERSION, "capabilities": {"tools": {}},
                                  "serverInfo": {"name": "legacy-echo", "version": "1.0"}}
    elif method == "tools/list":
        result = {"tools": [ECHO]}
    elif method == "tools/call" and params.get("name") == "echo":
        result = {"content": [{"type": "text", "text": str(params.get("arguments", {}).get("text", ""))}]}
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"Method not found: {method}"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        response = answer(json.loads(line))
        if response is not None:
            sys.stdout.write(json.dumps(response) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
