"""A tunnel's state, derived (never stored) from its tmux session, the supervisor's log,
the process table and a real connection through the forward."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vllmtui.core.net import base_url
from vllmtui.core.tmux import SessionInfo
from vllmtui.profiles.tunnel_spec import Tunnel
from vllmtui.tunnels import supervisor as sup

STATES = ("up", "connecting", "target-down", "failed", "down")


@dataclass(frozen=True)
class LogReading:
    """What the supervisor's log says about the latest ssh attempt."""

    attempt: int = 0
    ssh_running: bool = False  # started and not exited, per the log
    retrying: bool = False
    retry_in: float | None = None
    gave_up: str | None = None
    lines: tuple[str, ...] = ()  # ssh's lines of the latest attempt
    previous: sup.Diagnosis | None = None  # why the attempt before failed
    stopped: str | None = None  # the supervisor was stopped (signal), e.g. Ctrl-C in its pane

    @property
    def diagnosis(self) -> sup.Diagnosis | None:
        return sup.diagnose(self.lines) or self.previous

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def read_log(path: Path, tail: int = 64 << 10) -> LogReading:
    """Parse the end of a tunnel's log (see tunnel_supervisor's event lines)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - tail))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return LogReading()
    events = [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]
    ups = [i for i, e in enumerate(events) if e.startswith(sup.EV_UP)]
    if ups:  # only this run of the tunnel counts
        events = events[ups[-1] + 1:]
    starts = [i for i, e in enumerate(events) if e.startswith(sup.EV_STARTED)]
    if not starts:
        return LogReading()
    last = starts[-1]
    before = starts[-2] if len(starts) > 1 else None
    current = events[last:]
    ssh_lines = tuple(e[5:] for e in current if e.startswith("ssh: "))
    previous = None
    if before is not None:
        previous = sup.diagnose(e[5:] for e in events[before:last] if e.startswith("ssh: "))
    attempt = 0
    with contextlib.suppress(ValueError, IndexError):
        attempt = int(events[last].split("attempt ", 1)[1].split(",")[0])
    exited = any(e.startswith(sup.EV_EXITED) for e in current)
    retry_in = None
    for e in current:
        if e.startswith(sup.EV_RETRY):
            with contextlib.suppress(ValueError, IndexError):
                retry_in = float(e[len(sup.EV_RETRY):].split()[0])
    gave_up = next((e.split(": ", 2)[-1] for e in current if e.startswith(sup.EV_GAVE_UP)), None)
    stopped = next((e for e in current if e.startswith(sup.EV_STOPPED)), None)
    return LogReading(attempt, not exited and not stopped, retry_in is not None, retry_in,
                      gave_up, ssh_lines, previous, stopped)


@dataclass(frozen=True)
class PortCheck:
    """One check through the forward: `ok`, `refused` (nothing listens yet), or `broken`
    (something accepted the connection but the HTTP request failed)."""

    result: str
    detail: str = ""


def check_port(host: str, port: int, path: str | None, timeout: float = 2.0) -> PortCheck:
    """Connect to host:port; with a path, also GET it (a 2xx/3xx/4xx answer proves the
    forward; only 5xx or no answer count as broken)."""
    if path is None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return PortCheck("ok")
        except ConnectionRefusedError:
            return PortCheck("refused", "connection refused")
        except OSError as exc:
            return PortCheck("broken", exc.strerror or str(exc))
    url = base_url(host, port) + path
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.ConnectError as exc:
        return PortCheck("refused", str(exc) or "connection refused")
    except httpx.TimeoutException:
        return PortCheck("broken", f"{path} did not answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return PortCheck("broken", f"{path}: {exc or type(exc).__name__}")
    if response.status_code >= 500:
        return PortCheck("broken", f"{path} answered {response.status_code}")
    return PortCheck("ok", f"{path} answered {response.status_code}")


def derive_tunnel_state(
    session: SessionInfo | None,
    tunnel: Tunnel | None,
    log: LogReading,
    ssh_alive: bool,
    check: PortCheck | None,
) -> tuple[str, str]:
    """(state, detail) from tmux, the log, the process table and a port check. Pure: unit-tested.
    `check` is the port check through the forward (local) or of the target (remote)."""
    if session is None:
        return "down", ""
    why = log.diagnosis
    if session.dead or tunnel is None:
        if session.dead and log.stopped:
            return "down", "stopped in its tmux pane"
        if log.gave_up:
            return "failed", log.gave_up
        if why is not None:
            return "failed", why.reason
        code = session.dead_status
        return "failed", f"ssh exited (status {code})" if code is not None else "not a tunnel session"
    if not ssh_alive:
        if log.retrying:
            reason = why.reason if why else "ssh exited"
            return "failed", f"{reason}; retrying in {log.retry_in:g} s (attempt {log.attempt})"
        return "connecting", "starting ssh"
    if tunnel.direction == "remote":
        if not log.said("remote forward success"):
            step = "authenticated, waiting for the forward" if log.said("Authenticated to") else (
                f"connecting to {tunnel.destination}")
            return "connecting", step
        if check is not None and check.result != "ok":
            return "target-down", (f"forward is up, but {tunnel.target_host}:{tunnel.target_port}"
                                   f" here does not answer: {check.detail}")
        return "up", "forward confirmed by the destination"
    if check is None or check.result == "refused":
        step = "authenticated, opening the forward" if log.said("Authenticated to") else (
            f"connecting to {tunnel.destination}")
        return "connecting", step
    if check.result == "broken":
        return "target-down", (f"ssh forwards, but {tunnel.target_host}:{tunnel.target_port}"
                               f" (seen from {tunnel.destination}) does not answer: {check.detail}")
    return "up", f"verified: {check.detail}" if check.detail else "verified"


@dataclass(frozen=True)
class TunnelStatus:
    """A snapshot of one tunnel."""

    name: str
    state: str
    detail: str = ""
    tunnel: Tunnel | None = None
    session: str | None = None
    pid: int | None = None  # the supervisor (pane) process
    ssh_pid: int | None = None
    started: float | None = None
    attempt: int = 0
    reason: str | None = None  # failure key: auth, refused, local-port, remote-forward ...
    log_path: Path | None = None
    configured: bool = True
    changed: bool = False  # the config now differs from what runs
    taken_at: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.session is not None

    def to_json(self) -> dict[str, Any]:
        t = self.tunnel
        return {
            "name": self.name, "state": self.state, "detail": self.detail,
            "direction": t.direction if t else None,
            "destination": t.destination if t else None,
            "bind": f"{t.bind_address}:{t.bind_port}" if t else None,
            "target": f"{t.target_host}:{t.target_port}" if t else None,
            "profile": t.profile if t else None, "session": self.session, "pid": self.pid,
            "ssh_pid": self.ssh_pid, "started": self.started, "attempt": self.attempt,
            "reason": self.reason, "log": str(self.log_path) if self.log_path else None,
            "configured": self.configured, "changed": self.changed,
        }
