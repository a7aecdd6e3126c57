"""Text for the MCP hub: a tool result as the text the model reads, a failure as one line for
the user, and the tail of a server's stderr (what it said before it failed)."""

from __future__ import annotations

import json
import os
import re
from typing import IO, Any

import anyio
import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError

from vllmtui.chat.mcp_config import McpServerSpec
from vllmtui.core.errors import VllmtuiError

STDERR_LINES = 3
STDERR_CHARS = 400
_READ_BACK = 16384
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_SPACES = re.compile(r"\s{2,}")
_BOX = re.compile(r"^[\s│╭╮╰╯─┃━┏┓┗┛]*$")


def _bytes_of(data: str) -> int:
    """The size of base64 `data` once decoded."""
    text = data.strip()
    return max(0, len(text) * 3 // 4 - text[-2:].count("="))


def _block_text(block: Any) -> tuple[str, bool]:
    """(text, is_text) of one content block: text as is, other kinds described."""
    if isinstance(block, types.TextContent):
        return block.text, True
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.mime_type}, {_bytes_of(block.data)} bytes]", False
    if isinstance(block, types.EmbeddedResource):
        res = block.resource
        if isinstance(res, types.TextResourceContents):
            return res.text, True
        return f"[{res.mime_type or 'binary'} resource {res.uri}, {_bytes_of(res.blob)} bytes]", False
    if isinstance(block, types.ResourceLink):
        what = f" ({block.mime_type})" if block.mime_type else ""
        return f"[resource link {block.uri}{what}]", False
    return f"[{getattr(block, 'type', type(block).__name__)} content]", False


def result_text(result: types.CallToolResult) -> str:
    """A tool's result as text: its text contents joined; its structured content as JSON when it
    gave no text; other content described (e.g. `[image/png, 2048 bytes]`)."""
    parts: list[str] = []
    any_text = False
    for block in result.content:
        text, is_text = _block_text(block)
        any_text = any_text or is_text
        parts.append(text)
    if not any_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


def stderr_tail(errlog: IO[str] | None) -> str:
    """The last lines a server wrote to its stderr (captured in `errlog`), as one line; ""
    when it wrote nothing. Read with pread, so the server's own writes are not disturbed."""
    if errlog is None:
        return ""
    try:
        fd = errlog.fileno()
        size = os.fstat(fd).st_size
        raw = os.pread(fd, min(size, _READ_BACK), max(0, size - _READ_BACK))
    except (OSError, ValueError):
        return ""
    text = _ANSI.sub("", raw.decode("utf-8", errors="replace"))
    lines = [_SPACES.sub(" ", line.strip()) for line in text.splitlines()
             if line.strip() and not _BOX.match(line)]
    tail = " | ".join(lines[-STDERR_LINES:])
    return tail if len(tail) <= STDERR_CHARS else "..." + tail[-STDERR_CHARS:]


def leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` means the connection to the server is gone (it exited or hung up)."""
    exc = leaf(exc)
    if isinstance(exc, MCPError):
        return exc.code == types.CONNECTION_CLOSED
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream
                      | BrokenPipeError | ConnectionResetError | httpx2.TransportError)


def describe(exc: BaseException, spec: McpServerSpec) -> str:
    """What went wrong with `spec`'s server, in words for the user (no traceback)."""
    exc = leaf(exc)
    if isinstance(exc, VllmtuiError):
        return str(exc)
    if isinstance(exc, MCPError):
        if exc.code == types.CONNECTION_CLOSED:
            return ("it exited (or closed its stdout) before answering" if spec.url is None
                    else f"the connection to {spec.url} closed before it answered")
        return f"it answered with an MCP error ({exc.code}): {exc.message}"
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        hint = ": check its headers: (a token?)" if status in (401, 403) else ""
        return f"HTTP {status} from {exc.request.url}{hint}"
    if isinstance(exc, httpx2.TransportError):
        return f"cannot reach {spec.url}: {type(exc).__name__}: {exc or 'no answer'}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot run it: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ValueError | RuntimeError) else text
