"""A STAND-IN streaming server with zero model time, for measuring the bench CLIENT alone.

Not vLLM: it answers `/tokenize` and `/detokenize` (one token per word), `/health`, and
`POST /v1/completions` with `stream: true` by writing `max_tokens` SSE chunks plus a usage chunk
at once, over HTTP/1.1 keep-alive with chunked encoding. Pure asyncio, no framework, so that it
costs as little CPU as possible. Usage: python zero_time_stream_standin.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

TOKEN = (b'data: {"id":"cmpl-standin","object":"text_completion","model":"standin",'
         b'"choices":[{"index":0,"text":" w","finish_reason":null}]}\n\n')


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json(code: int, doc: object) -> bytes:
    body = json.dumps(doc).encode()
    reason = b"OK" if code == 200 else b"Not Found"
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (code, reason, len(body), body))


_streams: dict[int, bytes] = {}


def _stream(n: int) -> bytes:
    if n not in _streams:
        usage = json.dumps({"id": "cmpl-standin", "choices": [],
                            "usage": {"completion_tokens": n}}).encode()
        parts = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                 b"transfer-encoding: chunked\r\n\r\n"]
        parts += [_chunk(TOKEN)] * n
        parts += [_chunk(b"data: " + usage + b"\n\n"), _chunk(b"data: [DONE]\n\n"), b"0\r\n\r\n"]
        _streams[n] = b"".join(parts)
    return _streams[n]


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, path, _ = line.split(b" ", 2)
            length = 0
            for header in rest.split(b"\r\n"):
                if header[:15].lower() == b"content-length:":
                    length = int(header[15:])
            body = json.loads(await reader.readexactly(length)) if length else {}
            if path == b"/v1/completions":
                writer.write(_stream(int(body.get("max_tokens", 16))))
            elif path == b"/tokenize":
                words = str(body.get("prompt", "")).split()
                writer.write(_json(200, {"count": len(words), "tokens": list(range(len(words)))}))
            elif path == b"/detokenize":
                writer.write(_json(200, {"prompt": " ".join("w" for _ in body.get("tokens", []))}))
            elif path == b"/health" and method == b"GET":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            else:
                writer.write(_json(404, {"error": "not found"}))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
