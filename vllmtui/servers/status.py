"""A server's status, derived, never stored: from its tmux session, its /health and its log.

Reading a status changes nothing: no file is written, no session touched. What a run has
recorded (its run directory) is read; what it has not recorded is derived again from the log.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.core.errors import UsageError
from vllmtui.core.net import client_host
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SESSION_PREFIX, SessionInfo, Tmux
from vllmtui.profiles.loading import did_you_mean, discover
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers import failures, image_pull, logs, prepull, runs
from vllmtui.servers.endpoint import HealthReading, health_many

STATES = ("stopped", "starting", "ready", "asleep", "unhealthy", "stopping", "exited", "crashed")
RUNNING_STATES = ("starting", "ready", "asleep", "unhealthy", "stopping")
ASLEEP = "asleep"
"""The session option the gateway sets (to the sleep level) while a server sleeps."""

_Job = tuple[str, SessionInfo | None, bool, str | None, int | None]  # name, session, has profile, host, port


def session_name(profile: str) -> str:
    """The tmux session of a profile's server."""
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
    """A dead pane's exit status as a shell reports it: its own, or 128 + the signal."""
    exit_signal: int | None = None
    """The signal that killed a dead pane's process (SIGKILL: 9), else None."""
    failure: failures.Failure | None = None
    health: HealthReading | None = None
    eta: float | None = None
    time_to_ready: float | None = None
    has_profile: bool = True
    managed_by: str | None = None
    """"gateway" for a server the gateway started (the only ones it may sleep, stop or swap)."""
    restarts: int = 0
    """How many times the gateway's supervisor restarted this server after a crash."""
    taken_at: float = field(default_factory=time.time)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def uptime(self) -> float | None:
        return None if self.started is None else max(0.0, self.taken_at - self.started)

    @property
    def phase_label(self) -> str | None:
        if self.phase in (prepull.PHASE, image_pull.PHASE):  # the pull's own line: how far it is
            return self.detail or self.phase
        return logs.PHASE_LABELS.get(self.phase) if self.phase else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerStatus:
        """The inverse of `to_json` (`status_from_json`)."""
        return status_from_json(data)

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
            "exit_signal": self.exit_signal,
            "managed_by": self.managed_by,
            "restarts": self.restarts,
            "failure": None
            if self.failure is None
            else {"key": self.failure.key, "line": self.failure.line, "hint": self.failure.hint},
            "health": None if self.health is None else self.health.state,
            "eta": self.eta,
            "time_to_ready": self.time_to_ready,
            "has_profile": self.has_profile,
        }


def _path(value: Any) -> Path | None:
    return Path(value) if isinstance(value, str) and value else None


def status_from_json(data: dict[str, Any]) -> ServerStatus:
    """A status as `ServerStatus.to_json` wrote it (another host's vllmtui, over ssh). Fields
    a newer or older vllmtui added or left out take their defaults; the health reading keeps
    only its state."""
    failure = data.get("failure")
    health = data.get("health")
    started = data.get("started")
    uptime = data.get("uptime")
    taken = started + uptime if isinstance(started, int | float) and isinstance(uptime, int | float) else None
    return ServerStatus(
        name=str(data["name"]),
        state=str(data.get("state") or "stopped"),
        phase=data.get("phase"),
        detail=str(data.get("detail") or ""),
        session=data.get("session"),
        host=data.get("host"),
        port=data.get("port"),
        pid=data.get("pid"),
        started=started,
        run_dir=_path(data.get("run_dir")),
        exit_status=data.get("exit_status"),
        exit_signal=data.get("exit_signal"),
        failure=failures.Failure(str(failure.get("key", "")), str(failure.get("line", "")),
                             str(failure.get("hint", ""))) if isinstance(failure, dict) else None,
        health=HealthReading(str(health)) if isinstance(health, str) else None,
        eta=data.get("eta"),
        time_to_ready=data.get("time_to_ready"),
        has_profile=bool(data.get("has_profile", True)),
        managed_by=data.get("managed_by"),
        restarts=int(data.get("restarts") or 0),
        taken_at=taken if taken is not None else time.time(),
    )


def derive_state(
    session: SessionInfo | None, reading: HealthReading | None, log: logs.LogState
) -> tuple[str, str]:
    """(state, detail) from what tmux, /health and the log say. Pure: unit-tested."""
    if session is None:
        return "stopped", ""
    if session.dead:
        return _dead_state(session, log)
    if session.option("stopping"):
        return "stopping", "stop requested"
    if reading is None:
        return "starting", "waiting for the first health check"
    level = session.option(ASLEEP)
    if level and reading.state in ("ok", "timeout"):
        return "asleep", f"sleep level {level}: GPU memory freed; the gateway wakes it on the next request"
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
            # a fatal start failure: vLLM takes seconds to exit after saying why
            return "crashed", log.failure.line
        return "starting", logs.PHASE_LABELS.get(log.phase or "importing", "importing")
    return "unhealthy", reading.detail


def _count(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0


def _dead_state(session: SessionInfo, log: logs.LogState) -> tuple[str, str]:
    """A pane whose process has ended: stopped on request, crashed, or exited by itself."""
    code = session.dead_status
    how = f"exit status {code}" if code is not None else "exit status unknown"
    if session.dead_signal:
        how = f"killed by signal {session.dead_signal}"
    if session.option("stopping"):
        return "exited", f"stopped ({how})"
    # ended by itself, not cleanly (or tmux never got its status: it cannot be called clean)
    if log.failure is not None or code != 0:
        return "crashed", log.failure.line if log.failure else how
    return "exited", how


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
    return client_host(host), port


class StatusReader:
    """Reads the statuses of the servers of one tmux server and one state directory. It keeps
    what it has read (each log's new bytes only; a run's time to ready, once known), never
    writes."""

    def __init__(self, settings: Settings, tmux: Tmux):
        self.settings = settings
        self.tmux = tmux
        self.logs = logs.LogStates()
        self._ready: dict[Path, float] = {}  # run dir -> time to ready, once known
        self._unsettled: set[tuple[str, int | None]] = set()  # dead panes tmux has no status of

    def server_sessions(self) -> list[SessionInfo]:
        """The tmux sessions that are servers (not tunnels or others)."""
        return [s for s in self.tmux.sessions() if s.option("kind") in (None, "server")]

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

    def known_names(
        self, profiles: list[LoadedProfile], broken: list[BrokenProfile]
    ) -> list[str]:
        """Every name a server command can take: profiles (valid or not), servers tmux runs
        (their profile may be gone) and names with runs in the state directory."""
        names = {p.profile.name for p in profiles} | {b.name for b in broken}
        names |= {s.option("profile") or s.name[len(SESSION_PREFIX):] for s in self.server_sessions()}
        with contextlib.suppress(OSError):
            names |= {p.name for p in self.settings.runs_dir.iterdir() if p.is_dir()}
        return sorted(names)

    def check_names(
        self, names: list[str], profiles: list[LoadedProfile], broken: list[BrokenProfile]
    ) -> None:
        """UsageError naming each of `names` that is neither a profile, a server nor has runs."""
        known = self.known_names(profiles, broken)
        unknown = [n for n in dict.fromkeys(names) if n not in known]
        if unknown:
            raise UsageError("\n".join(
                f"no profile or server named {n!r}{did_you_mean(n, known)};"
                " `vllmtui status` lists them" for n in unknown))

    def status(self, loaded: LoadedProfile) -> ServerStatus:
        """The status of a profile's server."""
        p = loaded.profile
        return self._statuses([(p.name, self.tmux.session(session_name(p.name)), True, p.host, p.port)])[0]

    def status_by_name(self, name: str) -> ServerStatus:
        """Status of a server whose profile may be gone (started elsewhere)."""
        return self._statuses([(name, self.tmux.session(session_name(name)), False, None, None)])[0]

    def _statuses(self, jobs: list[_Job]) -> list[ServerStatus]:
        """Statuses of these servers, their /health checked all at once."""
        targets = [_health_target(sess, host, port) for _n, sess, _p, host, port in jobs]
        readings = iter(health_many([t for t in targets if t], self.settings.health_timeout))
        out: list[ServerStatus] = []
        for (name, session, has_profile, host, port), target in zip(jobs, targets, strict=True):
            if session is None:
                out.append(self._stopped(name, has_profile, host, port))
            else:
                reading = next(readings) if target else None
                out.append(self._live(name, session, has_profile, host, port, reading))
        return out

    def _stopped(self, name: str, has_profile: bool, host: str | None, port: int | None) -> ServerStatus:
        """A server without a session: its last run, as that run's directory tells it (a
        stopped server's old log says nothing about now: its phase is not read)."""
        latest = runs.latest_run(self.settings, name)
        return ServerStatus(
            name=name,
            state="stopped",
            host=host,
            port=port,
            run_dir=latest.path if latest else None,
            time_to_ready=latest.time_to_ready if latest else None,
            has_profile=has_profile,
        )

    def _live(
        self,
        name: str,
        session: SessionInfo,
        has_profile: bool,
        host: str | None,
        port: int | None,
        reading: HealthReading | None,
    ) -> ServerStatus:
        """`reading`: the server's /health reading (None: no check was due), taken for all
        servers at once by `_statuses`."""
        session = self._settled(session)
        rd = session.option("run-dir")
        run_dir = Path(rd) if rd else None
        started = float(session.option("started") or session.created)
        log = self.logs.state(run_dir / runs.LOG) if run_dir else logs.LogState()
        state, detail = derive_state(session, reading, log)
        phase = log.phase if state == "starting" else None
        if state == "starting" and log.phase is None:  # not vLLM yet: maybe pulling its model
            pulling = prepull.pulling_detail(run_dir)
            if pulling is not None:
                phase, detail = prepull.PHASE, pulling
            pulling = image_pull.pulling_detail(run_dir)  # a container's image
            if pulling is not None:
                phase, detail = image_pull.PHASE, pulling
        elif state in ("crashed", "exited") and not session.option("stopping"):
            detail = prepull.failed_detail(run_dir) or image_pull.failed_detail(run_dir) or detail
        return ServerStatus(
            name=name,
            state=state,
            phase=phase,
            detail=detail,
            session=session.name,
            host=session.option("host") or host,
            port=int(session.option("port") or port or 0) or None,
            pid=session.pane_pid,
            started=started,
            run_dir=run_dir,
            exit_status=session.exit_code,
            exit_signal=session.dead_signal if session.dead else None,
            failure=log.failure if state in ("crashed", "unhealthy") else None,
            health=reading,
            eta=self._eta(name, started)
            if state == "starting" and phase not in (prepull.PHASE, image_pull.PHASE) else None,
            time_to_ready=self._time_to_ready(run_dir, started, log, state) if run_dir else None,
            has_profile=has_profile,
            managed_by=session.option("managed-by"),
            restarts=_count(session.option("restarts")),
        )

    def _settled(self, session: SessionInfo) -> SessionInfo:
        """A dead pane with its exit status (tmux reports some dead a moment before it knows
        how they ended); waited for once per pane, not at every reading."""
        key = (session.name, session.pane_pid)
        if not session.dead or session.exit_code is not None or key in self._unsettled:
            return session
        settled = self.tmux.settled(session)
        if settled.exit_code is None:
            self._unsettled.add(key)
        return settled

    def _eta(self, name: str, started: float) -> float | None:
        """Seconds left until ready, by the median of the profile's recent runs."""
        estimate = runs.ready_estimate(self.settings, name)
        return None if estimate is None else max(0.0, estimate - (time.time() - started))

    def _time_to_ready(self, run_dir: Path, started: float, log: logs.LogState, state: str) -> float | None:
        """A live run's time to ready, as its run directory says (recorded, else from the
        stamp of its log's readiness line), else, when it is ready now but its log has no
        stamps, from when it was first seen ready. Once known it never changes: it is kept."""
        if run_dir not in self._ready:
            if state != "ready" and not log.ready_stamp:
                return None  # not ready yet (the log says so without reading it again)
            run = runs.read_run(run_dir)
            ttr = run.time_to_ready if run else None
            if ttr is None and state == "ready":
                ttr = round(time.time() - (run.started if run else started), 2)
            if ttr is None:
                return None
            self._ready[run_dir] = ttr
        return self._ready[run_dir]
