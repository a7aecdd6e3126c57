"""health_many: many /health checks at once from one thread, against real local sockets: a
healthy server, an unhealthy one, a closed port, a wedged one (accepts, never answers), one
that hangs up without a word, and one that answers not-HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vllmtui.servers.endpoint import health, health_many


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.server.server_port == _Handler.unhealthy_port:  # type: ignore[attr-defined]
            body = b'{"error": "engine dead"}'
            self.send_response(503)
        else:
            body = b""
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


_Handler.unhealthy_port = 0  # type: ignore[attr-defined]


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    made: list[ThreadingHTTPServer] = []
    raw: list[socket.socket] = []
    ports: dict[str, int] = {}
    for name in ("ok", "unhealthy"):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        made.append(srv)
        ports[name] = srv.server_port
    _Handler.unhealthy_port = ports["unhealthy"]  # type: ignore[attr-defined]
    wedged = socket.socket()
    wedged.bind(("127.0.0.1", 0))
    wedged.listen(8)  # the kernel completes connections; nobody ever reads them
    raw.append(wedged)
    ports["wedged"] = wedged.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    ports["refused"] = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    for name, reply in (("hangup", b""), ("garbage", b"SSH-2.0-OpenSSH_9.6\r\n")):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        raw.append(sock)
        ports[name] = sock.getsockname()[1]

        def serve(sock: socket.socket = sock, reply: bytes = reply) -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                conn.recv(1000)
                conn.sendall(reply)
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
    yield ports
    for srv in made:
        srv.shutdown()
        srv.server_close()
    for sock in raw:
        sock.close()


def test_every_kind_of_reading_in_one_call_costs_one_timeout(servers: dict[str, int]) -> None:
    names = ["ok", "unhealthy", "refused", "wedged", "hangup", "garbage", "wedged", "ok"]
    begin = time.monotonic()
    readings = health_many([("127.0.0.1", servers[n]) for n in names], timeout=1.0)
    took = time.monotonic() - begin
    got = {n: r for n, r in zip(names, readings, strict=True)}
    assert [r.state for r in readings] == ["ok", "unhealthy", "refused", "timeout", "error",
                                           "error", "timeout", "ok"], readings
    assert got["ok"].code == 200 and got["ok"].latency is not None
    assert got["unhealthy"].code == 503 and "engine dead" in got["unhealthy"].detail
    assert got["wedged"].detail == "no answer within 1 s"
    assert "without an answer" in got["hangup"].detail
    assert got["garbage"].detail == "not an HTTP answer"
    assert 1.0 <= took < 1.9, took  # two wedged servers cost one timeout between them


def test_agrees_with_the_single_check(servers: dict[str, int]) -> None:
    for name in ("ok", "unhealthy", "refused"):
        one = health(f"http://127.0.0.1:{servers[name]}", timeout=0.5)
        many = health_many([("127.0.0.1", servers[name])], timeout=0.5)[0]
        assert (one.state, one.code) == (many.state, many.code)
    assert health_many([], timeout=0.5) == []


def test_localhost_by_name_and_an_unknown_host(servers: dict[str, int]) -> None:
    ok, unknown = health_many([("localhost", servers["ok"]), ("no-such-host.invalid", 80)],
                              timeout=2.0)
    assert ok.state == "ok"  # even where localhost is ::1 first: its next address is tried
    assert unknown.state == "error"


def test_a_host_with_two_addresses_falls_back_to_the_second(servers: dict[str, int], monkeypatch) -> None:
    """A resolver STAND-IN (monkeypatched getaddrinfo) gives a name two addresses, the first
    refusing, as `localhost` -> ::1, 127.0.0.1 does where the server listens on IPv4 only."""
    first = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", servers["refused"]))
    second = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", servers["ok"]))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [first, second])
    reading = health_many([("two-addresses.test", 1)], timeout=1.0)[0]
    assert reading.state == "ok"
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [first])
    assert health_many([("one-address.test", 1)], timeout=1.0)[0].state == "refused"
