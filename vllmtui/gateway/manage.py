"""`vllmtui gateway up|down|status`: the gateway is one long-lived process in the tmux session
`vllmtui-gateway` (so it outlives the TUI and the SSH login), found again by that name.

Its environment reaches the pane through a fifo (the servers' launcher), never argv: it holds
the gateway's key and the servers' keys, which the gateway adds to the requests it forwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from vllmtui.core import procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SessionExists, SessionInfo, Tmux
from vllmtui.profiles.gateway_config import LoadedGateway, load_gateway
from vllmtui.profiles.launch import bind_problem
from vllmtui.profiles.loading import ProfileCache, discover
from vllmtui.servers import launcher

SESSION = "vllmtui-gateway"
PROFILES_VAR = "VLLMTUI_GATEWAY_PROFILES"
"""The exact profile directories of whoever ran `gateway up` (the gateway reads no others)."""
UP_TIMEOUT = 20.0
DOWN_TIMEOUT = 10.0
Say = Callable[[str], None]


@dataclass(frozen=True)
class GatewayStatus:
    """What is known of the gateway now: its session, whether it answers, what it serves."""

    state: str  # down | up | starting | unresponsive | dead
    url: str
    detail: str = ""
    pid: int | None = None
    started: float | None = None
    config_path: Path | None = None
    models: tuple[dict[str, Any], ...] = ()
    events: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def uptime(self) -> float | None:
        return None if self.started is None else max(0.0, time.time() - self.started)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "url": self.url, "detail": self.detail, "pid": self.pid,
                "started": self.started, "config": str(self.config_path) if self.config_path else None,
                "models": list(self.models), "events": list(self.events), "problems": list(self.problems)}


def log_path(settings: Settings) -> Path:
    return settings.state_dir / "gateway" / "gateway.log"


def load_checked(settings: Settings) -> LoadedGateway:
    """gateway.yaml, refused (UsageError, every problem on its own line) when it has problems."""
    profiles, broken = discover(settings)
    loaded, problems = load_gateway(settings, profiles, broken)
    if problems:
        raise UsageError("gateway.yaml has problems (nothing was started):\n" + "\n".join(problems))
    return loaded


def gateway_key(loaded: LoadedGateway) -> str | None:
    """The gateway's own key, from the variable `api_key_env` names (None: no key)."""
    name = loaded.config.api_key_env
    if not name:
        return None
    value = os.environ.get(name, "")
    if not value.strip():
        raise UsageError(f"{loaded.where('api_key_env')}: api_key_env: ${name} is not set here:"
                         f" export {name}=<key> before `vllmtui gateway up` (or remove api_key_env"
                         " to run the gateway without a key)")
    return value


def _session(tmux: Tmux) -> SessionInfo | None:
    try:
        return tmux.session(SESSION)
    except VllmtuiError:
        return None


def _get(url: str, key: str | None, timeout: float) -> httpx.Response | None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        return httpx.get(url, headers=headers, timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None


_PROFILES = ProfileCache()
"""The profiles as `gateway_status` last parsed them (the TUI reads the status every few
seconds: 50 profiles parsed each time cost ~1 % of a core)."""


def gateway_status(settings: Settings, timeout: float = 1.0) -> GatewayStatus:
    """The gateway's status: its tmux session, its /health and its /gateway/state."""
    profiles, broken = discover(settings, _PROFILES)
    loaded, problems = load_gateway(settings, profiles, broken)
    config = loaded.config
    tmux = Tmux(settings.tmux_socket)
    session = _session(tmux)
    url = (session.option("url") if session else None) or config.base_url
    common: dict[str, Any] = {"url": url, "config_path": loaded.path, "problems": tuple(problems)}
    if session is None:
        return GatewayStatus("down", detail="not running: `vllmtui gateway up` starts it", **common)
    started = float(session.option("started") or session.created)
    if session.dead:
        how = f"exit status {session.exit_code}" if session.exit_code is not None else "exited"
        last = _last_line(log_path(settings))
        said = f": {last}" if last else ""
        return GatewayStatus("dead", detail=f"the gateway process ended ({how}){said}; `vllmtui gateway up`"
                             " starts it again", pid=None, started=started, **common)
    origin = url.removesuffix("/v1")
    health = _get(origin + "/health", None, timeout)
    if health is None or health.status_code != 200:
        state = "starting" if time.time() - started < UP_TIMEOUT else "unresponsive"
        return GatewayStatus(state, detail="" if state == "starting" else f"{origin}/health does not answer",
                             pid=session.pane_pid, started=started, **common)
    try:
        key = gateway_key(loaded)
    except UsageError:
        key = None
    answer = _get(origin + "/gateway/state", key, timeout)
    models: tuple[dict[str, Any], ...] = ()
    events: tuple[str, ...] = ()
    detail = ""
    if answer is not None and answer.status_code == 200:
        data = answer.json()
        models = tuple(data.get("models", []))
        events = tuple(data.get("events", []))
    elif answer is not None and answer.status_code == 401:
        detail = f"its key is not in this environment (${config.api_key_env}): models not shown"
    return GatewayStatus("up", detail=detail, pid=session.pane_pid, started=started,
                         models=models, events=events, **common)


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def gateway_up(settings: Settings, say: Say | None = None) -> GatewayStatus:
    """Start the gateway in its tmux session; a dead or unresponsive one is replaced, a live
    one is left as it is. Refuses (changing nothing) on a bad gateway.yaml, a missing key or
    a port that is taken."""
    say = say or (lambda _m: None)
    loaded = load_checked(settings)
    config = loaded.config
    key = gateway_key(loaded)
    tmux = Tmux(settings.tmux_socket)
    current = gateway_status(settings)
    if current.state == "up":
        say(f"the gateway is already up at {current.url}")
        return current
    if current.state == "starting":
        return _wait_up(settings, say)
    if current.state in ("dead", "unresponsive"):
        say(f"the gateway was {current.state} ({current.detail}): starting it again")
        _end(tmux, current)
    problem = bind_problem(config.host, config.port)
    if problem:
        where = loaded.where("port") if loaded.exists else str(loaded.path)
        fix = "stop what holds it, or set another `port:`" if problem == "in use" else "fix host:/port:"
        raise UsageError(f"{where}: the gateway cannot listen on {config.host}:{config.port}: {problem};"
                         f" {fix} in gateway.yaml")
    # the whole environment, the servers' keys included: the gateway adds them to what it forwards
    environ = {k: v for k, v in os.environ.items()
               if k not in launcher.NOT_PASSED and launcher._NAME.match(k) and "\n" not in v}
    environ.update(_settings_env(settings))
    if key is not None and config.api_key_env:
        environ[config.api_key_env] = key
    argv = [sys.executable, "-m", "vllmtui.gateway"]
    log = log_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    fifo_dir = Path(tempfile.mkdtemp(prefix="vllmtui-gateway-"))
    fifo = fifo_dir / "env"
    os.mkfifo(fifo, 0o600)
    options = {"kind": "gateway", "url": config.base_url, "started": f"{time.time():.3f}"}
    try:
        try:
            pane = ["/bin/sh", "-c", launcher.LAUNCHER, "vllmtui-gateway", str(fifo), *argv]
            tmux.new_session(SESSION, pane, cwd=os.getcwd(), options=options, pane_env={})
        except SessionExists:
            raise VllmtuiError("someone else started the gateway a moment ago:"
                               " `vllmtui gateway status`") from None
        try:
            with log.open("a") as fh:
                fh.write(f"--- vllmtui gateway up {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            tmux.pipe_to_file(SESSION, str(log))
            launcher.release(fifo, environ)
        except BaseException:
            tmux.kill_session(SESSION)
            raise
    finally:
        shutil.rmtree(fifo_dir, ignore_errors=True)
    say(f"gateway starting in tmux session {SESSION} (log {log})")
    return _wait_up(settings, say)


def settings_from_env() -> Settings:
    """The settings `gateway up` handed the gateway process (`_settings_env`)."""
    base = Settings.from_env()
    dirs = os.environ.get(PROFILES_VAR)
    if dirs is None:
        return base
    return replace(base, profiles_dirs=tuple(Path(p) for p in dirs.split(os.pathsep) if p))


def _settings_env(settings: Settings) -> dict[str, str]:
    env = {
        PROFILES_VAR: os.pathsep.join(str(p) for p in settings.profiles_dirs),
        "VLLMTUI_STATE_DIR": str(settings.state_dir),
        "VLLMTUI_CONFIG_DIR": str(settings.config_dir),
        "VLLMTUI_DATA_DIR": str(settings.data_dir),
    }
    if settings.tmux_socket:
        env["VLLMTUI_TMUX_SOCKET"] = settings.tmux_socket
    return env


def _wait_up(settings: Settings, say: Say) -> GatewayStatus:
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        status = gateway_status(settings)
        if status.state == "up":
            say(f"gateway up at {status.url} ({len(status.models)} models)")
            return status
        if status.state == "dead":
            raise VllmtuiError(f"the gateway did not start: {status.detail}")
        if time.monotonic() > deadline:
            raise VllmtuiError(f"the gateway did not answer within {UP_TIMEOUT:.0f} s ({status.detail});"
                               f" its log: {log_path(settings)}")
        time.sleep(0.1)


def _end(tmux: Tmux, status: GatewayStatus, timeout: float = DOWN_TIMEOUT) -> str:
    """End the gateway's process (SIGINT, then SIGTERM, then SIGKILL) and its session."""
    how = "already ended"
    pid = status.pid
    if pid:
        tree = procs.tree_of(pid)
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and procs.alive([pid]):
                time.sleep(0.05)
            if not procs.alive([pid]):
                how = {signal.SIGINT: "stopped", signal.SIGTERM: "stopped by SIGTERM",
                       signal.SIGKILL: "killed"}[sig]
                break
        procs.signal_all(procs.alive([p.pid for p in tree if p.pid != pid]), signal.SIGKILL)
    tmux.kill_session(SESSION)
    return how


def gateway_down(settings: Settings, say: Say | None = None) -> str:
    """Stop the gateway; the servers it started keep running (`vllmtui stop` stops them)."""
    say = say or (lambda _m: None)
    tmux = Tmux(settings.tmux_socket)
    status = gateway_status(settings)
    if status.state == "down":
        return "the gateway is not running"
    how = _end(tmux, status)
    return f"gateway {how}; the servers it started keep running (`vllmtui status` lists them)"
