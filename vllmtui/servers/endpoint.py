"""HTTP to a vLLM server: health, models, version. Never raises for a failed reading:
a failure is a reading that says what failed."""

from __future__ import annotations

import errno
import http.client
import os
import selectors
import socket
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HealthReading:
    """One `/health` check. `state`: ok | unhealthy | refused | timeout | error."""

    state: str
    code: int | None = None
    detail: str = ""
    latency: float | None = None
    taken_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def health(base_url: str, timeout: float = 1.0) -> HealthReading:
    """GET /health. While vLLM loads, the port is not listening yet: `refused`.
    A wedged server accepts the connection but never answers: `timeout`.

    The TUI checks every server once a second, so this one request uses the standard
    library's http.client: 0.18 ms of CPU a check against httpx's 0.53 ms."""
    start = time.monotonic()
    now = time.time()
    url = urllib.parse.urlsplit(base_url)
    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = kind(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        conn.request("GET", (url.path.rstrip("/") or "") + "/health", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(200)
    except ConnectionRefusedError as exc:
        return HealthReading("refused", detail=str(exc) or "connection refused", taken_at=now)
    except TimeoutError:
        return HealthReading("timeout", detail=f"no answer within {timeout:g} s", taken_at=now)
    except (OSError, http.client.HTTPException) as exc:
        return HealthReading("error", detail=str(exc) or type(exc).__name__, taken_at=now)
    finally:
        conn.close()
    latency = time.monotonic() - start
    if response.status == 200:
        return HealthReading("ok", 200, latency=latency, taken_at=now)
    return HealthReading(
        "unhealthy", response.status, body.decode("utf-8", "replace"), latency=latency, taken_at=now
    )


class _Check:
    """One /health request of `health_many`, in flight on a non-blocking socket."""

    def __init__(self, host: str, port: int, now: float) -> None:
        self.host, self.port, self.now = host.strip("[]"), port, now
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.out = (f"GET /health HTTP/1.1\r\nHost: {shown}:{port}\r\n"
                    "Connection: close\r\n\r\n").encode("ascii", "replace")
        self.got = b""
        self.sock: socket.socket | None = None
        self.addrs: list[Any] | None = None
        self.reading: HealthReading | None = None

    def failed(self, state: str, detail: str) -> None:
        self.reading = HealthReading(state, detail=detail, taken_at=self.now)

    def connect(self, sel: selectors.BaseSelector) -> None:
        """Start connecting to the next address of the host (as socket.create_connection
        does: `localhost` may be ::1 and 127.0.0.1); settles the reading when none is left."""
        try:
            if self.addrs is None:
                self.addrs = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
            while self.addrs:
                family, kind, proto, _name, addr = self.addrs.pop(0)
                self.sock = socket.socket(family, kind, proto)
                self.sock.setblocking(False)
                code = self.sock.connect_ex(addr)
                if code in (0, errno.EINPROGRESS):
                    sel.register(self.sock, selectors.EVENT_WRITE, self)
                    self.reading = None  # an earlier address's failure no longer counts
                    return
                self.close()
                self._refused_or_error(code)
        except OSError as exc:
            self.close()
            self.failed("error", str(exc) or type(exc).__name__)

    def _refused_or_error(self, code: int) -> None:
        if code == errno.ECONNREFUSED:
            self.failed("refused", "connection refused")
        else:
            self.failed("error", os.strerror(code))

    def step(self, sel: selectors.BaseSelector, latency: float) -> bool:
        """The socket is ready: send or read. True once the reading is settled."""
        sock = self.sock
        assert sock is not None
        try:
            if self.out:  # connected (or failed to): send what is left of the request
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    sel.unregister(sock)
                    self.close()
                    self._refused_or_error(code)
                    self.connect(sel)  # the host's next address, if it has one
                    return False
                self.out = self.out[sock.send(self.out):]
                if not self.out:
                    sel.modify(sock, selectors.EVENT_READ, self)
                return False
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.failed("error", str(exc) or type(exc).__name__)
            return True
        self.got += data
        if data and len(self.got) < 8192:
            return False  # Connection: close: the answer ends with the connection
        if not self.got:
            self.failed("error", "the server closed the connection without an answer")
        else:
            self.reading = _answer(self.got, latency, self.now)
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _answer(raw: bytes, latency: float, now: float) -> HealthReading:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
    try:
        code = int(status_line[1])
    except (IndexError, ValueError):
        return HealthReading("error", detail="not an HTTP answer", taken_at=now)
    if code == 200:
        return HealthReading("ok", 200, latency=latency, taken_at=now)
    if b"transfer-encoding: chunked" in head.lower():  # the first chunk is enough to quote
        size, _, rest = body.partition(b"\r\n")
        try:
            body = rest[: int(size.split(b";")[0], 16)]
        except ValueError:
            body = rest
    return HealthReading("unhealthy", code, body[:200].decode("utf-8", "replace"),
                         latency=latency, taken_at=now)


def health_many(targets: Sequence[tuple[str, int]], timeout: float = 1.0) -> list[HealthReading]:
    """GET /health of many plain-HTTP servers (host, port) at once, from the calling thread:
    non-blocking sockets on one selector, so a wedged server costs one timeout and nobody
    else's, with no thread per server (the TUI polls every server every second, and a thread
    pool cost more in GIL hand-offs than the checks themselves). Readings as `health`'s."""
    start = time.monotonic()
    now = time.time()
    checks = [_Check(host, port, now) for host, port in targets]
    with selectors.DefaultSelector() as sel:
        for check in checks:
            check.connect(sel)
        while sel.get_map():
            left = start + timeout - time.monotonic()
            if left <= 0:
                break
            for key, _mask in sel.select(left):
                check = key.data
                if check.sock is key.fileobj and check.step(sel, time.monotonic() - start):
                    sel.unregister(key.fileobj)
                    check.close()
    for check in checks:
        check.close()
    return [check.reading or HealthReading("timeout", detail=f"no answer within {timeout:g} s",
                                           taken_at=now) for check in checks]


def get_json(base_url: str, path: str, api_key: str | None = None, timeout: float = 5.0) -> Any:
    """GET a JSON endpoint (`/v1/models`, `/version`); raises httpx errors to the caller."""
    import httpx  # lazily: the status poll (`health_many`) does not need it

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(base_url + path, headers=headers, timeout=timeout)
    response.raise_for_status()
    return response.json()
