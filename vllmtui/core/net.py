"""Addresses as a client sees them.

A server that binds every interface (`0.0.0.0`, `::`, `*`, or no host at all) is reached by a
client on the same box at the loopback address; `localhost` is pinned to IPv4 loopback so a
client never tries `::1` first. Every place that turns a bind address into an address to
connect to goes through `client_host`."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"
ANY_ADDRESSES = frozenset({"", "*", "0.0.0.0", "::", "localhost"})


def client_host(bind: str | None) -> str:
    """The host a local client connects to for a server (or tunnel) bound to `bind`."""
    return LOOPBACK if bind is None or bind.strip() in ANY_ADDRESSES else bind.strip()


def base_url(bind: str | None, port: int) -> str:
    """`http://HOST:PORT` for a local client; IPv6 literals are bracketed."""
    host = client_host(bind)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
