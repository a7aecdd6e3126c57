"""Servers: start, stop, list and wait for them; status is derived, never stored.

A server is the tmux session `vllmtui-<profile>`. What vllmtui must remember about it is
kept on the session (user options) and in its run directory, so a restarted vllmtui, or
a second one, sees exactly the same thing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.core import procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SESSION_PREFIX, SessionExists, SessionInfo, Tmux
from vllmtui.models import demo as demo_model
from vllmtui.profiles.launch import DEMO_PREFIX, LaunchSpec, preflight, resolve, runtime_python
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers import logs, runs
from vllmtui.servers.endpoint import HealthReading, health_many

STATES = ("stopped", "starting", "ready", "unhealthy", "stopping", "exited", "crashed")
RUNNING_STATES = ("starting", "ready", "unhealthy", "stopping")
LAUNCHER = (
    'f=$1; shift; ok=0; while IFS= read -r line; do [ "$line" = "--go" ] && { ok=1; break; };'
    ' export "$line"; done < "$f"; rm -f "$f";'
    ' [ "$ok" = 1 ] || { echo "vllmtui: launch aborted before start" >&2; exit 111; };'
    ' exec "$@"'
)
Progress = Callable[[str], None]


_Job = tuple[str, SessionInfo | None, bool, str | None, int | None]  # name, session, has profile, host, port


def _health_target(session: SessionInfo | None, host: str | None,
                   port: int | None) -> tuple[str, int] | None:
    """Where to check a server's /health, or None when no check is due (no session, its
    pane is dead, or it is being stopped)."""
    if session is None or session.dead or session.option("stopping"):
        return None
    host = session.option("host") or host
    port = int(session.option("port") or port or 0) or None
    if not port:
        return None
    return ("127.0.0.1" if host in (None, "", "0.0.0.0", "::") else host), port


def session_name(profile: str) -> str:
    return SESSION_PREFIX + profile


@dataclass(frozen=True)
class ServerStatus:
    """Everything known about one server at one moment (a snapshot)."""

    name: str
    state: str
    phase: str | None = None
    detail: str = ""
    session: str | None = None
    host: str | None = None
    port: int | None = None
    pid: int | None = None
    started: float | None = None
    run_dir: Path | None = None
    exit_status: int | None = None
    failure: logs.Failure | None = None
    health: HealthReading | None = None
    eta: float | None = None
    time_to_ready: float | None = None
    has_profile: bool = True
    taken_at: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def uptime(self) -> float | None:
        return None if self.started is None else max(0.0, self.taken_at - self.started)

    @property
    def phase_label(self) -> str | None:
        return logs.PHASE_LABELS.get(self.phase) if self.phase else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "phase": self.phase,
            "phase_label": self.phase_label,
            "detail": self.detail,
            "session": self.session,
            "host": self.host,
            "port": self.port,
            "pid": self.pid,
            "started": self.started,
            "uptime": None if self.uptime is None else round(self.uptime, 1),
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "exit_status": self.exit_status,
            "failure": None
            if self.failure is None
            else {"key": self.failure.key, "line": self.failure.line, "hint": self.failure.hint},
            "health": None if self.health is None else self.health.state,
            "eta": self.eta,
            "time_to_ready": self.time_to_ready,
            "has_profile": self.has_profile,
        }


def derive_state(
    session: SessionInfo | None, reading: HealthReading | None, log: logs.LogState
) -> tuple[str, str]:
    """(state, detail) from what tmux, /health and the log say. Pure: unit-tested."""
    if session is None:
        return "stopped", ""
    if session.dead:
        code = session.dead_status
        how = f"exit status {code}" if code is not None else "exited"
        if session.dead_signal:
            how = f"killed by signal {session.dead_signal}"
        if session.option("stopping"):
            return "exited", f"stopped ({how})"
        if log.failure is not None or (code not in (None, 0)) or session.dead_signal:
            return "crashed", log.failure.line if log.failure else how
        return "exited", how
    if session.option("stopping"):
        return "stopping", "stop requested"
    if reading is None:
        return "starting", "waiting for the first health check"
    if reading.state == "ok":
        return "ready", ""
    if reading.state == "unhealthy":
        return "unhealthy", f"/health answered {reading.code}"
    if reading.state == "timeout":
        return "unhealthy", f"/health: {reading.detail} (wedged?)"
    if reading.state == "refused":
        if log.phase == "ready":
            return "unhealthy", "was ready, now refuses connections"
        if log.failure is not None and log.failure.key != "error":
            return "unhealthy", log.failure.line
        return "starting", logs.PHASE_LABELS.get(log.phase or "importing", "importing")
    return "unhealthy", reading.detail


@dataclass(frozen=True)
class StartResult:
    name: str
    session: str
    run_dir: Path
    spec: LaunchSpec
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopResult:
    name: str
    method: str  # graceful | sigterm | sigkill | force | already-exited
    seconds: float
    signalled: tuple[procs.ProcInfo, ...] = ()
    left: tuple[procs.ProcInfo, ...] = ()
    exit_status: int | None = None

    def summary(self) -> str:
        how = {
            "graceful": "stopped gracefully (SIGINT)",
            "sigterm": "did not stop on SIGINT; stopped by SIGTERM",
            "sigkill": "did not stop on SIGINT or SIGTERM; killed (SIGKILL)",
            "force": f"force-stopped: killed {len(self.signalled)} process(es)",
            "already-exited": "had already exited; session removed",
        }[self.method]
        text = f"{self.name}: {how} in {self.seconds:.1f} s"
        if self.left:
            text += "; STILL RUNNING: " + ", ".join(f"{p.pid} {p.title}" for p in self.left)
        else:
            text += "; nothing left behind"
        return text


class Fleet:
    """The servers of one tmux server and one state directory."""

    def __init__(self, settings: Settings, tmux: Tmux | None = None):
        self.settings = settings
        self.tmux = tmux or Tmux(settings.tmux_socket)
        self._logs: dict[Path, tuple[int, logs.LogState]] = {}
        self._ready: dict[Path, float] = {}  # run dir -> time to ready, once recorded

    # ------------------------------------------------------------ reading

    def server_sessions(self) -> list[SessionInfo]:
        return [s for s in self.tmux.sessions() if s.option("kind") in (None, "server")]

    def log_state(self, path: Path) -> logs.LogState:
        """The log's phase/failure, read incrementally: each call reads only new bytes."""
        offset, state = self._logs.get(path, (0, logs.LogState()))
        if offset == 0 and path.exists() and path.stat().st_size > (16 << 20):
            state = logs.scan(path)
            offset = path.stat().st_size
        else:
            lines, offset = logs.read_lines_from(path, offset)
            for line in lines:
                state.feed(logs.clean_line(line))
        self._logs[path] = (offset, state)
        return state

    def _status(
        self,
        name: str,
        session: SessionInfo | None,
        has_profile: bool,
        host: str | None,
        port: int | None,
        reading: HealthReading | None,
    ) -> ServerStatus:
        """`reading`: the server's /health reading (None: no check was due), taken for all
        servers at once by `_statuses`."""
        run_dir: Path | None = None
        started: float | None = None
        if session is not None:
            rd = session.option("run-dir")
            run_dir = Path(rd) if rd else None
            started = float(session.option("started") or session.created)
            host = session.option("host") or host
            port = int(session.option("port") or port or 0) or None
        else:
            latest = runs.latest_run(self.settings, name)
            run_dir = latest.path if latest else None
        # a stopped server's old log says nothing about now: do not read it
        log = self.log_state(run_dir / runs.LOG) if run_dir and session else logs.LogState()
        state, detail = derive_state(session, reading, log)
        ttr = eta = None
        if run_dir is not None:
            ttr = self._time_to_ready(run_dir)
            if state == "ready" and ttr is None and started is not None and run_dir.exists():
                # when the log says it became ready (vLLM's own timestamps), else now
                seen = time.time()
                if log.ready_stamp:
                    logged = logs.stamp_to_epoch(log.ready_stamp, seen)
                    # the stamp has 1 s resolution: ready fell in [logged, logged + 1),
                    # and after the start; take the middle of what is left of that second
                    if logged is not None:
                        low, high = max(logged, started), min(logged + 1, seen)
                        if low <= high:
                            seen = (low + high) / 2
                runs.record_ready(run_dir, started, seen)
                ttr = round(seen - started, 2)
        if state == "starting":
            estimate = runs.ready_estimate(self.settings, name)
            if estimate is not None and started is not None:
                eta = max(0.0, estimate - (time.time() - started))
        return ServerStatus(
            name=name,
            state=state,
            phase=log.phase if state == "starting" else None,
            detail=detail,
            session=session.name if session else None,
            host=host,
            port=port,
            pid=session.pane_pid if session else None,
            started=started if session else None,
            run_dir=run_dir,
            exit_status=session.dead_status if session and session.dead else None,
            failure=log.failure if state in ("crashed", "unhealthy") else None,
            health=reading,
            eta=eta,
            time_to_ready=ttr,
            has_profile=has_profile,
        )

    def _time_to_ready(self, run_dir: Path) -> float | None:
        """A run's recorded time to ready; once known it never changes, so it is kept."""
        if run_dir not in self._ready:
            run = runs.read_run(run_dir)
            if run is None or run.time_to_ready is None:
                return None
            self._ready[run_dir] = run.time_to_ready
        return self._ready[run_dir]

    def statuses(self, profiles: list[LoadedProfile] | None = None) -> list[ServerStatus]:
        """One status per profile, plus servers whose profile is not found here.
        Health checks run at once (`health_many`), so one wedged server costs one timeout,
        not N, and they cost no thread each."""
        if profiles is None:
            profiles, _ = discover(self.settings)
        sessions = {s.name: s for s in self.server_sessions()}
        jobs: list[_Job] = []
        for loaded in profiles:
            p = loaded.profile
            jobs.append((p.name, sessions.pop(session_name(p.name), None), True, p.host, p.port))
        for sess in sessions.values():
            name = sess.option("profile") or sess.name[len(SESSION_PREFIX) :]
            jobs.append((name, sess, False, None, None))
        return self._statuses(jobs)

    def _statuses(self, jobs: list[_Job]) -> list[ServerStatus]:
        """Statuses of these servers, their /health checked all at once."""
        targets = [_health_target(sess, host, port) for _n, sess, _p, host, port in jobs]
        readings = iter(health_many([t for t in targets if t], self.settings.health_timeout))
        return [self._status(*job, reading=next(readings) if target else None)
                for job, target in zip(jobs, targets, strict=True)]

    def status(self, loaded: LoadedProfile) -> ServerStatus:
        p = loaded.profile
        return self._statuses([(p.name, self.tmux.session(session_name(p.name)), True, p.host, p.port)])[0]

    def status_by_name(self, name: str) -> ServerStatus:
        """Status of a server whose profile may be gone (started elsewhere)."""
        return self._statuses([(name, self.tmux.session(session_name(name)), False, None, None)])[0]

    # ------------------------------------------------------------ start

    def start(
        self,
        loaded: LoadedProfile,
        others: list[LoadedProfile] | None = None,
        on_progress: Progress | None = None,
    ) -> StartResult:
        """Start a server in its own tmux session; refuses (changing nothing) when the
        profile has errors, the server exists or the port is taken."""
        say = on_progress or (lambda _msg: None)
        profile = loaded.profile
        name = session_name(profile.name)
        existing = self.tmux.session(name)
        if existing is not None:
            if not existing.dead:
                raise VllmtuiError(
                    f"{profile.name} is already running (tmux session {name}); stop it first"
                    f" with `vllmtui stop {profile.name}`"
                )
            self._clear_dead(existing)
        problems = preflight(loaded, self.settings, others)
        errors = [p for p in problems if p.level == "error"]
        if errors:
            lines = "\n".join(f"  {p.field}: {p.message}" for p in errors)
            raise UsageError(f"{profile.name} ({loaded.path}) was not started:\n{lines}")
        warnings = tuple(f"{p.field}: {p.message}" for p in problems if p.level == "warning")
        from vllmtui.planner.fitcheck import fit_check

        warnings += tuple(fit_check(loaded, self.settings, fleet=self))
        spec = resolve(profile, self.settings)
        python = runtime_python(profile, self.settings)
        if profile.model.startswith(DEMO_PREFIX) and spec.model_path is not None:
            if not spec.model_path.exists():
                say(f"generating the demo model {spec.model_path}")
            demo_model.ensure_demo_model(
                spec.model_path, demo_model.shape_of(spec.model_path.name), python
            )
        secrets: dict[str, str] = {}
        for target, source in spec.secret_env.items():
            value = os.environ.get(source)
            if not value:
                raise UsageError(f"api_key_env: environment variable {source} is not set")
            secrets[target] = value
        run_dir = runs.create_run(
            self.settings, profile, spec, loaded.path, runs.runtime_vllm_version(python)
        )
        log_path = run_dir / runs.LOG
        fifo = run_dir / ".launch"
        os.mkfifo(fifo, 0o600)
        argv = ["sh", "-c", LAUNCHER, "vllmtui-launch", str(fifo), *spec.argv]
        try:
            self.tmux.new_session(name, argv, spec.env, str(spec.cwd))
        except SessionExists:
            fifo.unlink(missing_ok=True)
            raise VllmtuiError(
                f"{profile.name} was started by someone else a moment ago (tmux session {name})"
            ) from None
        try:
            self.tmux.set_options(
                name,
                {
                    "kind": "server",
                    "profile": profile.name,
                    "host": profile.host,
                    "port": str(profile.port),
                    "run-dir": str(run_dir),
                    "started": f"{time.time():.3f}",
                },
            )
            info = self.tmux.session(name)
            if info and info.pane_pid:
                self.tmux.set_options(name, {"pid": str(info.pane_pid)})
            self.tmux.pipe_to_file(name, str(log_path))
            _release(fifo, secrets)
        except BaseException:
            # never leave a half-started session waiting on its fifo
            self.tmux.kill_session(name)
            fifo.unlink(missing_ok=True)
            raise
        return StartResult(profile.name, name, run_dir, spec, warnings)

    def wait_ready(
        self,
        loaded: LoadedProfile,
        timeout: float = 600.0,
        on_change: Callable[[ServerStatus], None] | None = None,
        interval: float = 0.5,
    ) -> ServerStatus:
        """Poll until ready, crashed, exited or stopped; raises after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: tuple[str, str | None] | None = None
        while True:
            status = self.status(loaded)
            key = (status.state, status.phase)
            if key != last and on_change:
                on_change(status)
            last = key
            if status.state in ("ready", "crashed", "exited", "stopped"):
                return status
            if time.monotonic() >= deadline:
                raise VllmtuiError(
                    f"{status.name} not ready after {timeout:.0f} s (state {status.state},"
                    f" {status.phase_label or status.detail}); it keeps running:"
                    f" `vllmtui logs {status.name}` shows why"
                )
            time.sleep(interval)

    # ------------------------------------------------------------ stop

    def _clear_dead(self, session: SessionInfo) -> None:
        rd = session.option("run-dir")
        if rd and Path(rd).is_dir() and not (Path(rd) / runs.EXIT).exists():
            runs.record_exit(
                Path(rd),
                {"how": "exited", "exit_status": session.dead_status, "signal": session.dead_signal},
            )
        self.tmux.kill_session(session.name)

    def stop(
        self,
        name: str,
        force: bool = False,
        timeout: float | None = None,
        term_timeout: float | None = None,
        on_progress: Progress | None = None,
    ) -> StopResult:
        """Graceful: SIGINT to the pane's process group, a visible countdown, SIGTERM, SIGKILL.
        Forced: collect the whole tree (VLLM:: children included), SIGKILL, verify, remove."""
        say = on_progress or (lambda _msg: None)
        sess_name = session_name(name)
        session = self.tmux.session(sess_name)
        if session is None:
            raise VllmtuiError(f"{name} is not running (no tmux session {sess_name})")
        begin = time.monotonic()
        pane_pid = session.pane_pid or int(session.option("pid") or 0) or None
        tree = procs.tree_of(pane_pid) if pane_pid else []
        if session.dead and not tree:
            self._clear_dead(session)
            return StopResult(name, "already-exited", time.monotonic() - begin, (), (), session.dead_status)
        self.tmux.set_options(sess_name, {"stopping": f"{time.time():.3f}"})
        if force:
            method = "force"
            say(
                "killing "
                + ", ".join(f"{p.pid} ({p.title})" for p in tree)
                + " with SIGKILL"
            )
            self._kill(tree, pane_pid, signal.SIGKILL)
            left = self._wait_gone(tree, 5.0)
        else:
            loaded_timeout, loaded_term = timeout, term_timeout
            if loaded_timeout is None or loaded_term is None:
                from vllmtui.profiles.loading import find_profile

                try:
                    stop_cfg = find_profile(self.settings, name).profile.stop
                    loaded_timeout = loaded_timeout or stop_cfg.timeout
                    loaded_term = loaded_term or stop_cfg.term_timeout
                except VllmtuiError:
                    loaded_timeout = loaded_timeout or 30.0
                    loaded_term = loaded_term or 10.0
            method = "graceful"
            say(f"sending SIGINT (Ctrl-C) to {name}, waiting up to {loaded_timeout:.0f} s")
            self._kill(tree, pane_pid, signal.SIGINT, group_only=True)
            left = self._wait_gone(tree, loaded_timeout, say, "SIGTERM")
            if left:
                method = "sigterm"
                say(f"still running after {loaded_timeout:.0f} s: sending SIGTERM")
                self._kill(left, pane_pid, signal.SIGTERM)
                left = self._wait_gone(left, loaded_term, say, "SIGKILL")
            if left:
                method = "sigkill"
                say(f"still running after SIGTERM: sending SIGKILL to {len(left)} process(es)")
                self._kill(left, pane_pid, signal.SIGKILL)
                left = self._wait_gone(left, 5.0)
        seconds = time.monotonic() - begin
        after = self.tmux.session(sess_name)
        status = after.dead_status if after else None
        rd = session.option("run-dir")
        if rd and Path(rd).is_dir():
            runs.record_exit(
                Path(rd),
                {
                    "how": method,
                    "seconds": round(seconds, 2),
                    "exit_status": status,
                    "left": [p.pid for p in left],
                },
            )
        if not left:
            self.tmux.kill_session(sess_name)
        else:
            self.tmux.unset_option(sess_name, "stopping")
        return StopResult(name, method, seconds, tuple(tree), tuple(left), status)

    @staticmethod
    def _kill(
        targets: list[procs.ProcInfo], pane_pid: int | None, sig: int, group_only: bool = False
    ) -> None:
        groups = {p.pgid for p in targets if p.pgid} | ({pane_pid} if pane_pid else set())
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            if group_only:
                break
        if not group_only:
            procs.signal_all([p.pid for p in targets], sig)

    @staticmethod
    def _wait_gone(
        targets: list[procs.ProcInfo],
        timeout: float,
        say: Progress | None = None,
        next_step: str = "",
    ) -> list[procs.ProcInfo]:
        deadline = time.monotonic() + timeout
        last_tick = None
        while True:
            alive = set(procs.alive([p.pid for p in targets]))
            if not alive:
                return []
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return [p for p in targets if p.pid in alive]
            tick = int(remaining)
            if say and next_step and tick != last_tick:
                say(f"{len(alive)} process(es) still running; {next_step} in {tick + 1} s")
                last_tick = tick
            time.sleep(0.1)

    # ------------------------------------------------------------ orphans

    def owned_pids(self) -> set[int]:
        everything = procs.all_processes()
        owned: set[int] = set()
        for sess in self.tmux.sessions():
            pid = sess.pane_pid or int(sess.option("pid") or 0)
            if pid and not sess.dead:
                owned |= {p.pid for p in procs.tree_of(pid, everything)}
        return owned

    def orphans(self) -> list[procs.ProcInfo]:
        """vLLM processes that belong to no live server (they may hold a GPU)."""
        return procs.orphans(self.owned_pids())

    def reap(self, on_progress: Progress | None = None) -> tuple[list[procs.ProcInfo], list[procs.ProcInfo]]:
        """SIGKILL every orphan; returns (killed, still alive)."""
        found = self.orphans()
        if on_progress and found:
            on_progress("killing " + ", ".join(f"{p.pid} ({p.title})" for p in found))
        procs.signal_all([p.pid for p in found], signal.SIGKILL)
        return found, self._wait_gone(found, 5.0)


def _release(fifo: Path, secrets: dict[str, str], timeout: float = 10.0) -> None:
    """Hand secrets to the waiting pane through its fifo (never argv, never a file), then
    let it exec vLLM. The fifo is read by the pane and removed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise VllmtuiError(f"the server's pane did not start ({exc.strerror})") from None
            time.sleep(0.02)
    try:
        os.set_blocking(fd, True)
        payload = "".join(f"{k}={v}\n" for k, v in secrets.items()) + "--go\n"
        os.write(fd, payload.encode())
    finally:
        os.close(fd)
