"""`Forwards`: a local port for each live server of the other hosts, kept across polls, so a
client here (the metrics scrape, a benchmark) reaches it over the host's ssh connection."""

from __future__ import annotations

import time
from dataclasses import replace

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.net import client_host
from vllmtui.hosts.fleet import HostReading, Hosts
from vllmtui.servers.status import ServerStatus

RETRY = 10.0
"""Seconds before a forward that failed is tried again."""
LIVE = ("ready", "unhealthy")


def endpoint_key(name: str, host: str) -> str:
    """The name a remote server goes by here (the TUI's row key)."""
    return f"{name}@{host}"


class Forwards:
    """One forward per live remote server (its run: a restart on another port gets a new
    one); `update` after each reading returns them as statuses reached from here."""

    def __init__(self) -> None:
        self._ports: dict[str, tuple[str, int]] = {}  # key -> (run dir, local port)
        self._failed: dict[str, float] = {}

    def update(self, hosts: Hosts, readings: dict[str, HostReading]) -> tuple[ServerStatus, ...]:
        out: list[ServerStatus] = []
        live: set[str] = set()
        for host, reading in readings.items():
            for status in reading.statuses:
                if status.state not in LIVE or not status.port:
                    continue
                key = endpoint_key(status.name, host)
                live.add(key)
                port = self._port(hosts, host, key, status)
                if port is not None:
                    out.append(replace(status, name=key, host="127.0.0.1", port=port))
        for gone in [k for k in self._ports if k not in live]:
            del self._ports[gone]  # the control master drops it with the connection
        return tuple(out)

    def _port(self, hosts: Hosts, host: str, key: str, status: ServerStatus) -> int | None:
        run = str(status.run_dir)
        known = self._ports.get(key)
        if known is not None and known[0] == run:
            return known[1]
        if time.monotonic() - self._failed.get(key, -RETRY) < RETRY:
            return None
        try:
            local = hosts.forward(host, int(status.port or 0), client_host(status.host or "127.0.0.1"))
        except VllmtuiError:
            self._failed[key] = time.monotonic()
            return None
        self._ports[key] = (run, local)
        self._failed.pop(key, None)
        return local
