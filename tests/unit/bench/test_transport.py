"""The bench's lean HTTP/1.1 transport (vllmtui/bench/transport.py), against a scripted raw-socket
STAND-IN server: it sends exactly the bytes a test asks for, split and timed as asked, and
fails on demand (closes mid-answer, closes idle connections, never answers), which a real
server cannot be made to do. The transport against the real vLLM is covered by the bench's
end-to-end test in tests/e2e/cli/test_bench.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from vllmtui.bench.load import make_client
from vllmtui.bench.transport import LeanTransport

Script = Callable[[bytes, asyncio.StreamWriter, int], Awaitable[bool]]


class ScriptedHttpStandin:
    """Reads each request (head + Content-Length body) and hands it to `script(request,
    writer, n)`, n counting requests on that connection; the script writes the answer and
    returns False to close the connection. Records every request and connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                n += 1
                if not await self.script(request, writer, n):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def standin() -> AsyncIterator[Callable[[Script], Awaitable[ScriptedHttpStandin]]]:
    made: list[ScriptedHttpStandin] = []

    async def make(script: Script) -> ScriptedHttpStandin:
        s = ScriptedHttpStandin(script)
        s.server = await asyncio.start_server(s._handle, "127.0.0.1", 0)
        made.append(s)
        return s

    yield make
    for s in made:
        assert s.server is not None
        for w in s.writers:
            w.close()
        s.server.close()
        await s.server.wait_closed()


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def client(timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport(), timeout=httpx.Timeout(timeout))


async def test_chunked_body_split_at_every_byte_is_decoded_exactly(standin) -> None:
    body = chunked(b"data: one\n\n", b"data: " + b"x" * 300 + b"\n\n", b"data: [DONE]\n\n")

    async def trickle(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(HEAD)
        for i in range(len(body)):  # one byte per segment: every split point is crossed
            writer.write(body[i:i + 1])
            await writer.drain()
            if i % 7 == 0:
                await asyncio.sleep(0)
        return True

    s = await standin(trickle)
    async with client() as c, c.stream("POST", s.url + "/v1/completions", content=b'{"a":1}') as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        got = b"".join([piece async for piece in r.aiter_raw()])
    assert got == b"data: one\n\n" + b"data: " + b"x" * 300 + b"\n\n" + b"data: [DONE]\n\n"


async def test_several_chunks_in_one_read_come_as_one_piece_with_trailers(standin) -> None:
    async def burst(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(HEAD + b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nx-trailer: 1\r\n\r\n")
        return True

    s = await standin(burst)
    async with client() as c, c.stream("GET", s.url + "/") as r:
        pieces = [piece async for piece in r.aiter_raw()]
    assert pieces == [b"abcdefg"]


async def test_request_goes_out_whole_with_httpx_headers(standin) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    s = await standin(ok)
    async with client() as c:
        r = await c.post(s.url + "/v1/completions?x=1", json={"model": "m"},
                         headers={"Authorization": "Bearer k"})
    assert r.text == "ok"
    head, _, body = s.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/completions?x=1 HTTP/1.1"
    assert b"Authorization: Bearer k" in lines[1:]
    assert b"Content-Length: 13" in lines[1:]
    assert body == b'{"model":"m"}'


async def test_keep_alive_reuses_one_connection_and_close_is_honoured(standin) -> None:
    async def answers(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        if b"/close" in request.split(b"\r\n")[0]:
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nc")
            return False
        writer.write(HEAD + chunked(b"hi"))
        return True

    s = await standin(answers)
    async with client() as c:
        for _ in range(5):
            assert (await c.get(s.url + "/a")).text == "hi"
        assert s.connections == 1
        assert (await c.get(s.url + "/close")).text == "c"
        assert (await c.get(s.url + "/a")).text == "hi"
    assert s.connections == 2
    assert len(s.requests) == 7


async def test_idle_connection_closed_by_the_server_is_replaced_not_an_error(standin) -> None:
    async def once_then_close(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        return False  # keep-alive was not refused, but the server drops the connection

    s = await standin(once_then_close)
    async with client() as c:
        assert (await c.get(s.url + "/")).text == "ok"
        await asyncio.sleep(0.05)
        assert (await c.get(s.url + "/")).text == "ok"
    assert s.connections == 2
    assert len(s.requests) == 2  # the second request was sent once, on the new connection


async def test_body_without_framing_reads_to_the_end_and_is_not_reused(standin) -> None:
    async def until_close(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        return False

    s = await standin(until_close)
    async with client() as c:
        assert (await c.get(s.url + "/")).text == "all of it"
        assert (await c.get(s.url + "/")).text == "all of it"
    assert s.connections == 2


async def test_a_stream_left_early_does_not_poison_the_pool(standin) -> None:
    async def long(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(HEAD + chunked(*([b"data: t\n\n"] * 50)))
        return True

    s = await standin(long)
    async with client() as c:
        async with c.stream("GET", s.url + "/") as r:
            async for _ in r.aiter_raw():
                break  # leave with most of the body unread
        async with c.stream("GET", s.url + "/") as r:
            body = b"".join([p async for p in r.aiter_raw()])
    assert body == b"data: t\n\n" * 50
    assert s.connections == 2


async def test_failures_are_httpx_errors_naming_what_happened(standin) -> None:
    async def cut(request: bytes, writer: asyncio.StreamWriter, n: int) -> bool:
        path = request.split(b" ")[1]
        if path == b"/cut":
            writer.write(HEAD + b"10\r\nonly part")
        elif path == b"/bad":
            writer.write(HEAD + b"zz\r\nxx\r\n")
        elif path == b"/garbage":
            writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        elif path == b"/silent":
            await asyncio.sleep(10)
        await writer.drain()
        return False

    s = await standin(cut)
    async with client(timeout=0.3) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="closed the connection in the middle"):
            await c.get(s.url + "/cut")
        with pytest.raises(httpx.RemoteProtocolError, match="bad chunked encoding"):
            await c.get(s.url + "/bad")
        with pytest.raises(httpx.RemoteProtocolError, match="not an HTTP/1.1 answer"):
            await c.get(s.url + "/garbage")
        with pytest.raises(httpx.ReadTimeout):
            await c.get(s.url + "/silent")
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:1/")


async def test_https_goes_through_httpx_own_transport() -> None:
    c = make_client(httpx.Limits(), httpx.Timeout(1.0), https=True)
    assert not isinstance(c._transport, LeanTransport)  # noqa: SLF001
    await c.aclose()
    c = make_client(httpx.Limits(), httpx.Timeout(1.0), https=False)
    assert isinstance(c._transport, LeanTransport)  # noqa: SLF001
    await c.aclose()
