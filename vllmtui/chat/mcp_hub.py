"""A synchronous facade over the official MCP SDK (async) for the chat: `McpHub` connects to
the servers of mcp.yaml, lists their tools and calls them, from plain threads (the CLI, Textual
thread workers).

One asyncio loop runs in a daemon thread of the hub's own. Each server has one long-lived task
that enters the SDK's transport and session contexts and stays inside them until `close()`
(anyio cancel scopes must be exited by the task that entered them); calls cross threads with
`asyncio.run_coroutine_threadsafe`. A server that fails to start is a line in `problems`, not
an exception, and the others still work; a tool that fails is a `ToolOutcome` with `is_error`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client, Transport
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from vllmtui import __version__
from vllmtui.chat.mcp_config import McpServerSpec
from vllmtui.chat.mcp_text import describe, is_disconnect, result_text, stderr_tail
from vllmtui.core.errors import VllmtuiError
from vllmtui.probes.toolcheck import ToolSpec

# The SDK logs protocol noise (a non-JSON line on a server's stdout, teardown) with tracebacks;
# with no handler configured Python would print them on stderr, over the TUI. The app's own
# logging configuration, when it has one, still receives them.
for _name in ("mcp", "client"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

EXTRA_ENV = (
    "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
)
"""Passed to stdio servers on top of the SDK's base (HOME, LOGNAME, PATH, SHELL, TERM, USER):
locale, temp dir and proxy/CA settings, which package runners (uvx, npx) need. Nothing else of
vllmtui's environment is passed: a secret reaches a server only through its `env:`."""

STOP_TIMEOUT = 10.0
"""Seconds close() waits for the servers to end (the SDK's own shutdown: close stdin, 2 s,
SIGTERM the process group, 2 s, SIGKILL)."""
_CLIENT_INFO = types.Implementation(name="vllmtui", version=__version__)
_MAX_PAGES = 100


@dataclass(frozen=True)
class McpTool:
    """A tool of an MCP server, under the name offered to the model: its own name, or
    `<server>__<tool>` when two servers offer the same name."""

    server: str
    name: str
    remote_name: str
    description: str
    schema: dict[str, Any]

    def spec(self) -> ToolSpec:
        """The tool as the chat offers it to the model."""
        return ToolSpec(self.name, self.description, parameters=self.schema, source=f"mcp:{self.server}")


@dataclass(frozen=True)
class ToolOutcome:
    """A tool call's result as text, whether it is an error (the tool said so, raised, timed
    out or its server died) and how long it took."""

    text: str
    is_error: bool
    seconds: float


class _StartError(VllmtuiError):
    """A server that cannot be started, in words for the user (before anything is spawned)."""


@dataclass(eq=False)
class _Server:
    """One server's state, owned by the hub's loop thread."""

    spec: McpServerSpec
    errlog: IO[str] | None = None
    client: Client | None = None
    listed: list[types.Tool] = field(default_factory=list)
    scope: anyio.CancelScope | None = None
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None  # why it did not start, or why it stopped

    def tail(self) -> str:
        text = stderr_tail(self.errlog)
        return f"; its stderr: {text}" if text else ""


def _find_command(command: str, cwd: str | None, path: str | None) -> str:
    """`command` as it will be run (`~` expanded); _StartError when it cannot be found."""
    command = os.path.expanduser(command)
    if os.sep in command:
        full = command if os.path.isabs(command) or cwd is None else os.path.join(cwd, command)
        if not os.access(full, os.X_OK) or os.path.isdir(full):
            raise _StartError(f"{command} is not an executable file" + (f" (in {cwd})" if cwd else ""))
        return command
    if shutil.which(command, path=path) is None:
        raise _StartError(f"command {command!r} was not found on PATH: install it, or give its full path")
    return command


class McpHub:
    """The MCP servers of mcp.yaml, connected: their tools (`tools`), what failed (`problems`)
    and a synchronous `call`. Use as a context manager, or `start()` then `close()`."""

    def __init__(self, specs: Sequence[McpServerSpec], *, source: Path | None = None,
                 connect_timeout: float = 20.0):
        self._servers = {s.name: _Server(s) for s in specs if not s.disabled}
        self._source = source
        self._connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._by_name: dict[str, McpTool] = {}
        self._closed = False
        self._lock = threading.Lock()
        self.tools: tuple[McpTool, ...] = ()
        self.problems: tuple[str, ...] = ()

    # ------------------------------------------------------------------ sync API
    def start(self) -> McpHub:
        """Connect to every enabled server at once (each bounded by connect_timeout); a server
        that fails is a line in `problems`. Returns the hub."""
        with self._lock:
            if self._loop is not None or self._closed:
                return self
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="vllmtui-mcp", daemon=True)
            self._thread.start()
            atexit.register(self.close)
        asyncio.run_coroutine_threadsafe(self._start_all(), self._loop).result()
        self._name_tools()
        return self

    def tool(self, name: str) -> McpTool | None:
        """The tool offered to the model as `name`, or None."""
        return self._by_name.get(name)

    def call(self, name: str, arguments: dict[str, Any], timeout: float | None = None) -> ToolOutcome:
        """Call a tool by the name offered to the model; never raises for a tool's failure
        (unknown tool, error result, timeout, dead server: `is_error`). `timeout` defaults to
        the server's `timeout:` from mcp.yaml."""
        started = time.monotonic()
        tool = self._by_name.get(name)
        if tool is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            return ToolOutcome(f"no tool named {name!r}; the MCP tools are: {known}", True, 0.0)
        server = self._servers[tool.server]
        if self._closed or self._loop is None:
            return _not_running(tool, server, why="the MCP servers are closed" if self._closed else
                                "the MCP servers are not started (McpHub.start)")
        if server.client is None:
            return _not_running(tool, server)
        limit = timeout if timeout is not None else server.spec.timeout
        future = asyncio.run_coroutine_threadsafe(self._call(server, tool, arguments, limit), self._loop)
        try:
            return future.result(limit + STOP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return ToolOutcome(f"{name} did not answer within {limit:g} s", True, time.monotonic() - started)
        except concurrent.futures.CancelledError:
            return ToolOutcome(f"{name}: the call was cancelled (closing?)", True, time.monotonic() - started)

    def close(self) -> None:
        """End every session and stop every server process (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        atexit.unregister(self.close)
        if loop is not None and thread is not None:
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._stop_all(), loop).result(STOP_TIMEOUT + 5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()
        for server in self._servers.values():
            if server.errlog is not None:
                server.errlog.close()

    def __enter__(self) -> McpHub:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _name_tools(self) -> None:
        """Name every listed tool for the model: its own name unless two servers share it."""
        counts = Counter(t.name for s in self._servers.values() for t in s.listed)
        tools = []
        for server in self._servers.values():
            for listed in server.listed:
                name = listed.name if counts[listed.name] == 1 else f"{server.spec.name}__{listed.name}"
                tools.append(McpTool(server.spec.name, name, listed.name, listed.description or "",
                                     dict(listed.input_schema)))
        self.tools = tuple(tools)
        self._by_name = {t.name: t for t in tools}

    # ------------------------------------------------------------------ the loop thread
    async def _start_all(self) -> None:
        servers = list(self._servers.values())
        for server in servers:
            server.task = asyncio.create_task(self._run(server), name=f"mcp:{server.spec.name}")
        waits = {asyncio.create_task(s.ready.wait()): s for s in servers}
        if waits:  # a server that failed has stopped already; one that timed out stops in the background
            _done, pending = await asyncio.wait(waits, timeout=self._connect_timeout)
            for waiter in pending:
                waiter.cancel()
                server = waits[waiter]
                server.failure = (f"it did not answer the MCP handshake within {self._connect_timeout:g} s"
                                  " (is it an MCP server? over stdio it must write nothing but MCP"
                                  " messages on stdout)")
                if server.scope is not None:
                    server.scope.cancel()
        self.problems = tuple(
            f"mcp server {s.spec.name!r} did not start: {s.failure or 'it stopped'}{s.tail()}"
            for s in servers if s.client is None
        )

    async def _run(self, server: _Server) -> None:
        """The server's whole life: connect, list its tools, then wait inside the SDK's
        contexts until its scope is cancelled (close, connect timeout, or its death)."""
        try:
            with anyio.CancelScope() as scope:
                server.scope = scope
                async with AsyncExitStack() as stack:
                    transport = await self._transport(server, stack)
                    client = await stack.enter_async_context(
                        Client(transport, cache=None, client_info=_CLIENT_INFO)
                    )
                    server.listed = await _list_tools(client)
                    server.client = client
                    server.ready.set()
                    await anyio.sleep_forever()
        except Exception as exc:  # a server's failure is reported, never raised into the hub
            if server.failure is None:
                server.failure = describe(exc, server.spec)
        finally:
            server.client = None
            server.ready.set()

    async def _transport(self, server: _Server, stack: AsyncExitStack) -> Transport:
        spec = server.spec
        if spec.url is not None:
            http = await stack.enter_async_context(httpx2.AsyncClient(
                headers=spec.resolved_headers(self._source), timeout=httpx2.Timeout(30.0, read=300.0)
            ))
            return streamable_http_client(spec.url, http_client=http)
        assert spec.command is not None
        env = {k: os.environ[k] for k in EXTRA_ENV if k in os.environ} | spec.resolved_env(self._source)
        cwd = os.path.expanduser(spec.cwd) if spec.cwd else None
        if cwd is not None and not os.path.isdir(cwd):
            raise _StartError(f"its cwd {cwd} is not a directory")
        command = _find_command(spec.command, cwd, env.get("PATH", os.environ.get("PATH")))
        # kept past the session (problems and dead servers quote it): close() closes it
        server.errlog = tempfile.TemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8", errors="replace", prefix=f"vllmtui-mcp-{spec.name}-"
        )
        params = StdioServerParameters(command=command, args=list(spec.args), env=env, cwd=cwd)
        return stdio_client(params, errlog=server.errlog)

    async def _call(self, server: _Server, tool: McpTool, arguments: dict[str, Any],
                    limit: float) -> ToolOutcome:
        started = time.monotonic()
        client = server.client
        if client is None:
            return _not_running(tool, server)
        try:
            with anyio.fail_after(limit):
                result = await client.call_tool(tool.remote_name, arguments, read_timeout_seconds=limit)
        except TimeoutError:
            return ToolOutcome(f"{tool.name} did not answer within {limit:g} s", True,
                               time.monotonic() - started)
        except Exception as exc:  # the tool's failure is the model's to read, not an exception
            if is_disconnect(exc):
                await anyio.sleep(0.2)  # let a dying process finish writing its stderr
                server.failure = f"it stopped: {describe(exc, server.spec)}{server.tail()}"
                server.client = None
                if server.scope is not None:
                    server.scope.cancel()
                return _not_running(tool, server, time.monotonic() - started)
            return ToolOutcome(f"{tool.name} failed: {describe(exc, server.spec)}", True,
                               time.monotonic() - started)
        return ToolOutcome(result_text(result), result.is_error, time.monotonic() - started)

    async def _stop_all(self) -> None:
        """End the calls in flight (their callers get an error outcome), then every server."""
        current = asyncio.current_task()
        runs = {s.task for s in self._servers.values() if s.task is not None}
        calls = [t for t in asyncio.all_tasks() if t is not current and t not in runs]
        for call in calls:
            call.cancel()
        for server in self._servers.values():
            if server.scope is not None:
                server.scope.cancel()
        pending = [t for t in (*runs, *calls) if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_TIMEOUT)


def _not_running(tool: McpTool, server: _Server, seconds: float = 0.0, why: str | None = None) -> ToolOutcome:
    why = why or server.failure or "it stopped"
    return ToolOutcome(f"{tool.name}: mcp server {tool.server!r} is not running: {why}", True, seconds)


async def _list_tools(client: Client) -> list[types.Tool]:
    """Every tool of a server (all pages)."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools
