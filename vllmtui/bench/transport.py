"""A lean HTTP/1.1 transport for the bench's one `httpx.AsyncClient` (plain http:// only).

httpx's default transport (httpcore + h11) costs ~100 us of Python per streamed SSE message
and ~1 ms per request; on a 2-core box that shares its cores with a CPU vLLM server, that is
enough to push the client onto the run queue for tens of milliseconds at a time, and the
benchmark then measures the client. This transport keeps httpx's API (requests, responses,
`aiter_raw`, errors are `httpx` exceptions) and does the least work that HTTP/1.1 needs:

- one `send` per request (the head and body together);
- keep-alive connections, reused most recently used first; a reused connection that the
  server had closed is detected and the request is sent again on a new one (only when not
  a byte of the answer was received, so nothing is ever sent twice after being answered);
- response bodies framed by `Content-Length`, `Transfer-Encoding: chunked` or the end of the
  connection; for chunked bodies everything that has arrived is decoded and handed over in
  one piece per socket read, so a read that holds several SSE messages costs one yield;
- the read timeout checked by one timer per response that re-arms itself, instead of one
  timer per read.

It is not a general-purpose client: no proxies, TLS, HTTP/2, `Expect: 100-continue`, or
upgrades (https:// servers go through httpx's own transport; see `bench.make_client`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx


class _Conn:
    """One TCP connection: a StreamReader/StreamWriter pair and the read deadline watchdog."""

    __slots__ = ("reader", "writer", "deadline", "timed_out", "_timer", "_loop")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.deadline = 0.0
        self.timed_out = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def reusable(self) -> bool:
        """Idle and still open: no EOF seen and nothing unread (an idle connection that has
        bytes waiting was closed or broken by the server)."""
        return not self.reader.at_eof() and not getattr(self.reader, "_buffer", b"") \
            and not self.writer.is_closing()

    def watch(self, timeout: float | None) -> None:
        """Arm the read timeout: the connection is aborted when no read finished for
        `timeout` seconds. `touch` moves the deadline; the timer re-arms itself lazily."""
        if timeout is None:
            return
        self.deadline = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self.deadline, self._check, timeout)

    def touch(self, timeout: float | None) -> None:
        if timeout is not None:
            self.deadline = self._loop.time() + timeout

    def unwatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self, timeout: float) -> None:
        self._timer = None
        if self._loop.time() >= self.deadline:
            self.timed_out = True
            self.writer.transport.abort()
        else:
            self._timer = self._loop.call_at(self.deadline, self._check, timeout)

    def close(self) -> None:
        self.unwatch()
        self.writer.close()


def _read_error(conn: _Conn, exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    if conn.timed_out:
        return httpx.ReadTimeout("no data from the server within the read timeout", request=request)
    if isinstance(exc, asyncio.IncompleteReadError):
        return httpx.RemoteProtocolError("the server closed the connection in the middle of an answer",
                                         request=request)
    if isinstance(exc, asyncio.LimitOverrunError):
        return httpx.RemoteProtocolError("the server's answer has a header line longer than 1 MiB",
                                         request=request)
    return httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request)


class _Body(httpx.AsyncByteStream):
    """A response body read off its connection; the connection goes back to the pool once
    the body has been read to its end (and the server did not ask to close it)."""

    def __init__(self, transport: LeanTransport, key: tuple[str, int], conn: _Conn,
                 request: httpx.Request, length: int | None, chunked: bool, keep: bool,
                 timeout: float | None) -> None:
        self._transport, self._key, self._conn, self._request = transport, key, conn, request
        self._length, self._chunked, self._keep, self._timeout = length, chunked, keep, timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, request = self._conn, self._request
        try:
            if self._chunked:
                async for data in self._chunks():
                    yield data
            elif self._length is not None:
                left = self._length
                while left > 0:
                    data = await conn.reader.read(min(left, 2**16))
                    if not data:
                        raise asyncio.IncompleteReadError(b"", left)
                    conn.touch(self._timeout)
                    left -= len(data)
                    yield data
            else:  # no framing: the body ends with the connection
                self._keep = False
                while data := await conn.reader.read(2**16):
                    conn.touch(self._timeout)
                    yield data
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise _read_error(conn, exc, request) from exc
        except ValueError as exc:
            raise httpx.RemoteProtocolError(f"bad chunked encoding: {exc}", request=request) from exc
        self._done = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        """Decode `Transfer-Encoding: chunked` from whatever each read brings; yields the
        chunk data completed or continued by that read, joined into one piece."""
        reader, conn, timeout = self._conn.reader, self._conn, self._timeout
        buf = b""  # bytes not yet decoded: at most a partial size line
        data_left = 0  # bytes of the current chunk's data still to come
        skip = 0  # bytes of the CRLF after a chunk's data still to come
        while True:
            data = await reader.read(2**16)
            if not data:
                raise asyncio.IncompleteReadError(buf, None)
            conn.touch(timeout)
            buf += data
            out: list[bytes] = []
            pos, end_of_buf = 0, len(buf)
            while pos < end_of_buf:
                if data_left:
                    take = min(data_left, end_of_buf - pos)
                    out.append(buf[pos:pos + take])
                    pos += take
                    data_left -= take
                    skip = 0 if data_left else 2
                    continue
                if skip:
                    take = min(skip, end_of_buf - pos)
                    pos += take
                    skip -= take
                    continue
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if size == 0:  # the last chunk: read the trailers up to their empty line
                    rest = buf[pos:]
                    while not (rest.startswith(b"\r\n") or b"\r\n\r\n" in rest):
                        more = await reader.read(2**16)
                        if not more:
                            raise asyncio.IncompleteReadError(rest, None)
                        rest += more
                    if out:
                        yield b"".join(out)
                    return
                data_left = size
            buf = buf[pos:]
            if out:
                yield out[0] if len(out) == 1 else b"".join(out)

    async def aclose(self) -> None:
        conn = self._conn
        conn.unwatch()
        if self._done and self._keep and conn.reusable():
            self._transport._release(self._key, conn)  # noqa: SLF001
        else:
            conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """See the module docstring. Idle connections are kept per (host, port), up to
    `max_idle` per host."""

    def __init__(self, max_idle: int | None = None) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._max_idle = max_idle
        self._closed = False

    def _release(self, key: tuple[str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if self._closed or (self._max_idle is not None and len(idle) >= self._max_idle):
            conn.close()
        else:
            idle.append(conn)

    async def _connect(self, request: httpx.Request, key: tuple[str, int],
                       timeout: float | None) -> _Conn:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(key[0], key[1], limit=2**20)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {key[0]}:{key[1]} within {timeout:g} s",
                                       request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"the bench's lean transport speaks http:// only, not "
                                            f"{url.scheme}://", request=request)
        key = (url.host, url.port or 80)
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
        message = b"".join(head) + b"\r\n" + body
        idle = self._idle.get(key)
        while True:
            reused = False
            conn = None
            while idle:
                candidate = idle.pop()
                if candidate.reusable():
                    conn, reused = candidate, True
                    break
                candidate.close()
            if conn is None:
                conn = await self._connect(request, key, timeouts.get("connect"))
            read_timeout = timeouts.get("read")
            try:
                conn.writer.write(message)
                conn.watch(read_timeout)
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                conn.close()
                if reused and isinstance(exc, OSError | asyncio.IncompleteReadError) \
                        and not getattr(exc, "partial", b""):
                    continue  # the server had closed this idle connection: once more, afresh
                raise _read_error(conn, exc, request) from exc
            break
        return self._response(request, key, conn, raw, read_timeout)

    def _response(self, request: httpx.Request, key: tuple[str, int], conn: _Conn, raw: bytes,
                  read_timeout: float | None) -> httpx.Response:
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        try:
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise ValueError(lines[0][:80])
            status = int(parts[1])
            headers = []
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    raise ValueError(line[:80])
                headers.append((name.strip(), value.strip()))
        except ValueError as exc:
            conn.close()
            raise httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {exc}", request=request) from exc
        length: int | None = None
        chunked = False
        keep = parts[0] == b"HTTP/1.1"
        for name, value in headers:
            low = name.lower()
            if low == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif low == b"content-length":
                length = int(value)
            elif low == b"connection":
                keep = keep and value.lower() != b"close"
        if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            length, chunked = 0, False
        elif chunked:
            length = None
        stream = _Body(self, key, conn, request, length, chunked, keep, read_timeout)
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": parts[0],
                                          "reason_phrase": parts[2] if len(parts) > 2 else b""})

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
