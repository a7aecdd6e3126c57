"""Tunnels against a real OpenSSH server on loopback (tests/support/sshd.py), a real tmux
server on the test's own socket and real HTTP servers behind the forwards."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.support.helpers import ROOT, free_port, wait_for
from tests.support.sshd import Sshd, sshd  # noqa: F401 - the fixture
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.servers.fleet import Fleet
from vllmtui.tunnels.manager import Tunnels, TunnelStatus, session_name


class HttpTarget:
    """A real HTTP server: /health answers ok, /who answers this server's token."""

    def __init__(self) -> None:
        self.port = free_port()
        self.token = f"target-{self.port}"
        token = self.token

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = {"/health": b"ok", "/who": token.encode()}.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    server = HttpTarget()
    yield server
    server.close()


@pytest.fixture
def write_tunnels(settings: Settings, sshd: Sshd) -> Callable[..., None]:  # noqa: F811
    """Write <config_dir>/tunnels.yaml; every tunnel uses the test sshd's client config."""

    def write(*tunnels: dict[str, object]) -> None:
        items = [{"ssh_config": str(sshd.client_config), **t} for t in tunnels]
        settings.config_dir.mkdir(parents=True, exist_ok=True)
        (settings.config_dir / "tunnels.yaml").write_text(yaml.safe_dump({"tunnels": items}))

    return write


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def until(tunnels: Tunnels, name: str, pred: Callable[[TunnelStatus], bool], timeout: float,
          what: str) -> TunnelStatus:
    """Poll the tunnel's status until `pred` holds (with a deadline); returns that status."""
    found: list[TunnelStatus] = []

    def check() -> bool:
        status = tunnels.status(name)
        if pred(status):
            found.append(status)
        return bool(found)

    wait_for(check, timeout, what=what)
    return found[-1]


def in_state(*states: str) -> Callable[[TunnelStatus], bool]:
    return lambda status: status.state in states


def test_local_tunnel_up_traffic_down_and_up_again(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None], run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    bind = free_port()
    write_tunnels({"name": "web", "destination": "box", "bind_port": bind,
                   "target_port": target.port})
    up = run_cli("tunnel", "up", "web", check=True)
    assert "web: up" in up.stdout
    assert get(bind, "/who").text == target.token  # through ssh, to the real server
    tunnels = Tunnels(settings)
    status = tunnels.status("web")
    assert status.state == "up" and status.session == session_name("web")
    ssh_pid = status.ssh_pid
    assert ssh_pid is not None and sshd.connections()
    argv = psutil.Process(ssh_pid).cmdline()
    for option in ("BatchMode=yes", "ExitOnForwardFailure=yes", "ServerAliveInterval=15"):
        assert option in argv
    listing = json.loads(run_cli("tunnel", "status", "--json", check=True).stdout)
    assert [(t["name"], t["state"]) for t in listing["tunnels"]] == [("web", "up")]
    assert Fleet(settings).server_sessions() == []  # a tunnel is not a server

    down = run_cli("tunnel", "down", "web", check=True)
    assert "web: down" in down.stdout
    assert tunnels.tmux.session(session_name("web")) is None
    assert not psutil.pid_exists(ssh_pid) or psutil.Process(ssh_pid).status() == "zombie"
    with pytest.raises(httpx.ConnectError):
        get(bind, "/who")
    assert tunnels.status("web").state == "down"

    again = run_cli("tunnel", "up", "web", check=True)
    assert "web: up" in again.stdout
    assert get(bind, "/who").text == target.token
    run_cli("tunnel", "down", "web", check=True)


def test_profile_tunnel_reaches_its_own_server_and_toggles(
    settings: Settings, sshd: Sshd, standin_profile: Callable[..., Path],  # noqa: F811
) -> None:
    """A profile's tunnel needs no target: it forwards to the profile's server (here the
    stand-in server, started through Fleet like any server)."""
    bind = free_port()
    path = standin_profile("web", tunnels=[{"destination": "box", "bind_port": bind,
                                            "ssh_config": str(sshd.client_config)}])
    from vllmtui.profiles.loading import load_profile_file

    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    fleet.start(loaded)
    tunnels = Tunnels(settings)
    [started] = tunnels.toggle("web")  # the `T` key on the profile's row
    assert started.tunnel is not None and started.tunnel.target_port == loaded.profile.port
    # while the server is still starting, ssh forwards but nothing answers: target-down
    until(tunnels, "web", in_state("up"), 30, "the tunnel to the server")
    assert get(bind, "/health").status_code == 200
    assert get(bind, "/v1/models").json()["data"][0]["id"] == "standin-model"
    assert [s.name for s in fleet.statuses()] == ["web"]  # the tunnel is not a server row
    [stopped] = tunnels.toggle("web")
    assert stopped.state == "down" and tunnels.tmux.session(session_name("web")) is None
    fleet.stop("web", force=True)


def test_local_tunnel_to_a_stopped_server_is_target_down(
    settings: Settings, sshd: Sshd, write_tunnels: Callable[..., None],  # noqa: F811
) -> None:
    bind, nothing = free_port(), free_port()
    write_tunnels({"name": "t", "destination": "box", "bind_port": bind, "target_port": nothing})
    tunnels = Tunnels(settings)
    tunnels.up(tunnels.find("t")[0])
    status = until(tunnels, "t", in_state("target-down"), 20, "target-down")
    assert f"127.0.0.1:{nothing}" in status.detail
    tunnels.down("t")


def test_remote_tunnel_hands_a_local_server_to_the_destination(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None],
) -> None:
    remote_port = free_port()
    write_tunnels({"name": "gw", "direction": "remote", "destination": "box",
                   "bind_port": remote_port, "target_port": target.port})
    tunnels = Tunnels(settings)
    tunnels.up(tunnels.find("gw")[0])
    status = tunnels.wait("gw", timeout=20)
    assert status.state == "up" and "confirmed" in status.detail
    # the destination (sshd on loopback) listens on remote_port and forwards back here
    assert get(remote_port, "/who").text == target.token
    # Ctrl-C in the tunnel's pane (someone attached to it) stops it for good
    tunnels.tmux.send_keys(session_name("gw"), "C-c")
    stopped = until(tunnels, "gw", in_state("down"), 10, "Ctrl-C to stop it")
    assert stopped.detail == "stopped in its tmux pane"
    assert not psutil.pid_exists(status.ssh_pid or 0)
    tunnels.down("gw")


def test_remote_forward_failure_is_reported_from_ssh(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None],
) -> None:
    with socket.socket() as holder:  # the destination's port is taken
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        write_tunnels({"name": "gw", "direction": "remote", "destination": "box",
                       "bind_port": taken, "target_port": target.port, "reconnect": False})
        tunnels = Tunnels(settings)
        tunnels.up(tunnels.find("gw")[0])
        status = tunnels.wait("gw", timeout=20)
    assert status.state == "failed"
    assert status.reason == "remote-forward"
    assert f"remote port forwarding failed: port {taken}" in status.detail
    tunnels.down("gw")


def test_sshd_stopped_then_back_reconnects(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None],
) -> None:
    bind = free_port()
    write_tunnels({"name": "web", "destination": "box", "bind_port": bind,
                   "target_port": target.port, "retry_max": 1})
    tunnels = Tunnels(settings)
    tunnels.up(tunnels.find("web")[0])
    assert tunnels.wait("web", timeout=20).state == "up"
    first_ssh = tunnels.status("web").ssh_pid

    sshd.stop()
    lost = until(tunnels, "web", in_state("failed", "connecting"), 10, "the tunnel to notice sshd is gone")
    assert lost.state in ("failed", "connecting")
    failed = until(tunnels, "web", lambda s: s.state == "failed" and s.reason in (
        "closed", "refused"), 10, "a failure reason")
    assert "retrying" in failed.detail
    with pytest.raises(httpx.HTTPError):
        get(bind, "/who")

    sshd.start()
    back = until(tunnels, "web", in_state("up"), 20, "auto-reconnect")
    assert back.ssh_pid != first_ssh and back.attempt > 1
    assert get(bind, "/who").text == target.token
    tunnels.down("web")


def test_a_frozen_server_is_noticed_by_keepalives(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None],
) -> None:
    """sshd stops answering without closing anything (a hung box, a dead network path):
    ssh's keepalives notice, the tunnel turns failed, and it reconnects afterwards."""
    bind = free_port()
    write_tunnels({"name": "web", "destination": "box", "bind_port": bind,
                   "target_port": target.port, "retry_max": 1,
                   "ssh_options": {"ServerAliveInterval": 1, "ServerAliveCountMax": 2}})
    tunnels = Tunnels(settings)
    tunnels.up(tunnels.find("web")[0])
    assert tunnels.wait("web", timeout=20).state == "up"
    frozen = sshd.connections()
    for proc in frozen:
        proc.suspend()
    try:
        failed = until(tunnels, "web", lambda s: s.reason == "timeout", 15,
                       "keepalives to give up")
        assert failed.state == "failed" and "stopped answering keepalives" in failed.detail
    finally:
        for proc in frozen:
            proc.resume()
    until(tunnels, "web", in_state("up"), 20, "reconnect")
    assert get(bind, "/who").text == target.token
    tunnels.down("web")


@pytest.mark.parametrize(
    ("fields", "reason", "words", "retrying"),
    [
        ({"destination": "box-badkey"}, "auth", "auth failed", False),
        ({"destination": "box-nothing"}, "refused", "refused the connection", True),
        ({"destination": "nosuch.invalid"}, "resolve", "cannot resolve nosuch.invalid", False),
        ({"destination": "box", "ssh_options": {"NoSuchOption": "1"}}, "config",
         "ssh rejected its options", False),
    ],
)
def test_bad_destination_fails_with_ssh_reason(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None],
    fields: dict[str, object], reason: str, words: str, retrying: bool,
) -> None:
    write_tunnels({"name": "bad", "bind_port": free_port(), "target_port": target.port,
                   **fields})
    tunnels = Tunnels(settings)
    tunnels.up(tunnels.find("bad")[0])
    status = until(tunnels, "bad", in_state("failed"), 20, "failed")
    assert status.reason == reason and words in status.detail
    session = tunnels.tmux.session(session_name("bad"))
    assert session is not None
    # permanent failures stop retrying (the pane ends); transient ones keep retrying
    if retrying:  # transient: the supervisor keeps trying with backoff
        until(tunnels, "bad", lambda s: "retrying in" in s.detail, 10, "a retry")
    else:  # permanent: the supervisor gives up and its pane ends
        wait_for(lambda: (s := tunnels.tmux.session(session_name("bad"))) is not None and s.dead,
                 10, what="the supervisor to give up")
    tunnels.down("bad")


def test_port_in_use_is_reported_before_ssh_starts(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None], run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        write_tunnels({"name": "web", "destination": "box", "bind_port": port,
                       "target_port": target.port})
        tunnels = Tunnels(settings)
        with pytest.raises(VllmtuiError) as err:
            tunnels.up(tunnels.find("web")[0])
        assert f"127.0.0.1:{port} is held by pid {os.getpid()}" in str(err.value)
        assert tunnels.tmux.session(session_name("web")) is None  # ssh never ran
        cli = run_cli("tunnel", "up", "web")
    assert cli.returncode == 1 and "local port in use" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_tunnel_port_never_takes_a_server_port(
    settings: Settings, sshd: Sshd, standin_profile: Callable[..., Path],  # noqa: F811
    write_tunnels: Callable[..., None],
) -> None:
    server_port = yaml.safe_load(standin_profile("srv").read_text())["port"]
    write_tunnels({"name": "clash", "destination": "box", "bind_port": server_port,
                   "profile": "srv"})
    tunnels = Tunnels(settings)
    with pytest.raises(VllmtuiError, match=f"port {server_port} is the server port of profile 'srv'"):
        tunnels.up(tunnels.find("clash")[0])
    assert tunnels.tmux.session(session_name("clash")) is None


def test_tunnel_survives_a_killed_vllmtui(
    settings: Settings, sshd: Sshd, target: HttpTarget,  # noqa: F811
    write_tunnels: Callable[..., None], cli_env: dict[str, str],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A vllmtui process starts the tunnel and is SIGKILLed with its whole process group;
    the tunnel keeps forwarding and a new vllmtui finds it again."""
    bind = free_port()
    write_tunnels({"name": "web", "destination": "box", "bind_port": bind,
                   "target_port": target.port})
    script = textwrap.dedent("""
        import sys, time
        from vllmtui.core.settings import Settings
        from vllmtui.tunnels.manager import Tunnels
        tunnels = Tunnels(Settings.from_env())
        tunnels.up(tunnels.find("web")[0])
        print(tunnels.wait("web", timeout=20).state, flush=True)
        time.sleep(600)
    """)
    app = subprocess.Popen([sys.executable, "-c", script], env=cli_env, cwd=ROOT,
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "up"
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait()
    assert get(bind, "/who").text == target.token
    listing = json.loads(run_cli("tunnel", "status", "web", "--json", check=True).stdout)
    assert listing["tunnels"][0]["state"] == "up"
    run_cli("tunnel", "down", "web", check=True)
