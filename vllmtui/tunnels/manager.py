"""SSH tunnels: tmux sessions that outlive the TUI, derived state.

A tunnel is the tmux session `vllmtui-tunnel-<name>` whose pane runs
`python -m vllmtui.tunnels.supervisor`, which runs the system `ssh -N -L/-R ...` and
restarts it with backoff when it drops. The resolved tunnel is stored on the session
(`@vllmtui-spec`), so a restarted vllmtui finds every tunnel again and checks what is
actually running, not what the config says now.

State is derived, never stored: `down` (no session), `connecting`, `up` (verified: for a
local forward, an HTTP request to `/health` through the forwarded port succeeds; for a
remote forward, the destination confirmed it), `target-down` (ssh forwards, but the
server behind it does not answer), `failed` (with the reason from ssh's output, while
the supervisor retries or after it gave up).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from vllmtui.core import procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.net import client_host
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SESSION_PREFIX, SessionExists, SessionInfo, Tmux, client_environ
from vllmtui.profiles.launch import port_in_use, port_owner
from vllmtui.profiles.loading import did_you_mean, discover
from vllmtui.profiles.model import LoadedProfile
from vllmtui.profiles.tunnel_spec import Tunnel
from vllmtui.tunnels.config import configured, port_conflicts, user_tunnels_file
from vllmtui.tunnels.laptop import LaptopCommand, laptop_command, osc52
from vllmtui.tunnels.state import TunnelStatus, check_port, derive_tunnel_state, read_log
from vllmtui.tunnels.supervisor import EV_UP, stamp

__all__ = ["LaptopCommand", "TunnelStatus", "Tunnels", "laptop_command", "osc52"]

TUNNEL_PREFIX = SESSION_PREFIX + "tunnel-"
WAIT_DONE = ("up", "target-down")
Progress = Callable[[str], None]


def session_name(tunnel: str) -> str:
    return TUNNEL_PREFIX + tunnel


@dataclass(frozen=True)
class DownResult:
    name: str
    was_running: bool
    left: tuple[int, ...] = ()


def _ssh_child(pane_pid: int | None) -> int | None:
    if not pane_pid:
        return None
    try:
        for child in psutil.Process(pane_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.status() != psutil.STATUS_ZOMBIE and child.name() == "ssh":
                    return child.pid
    except psutil.Error:
        return None
    return None


class Tunnels:
    """Start, stop, list and check tunnels; the CLI and the TUI both use this."""

    def __init__(self, settings: Settings, tmux: Tmux | None = None):
        self.settings = settings
        self.tmux = tmux or Tmux(settings.tmux_socket)

    @property
    def log_dir(self) -> Path:
        return self.settings.state_dir / "tunnels"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # ------------------------------------------------------------ finding

    def configured(
        self, profiles: list[LoadedProfile] | None = None
    ) -> tuple[list[Tunnel], list[str]]:
        return configured(self.settings, profiles)

    def find(self, name: str, profiles: list[LoadedProfile] | None = None) -> list[Tunnel]:
        """The tunnel called `name`, or every tunnel of the profile called `name`."""
        tunnels, problems = self.configured(profiles)
        exact = [t for t in tunnels if t.name == name]
        if exact:
            return exact
        of_profile = [t for t in tunnels if t.profile == name]
        if of_profile:
            return of_profile
        if any(p.profile.name == name for p in profiles or discover(self.settings)[0]):
            raise UsageError(f"profile {name!r} has no tunnel: add a `tunnels:` entry to it, e.g."
                             " `tunnels: [{destination: gateway, direction: remote}]`"
                             " (see docs/tunnels.md)")
        names = [t.name for t in tunnels]
        where = f"the profiles' `tunnels:` and {user_tunnels_file(self.settings)}"
        extra = ("\n" + "\n".join(problems)) if problems else ""
        raise UsageError(f"no tunnel named {name!r}{did_you_mean(name, names)}; tunnels are"
                         f" configured in {where} (see docs/tunnels.md){extra}")

    def sessions(self) -> dict[str, tuple[SessionInfo, Tunnel | None]]:
        """Running tunnel sessions by tunnel name, with the tunnel each one runs."""
        out = {}
        for sess in self.tmux.sessions():
            if sess.name.startswith(TUNNEL_PREFIX) and sess.option("kind") == "tunnel":
                spec = sess.option("spec")
                name = sess.option("tunnel") or sess.name[len(TUNNEL_PREFIX):]
                out[name] = (sess, Tunnel.from_json(spec) if spec else None)
        return out

    # ------------------------------------------------------------ state

    def _status(self, name: str, session: SessionInfo | None, running: Tunnel | None,
                configured_as: Tunnel | None) -> TunnelStatus:
        tunnel = running or configured_as
        if session is None:
            return TunnelStatus(name, "down", tunnel=tunnel, configured=configured_as is not None)
        session = self.tmux.settled(session)  # a dead pane: with how it ended
        log_file = Path(session.option("log") or self.log_path(name))
        log = read_log(log_file)
        ssh_pid = None if session.dead else _ssh_child(session.pane_pid)
        check = None
        if running is not None and ssh_pid is not None:
            if running.direction == "local":
                check = check_port(client_host(running.bind_address), running.bind_port,
                              running.health_path, self.settings.health_timeout + 1)
            elif running.health_path and log.said("remote forward success"):
                check = check_port(client_host(running.target_host), running.target_port,
                              running.health_path, self.settings.health_timeout + 1)
        state, detail = derive_tunnel_state(session, running, log, ssh_pid is not None, check)
        if state == "failed" and session.dead and log.attempt == 0:
            # the supervisor itself did not run (e.g. its python is gone): its pane says why
            with contextlib.suppress(VllmtuiError):
                said = [ln for ln in self.tmux.capture(session.name, 20)
                        if ln.strip() and not ln.startswith("Pane is dead")]
                if said:
                    detail = f"{detail}: {said[-1].strip()}"
        diagnosis = log.diagnosis
        if diagnosis is not None and diagnosis.key == "local-port" and state == "failed" and running:
            owner = port_owner(running.bind_port)
            if owner:
                detail += f" (held by {owner})"
        started = session.option("started")
        return TunnelStatus(
            name=name, state=state, detail=detail, tunnel=tunnel, session=session.name,
            pid=session.pane_pid, ssh_pid=ssh_pid, started=float(started) if started else None,
            attempt=log.attempt, reason=diagnosis.key if diagnosis and state == "failed" else None,
            log_path=log_file, configured=configured_as is not None,
            changed=configured_as is not None and running is not None and configured_as != running,
        )

    def statuses(self, profiles: list[LoadedProfile] | None = None) -> list[TunnelStatus]:
        """Every configured tunnel and every running one (configured or not). Never raises
        for a broken config: broken entries are simply absent (see `configured`)."""
        tunnels, _ = self.configured(profiles)
        running = self.sessions()
        jobs: list[tuple[str, SessionInfo | None, Tunnel | None, Tunnel | None]] = []
        for tunnel in tunnels:
            sess, spec = running.pop(tunnel.name, (None, None))
            jobs.append((tunnel.name, sess, spec, tunnel))
        for name, (sess, spec) in sorted(running.items()):
            jobs.append((name, sess, spec, None))
        if not jobs:
            return []
        # port checks run concurrently: one wedged forward costs one timeout, not N
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            return list(pool.map(lambda job: self._status(*job), jobs))

    def status(self, name: str, profiles: list[LoadedProfile] | None = None) -> TunnelStatus:
        running = self.sessions().get(name)
        try:
            configured_as: Tunnel | None = self.find(name, profiles)[0]
        except UsageError:
            if running is None:
                raise
            configured_as = None
        sess, spec = running or (None, None)
        return self._status(name, sess, spec, configured_as)

    # ------------------------------------------------------------ up

    def check(self, tunnel: Tunnel, profiles: list[LoadedProfile]) -> list[str]:
        """What stops the tunnel from starting, found before ssh runs (changes nothing)."""
        problems = []
        if shutil.which("ssh") is None:
            problems.append("ssh is not installed: install the OpenSSH client (apt install"
                            " openssh-client)")
        if tunnel.ssh_config and not Path(tunnel.ssh_config).is_file():
            problems.append(f"ssh_config: {tunnel.ssh_config} does not exist")
        servers = {}
        for sess in self.tmux.sessions():
            port = sess.option("port")
            if sess.option("kind") in (None, "server") and port and port.isdigit():
                servers[int(port)] = sess.option("profile") or sess.name
        problems += port_conflicts(tunnel, profiles, servers)
        if tunnel.direction == "local" and not problems:
            host = {"": "0.0.0.0", "*": "0.0.0.0", "localhost": "127.0.0.1"}.get(
                tunnel.bind_address, tunnel.bind_address)
            if port_in_use(host, tunnel.bind_port):
                owner = port_owner(tunnel.bind_port)
                problems.append(
                    f"local port in use: {tunnel.bind_address}:{tunnel.bind_port} is held by"
                    f" {owner or 'another process'}: stop it or pick another bind_port")
        return problems

    def up(self, tunnel: Tunnel, profiles: list[LoadedProfile] | None = None) -> TunnelStatus:
        """Start the tunnel's tmux session (supervisor + ssh). Already running: its status.
        Refuses, changing nothing, when a check fails (port in use, a server's port...)."""
        if profiles is None:
            profiles, _ = discover(self.settings)
        name = session_name(tunnel.name)
        existing = self.tmux.session(name)
        if existing is not None and not existing.dead:
            return self.status(tunnel.name, profiles)
        if existing is not None:
            self.tmux.kill_session(name)
        problems = self.check(tunnel, profiles)
        if problems:
            raise VllmtuiError(f"tunnel {tunnel.name} was not started:\n"
                               + "\n".join(f"  {p}" for p in problems))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path(tunnel.name)
        with log_file.open("a", encoding="utf-8") as fh:  # earlier runs stop counting here
            fh.write(f"{stamp()} {EV_UP}: {' '.join(tunnel.ssh_argv())}\n")
        argv = [sys.executable, "-m", "vllmtui.tunnels.supervisor", "--log", str(log_file),
                "--retry-max", f"{tunnel.retry_max:g}"]
        if not tunnel.reconnect:
            argv.append("--no-reconnect")
        # the pane's whole environment: ssh's (agent, home, locale), none of the tmux server's
        pane_env = client_environ(extra=("PYTHONPATH",))
        options = {
            "kind": "tunnel", "tunnel": tunnel.name, "spec": tunnel.to_json(),
            "log": str(log_file), "host": tunnel.bind_address, "port": str(tunnel.bind_port),
            "started": f"{time.time():.3f}",
        }
        if tunnel.profile:
            options["profile"] = tunnel.profile
        try:
            self.tmux.new_session(name, [*argv, "--", *tunnel.ssh_argv()], None,
                                  str(self.log_dir), options=options, pane_env=pane_env)
        except SessionExists:
            raise VllmtuiError(f"tunnel {tunnel.name} was started by someone else a moment ago"
                               f" (tmux session {name})") from None
        return self.status(tunnel.name, profiles)

    def wait(self, name: str, timeout: float = 20.0, interval: float = 0.25,
             on_change: Callable[[TunnelStatus], None] | None = None) -> TunnelStatus:
        """Poll until up / target-down, until it gave up (pane dead), or `timeout` s."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            status = self.status(name)
            key = (status.state, status.detail.split(";")[0])
            if key != last and on_change:
                on_change(status)
            last = key
            dead = status.state == "failed" and "retrying" not in status.detail
            if status.state in WAIT_DONE or status.state == "down" or dead:
                return status
            if time.monotonic() >= deadline:
                return status
            time.sleep(interval)

    # ------------------------------------------------------------ down

    def down(self, name: str) -> DownResult:
        """Stop the tunnel: remove its session (the supervisor stops ssh), then make sure
        no ssh of it is left (SIGKILL what still runs after 5 s)."""
        sess_name = session_name(name)
        session = self.tmux.session(sess_name)
        if session is None:
            return DownResult(name, False)
        tree = procs.tree_of(session.pane_pid) if session.pane_pid and not session.dead else []
        self.tmux.kill_session(sess_name)
        pids = [p.pid for p in tree]
        deadline = time.monotonic() + 5.0
        while procs.alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = procs.alive(pids)
        if left:
            procs.signal_all(left, signal.SIGKILL)
            time.sleep(0.1)
            left = procs.alive(left)
        return DownResult(name, True, tuple(left))

    def toggle(self, name: str) -> list[TunnelStatus]:
        """The `T` key: a tunnel (or a profile's tunnels) goes down when any is running,
        up otherwise. Returns the new statuses (not waiting for `up`)."""
        profiles, _ = discover(self.settings)
        running = self.sessions()
        try:
            tunnels = self.find(name, profiles)
        except UsageError:
            if name not in running:
                raise
            self.down(name)
            return [self.status(name, profiles)] if name in self.sessions() else [
                TunnelStatus(name, "down", configured=False)]
        if any(t.name in running for t in tunnels):
            for t in tunnels:
                self.down(t.name)
            return [self._status(t.name, None, None, t) for t in tunnels]
        return [self.up(t, profiles) for t in tunnels]
