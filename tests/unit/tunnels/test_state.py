"""Tunnel state derivation and the supervisor's log."""

from __future__ import annotations

from pathlib import Path

from tests.support.tunnels import local
from vllmtui.core.tmux import SessionInfo
from vllmtui.tunnels.state import LogReading, PortCheck, derive_tunnel_state, read_log


def session(dead: bool = False, status: int | None = None) -> SessionInfo:
    return SessionInfo("vllmtui-tunnel-t", 0.0, False, 123, dead, status, None, "python",
                       {"kind": "tunnel"})


def test_derive_state() -> None:
    tunnel = local()
    fresh = LogReading(attempt=1, ssh_running=True)
    authed = LogReading(1, True, lines=('Authenticated to box using "publickey".',))
    retry = LogReading(3, False, True, 4.0, lines=("ssh: connect to host b port 22:"
                                                   " Connection refused",))
    assert derive_tunnel_state(None, tunnel, fresh, False, None) == ("down", "")
    assert derive_tunnel_state(session(), tunnel, fresh, True, PortCheck("refused"))[0] == "connecting"
    assert "authenticated" in derive_tunnel_state(session(), tunnel, authed, True, None)[1]
    assert derive_tunnel_state(session(), tunnel, authed, True, PortCheck("ok"))[0] == "up"
    state, detail = derive_tunnel_state(session(), tunnel, authed, True, PortCheck("broken", "x"))
    assert state == "target-down" and "127.0.0.1:8000" in detail
    state, detail = derive_tunnel_state(session(), tunnel, retry, False, None)
    assert state == "failed" and "refused" in detail and "retrying in 4 s (attempt 3)" in detail
    gave_up = LogReading(1, False, gave_up="auth failed: ...")
    assert derive_tunnel_state(session(True, 3), tunnel, gave_up, False, None) == (
        "failed", "auth failed: ...")
    remote = local(direction="remote")
    assert derive_tunnel_state(session(), remote, authed, True, None)[0] == "connecting"
    confirmed = LogReading(1, True, lines=("debug1: remote forward success for: listen 1",))
    assert derive_tunnel_state(session(), remote, confirmed, True, PortCheck("ok"))[0] == "up"


def test_read_log_takes_the_latest_attempt(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    log.write_text(
        "T vllmtui: ssh started (attempt 1, pid 10)\n"
        "T ssh: ssh: connect to host b port 22: Connection refused\n"
        "T vllmtui: ssh exited (status 255) after 0.1 s\nT vllmtui: retry in 1 s\n"
        "T vllmtui: ssh started (attempt 2, pid 11)\nT ssh: debug1: Connecting to b\n"
    )
    reading = read_log(log)
    assert (reading.attempt, reading.ssh_running, reading.retrying) == (2, True, False)
    assert reading.diagnosis is not None and reading.diagnosis.key == "refused"  # the last one
    with log.open("a") as fh:  # a new `up`: what came before no longer counts
        fh.write("T vllmtui: up requested: ssh -N ...\n")
    assert read_log(log) == LogReading()
    assert read_log(tmp_path / "missing.log") == LogReading()
