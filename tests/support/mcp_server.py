"""A real MCP server built with the official SDK's server side (MCPServer), for the chat tests
and for users who want to try MCP tools in vllmtui's chat:

    python tests/support/mcp_server.py              # stdio (what mcp.yaml's `command:` runs)
    python tests/support/mcp_server.py --http 8765  # streamable HTTP at http://127.0.0.1:8765/mcp

Its tools: `get_weather(city, days=1)` (deterministic text), `add(a, b)`, `fail(reason)`
(raises ToolError, so the result has isError and the reason); `--test-tools` adds
`sleep(seconds)`, `crash(code)` (exits at once), `getenv(name)` and `cwd()`.
`--prefix NAME` renames them `NAME_<tool>`; `--only` keeps a comma-separated subset.
`--stderr TEXT` writes TEXT to stderr at start-up and `--exit CODE` then exits with CODE
before serving (a server that does not start).

In mcp.yaml:  mcpServers: {demo: {command: python, args: [/path/to/tests/support/mcp_server.py]}}
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

WEATHER = ("sunny", "cloudy", "rainy", "windy", "snowy")


def get_weather(city: str, days: int = 1) -> str:
    """Weather forecast for a city over the next days."""
    kind = WEATHER[sum(map(ord, city)) % len(WEATHER)]
    temp = 10 + sum(map(ord, city)) % 20
    return f"{city}: {kind}, {temp} C for {days} day{'s' if days != 1 else ''}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def fail(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"failed on purpose: {reason}")  # ToolError: the client sees the message


def sleep(seconds: float) -> str:
    """Wait, then say so (a slow tool)."""
    time.sleep(seconds)
    return f"slept {seconds:g} s"


def crash(code: int = 3) -> str:
    """Write to stderr and exit at once (a server that dies mid-session)."""
    print(f"crashing on purpose with code {code}", file=sys.stderr, flush=True)
    os._exit(code)


def getenv(name: str) -> str:
    """The value of one of this server's environment variables ('<unset>' when it has none)."""
    return os.environ.get(name, "<unset>")


def cwd() -> str:
    """This server's working directory."""
    return os.getcwd()


TOOLS = {"get_weather": get_weather, "add": add, "fail": fail}
TEST_TOOLS = {"sleep": sleep, "crash": crash, "getenv": getenv, "cwd": cwd}


def build(prefix: str = "", only: set[str] | None = None, test_tools: bool = False) -> MCPServer:
    """The server with its tools (renamed `<prefix>_<tool>` when a prefix is given)."""
    server = MCPServer("vllmtui-test-tools", instructions="Test tools for vllmtui's chat.")
    for name, fn in (TOOLS | TEST_TOOLS if test_tools else TOOLS).items():
        if only is None or name in only:
            server.tool(name=f"{prefix}_{name}" if prefix else name)(fn)
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--only", default="", help="comma-separated tool names to offer")
    parser.add_argument("--test-tools", action="store_true", help="also offer sleep, crash, getenv and cwd")
    parser.add_argument("--stderr", default="", help="text to write to stderr at start-up")
    parser.add_argument("--exit", type=int, default=None, metavar="CODE", help="exit at once with CODE")
    args = parser.parse_args(argv)
    if args.stderr:
        print(args.stderr, file=sys.stderr, flush=True)
    if args.exit is not None:
        sys.exit(args.exit)
    server = build(args.prefix, set(args.only.split(",")) if args.only else None, args.test_tools)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
