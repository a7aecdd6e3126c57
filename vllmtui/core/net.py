"""Addresses as a client sees them.

A server (or tunnel end) that binds every interface (`0.0.0.0`, `*`, or no host at all) is
reached by a client on the same box at the IPv4 loopback address, one bound to every IPv6
interface (`::`) at `::1` (that works whether or not the socket also takes IPv4);
`localhost` is pinned to IPv4 loopback so a client never tries `::1` first. Every place that
turns a bind address into an address to connect to goes through `client_host`."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
ANY_ADDRESSES = frozenset({"", "*", "0.0.0.0", "localhost"})


def client_host(bind: str | None) -> str:
    """The host a local client connects to for a server (or tunnel) bound to `bind`."""
    host = "" if bind is None else bind.strip()
    if host == "::":
        return LOOPBACK6
    return LOOPBACK if host in ANY_ADDRESSES else host


def bracketed(host: str) -> str:
    """`[::1]` for an IPv6 literal, as URLs and ssh forward specs write it; other hosts as
    they are."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def base_url(bind: str | None, port: int) -> str:
    """`http://HOST:PORT` for a local client of a server bound to `bind`."""
    return f"http://{bracketed(client_host(bind))}:{port}"
