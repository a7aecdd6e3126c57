"""Servers: start, stop, wait for them, and the orphans they leave; their status is derived
(`status`), never stored.

A server is the tmux session `vllmtui-<profile>`. What vllmtui must remember about it is
kept on the session (user options) and in its run directory, so a restarted vllmtui, or
a second one, sees exactly the same thing.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vllmtui.core import containers, procs
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SessionInfo, Tmux
from vllmtui.profiles.launch import LaunchSpec, resolve, runtime_python
from vllmtui.profiles.loading import discover, find_profile
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers import container, image_pull, launcher, prepull, runs, slurm_server
from vllmtui.servers.status import ServerStatus, StatusReader, session_name

Progress = Callable[[str], None]
SERVER_MARK = "VLLMTUI_SERVER"
"""An environment variable each server's processes carry (`tmux socket/name`), so the orphans a
server leaves can be told from anyone else's."""
COUNTDOWN_AFTER = 1.0
"""Seconds a stop waits before it announces its countdown (most stops end sooner)."""


@dataclass(frozen=True)
class StartResult:
    """A server just started: its session, its run and the warnings of its checks."""

    name: str
    session: str
    run_dir: Path
    spec: LaunchSpec
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopResult:
    """How a stop went: the method it took, how long, what was signalled, what is left."""

    name: str
    method: str  # graceful | sigterm | sigkill | force | already-exited
    seconds: float
    signalled: tuple[procs.ProcInfo, ...] = ()
    left: tuple[procs.ProcInfo, ...] = ()
    exit_status: int | None = None

    def summary(self) -> str:
        """One line for the user."""
        how = {
            "graceful": "stopped gracefully (SIGINT)",
            "sigterm": "did not stop on SIGINT; stopped by SIGTERM",
            "sigkill": "did not stop on SIGINT or SIGTERM; killed (SIGKILL)",
            "container-stop": "stopped gracefully (the container engine's stop: SIGTERM)",
            "container-kill": "did not stop on SIGTERM in time; the container engine killed it (SIGKILL)",
            "force": f"force-stopped: killed {len(self.signalled)} process(es)",
            "already-exited": "had already exited; session removed",
            "slurm-cancel": "its Slurm job cancelled (SIGINT first, then scancel)",
        }[self.method]
        text = f"{self.name}: {how} in {self.seconds:.1f} s"
        if self.left:
            text += "; STILL RUNNING: " + ", ".join(f"{p.pid} {p.title}" for p in self.left)
        elif self.signalled and self.method != "force":
            text += f"; {len(self.signalled)} process(es) ended, nothing left behind"
        else:
            text += "; nothing left behind"
        return text


class Fleet:
    """The servers of one tmux server and one state directory."""

    def __init__(self, settings: Settings, tmux: Tmux | None = None):
        self.settings = settings
        self.tmux = tmux or Tmux(settings.tmux_socket)
        self.reader = StatusReader(settings, self.tmux)

    # ------------------------------------------------------------ reading (status.py)

    def server_sessions(self) -> list[SessionInfo]:
        """The tmux sessions that are servers."""
        return self.reader.server_sessions()

    def gpu_sessions(self) -> list[SessionInfo]:
        """The sessions whose processes hold a server's GPUs: the servers', and the nodes' of
        multi-node servers here (kind `node`, option `profile` naming the server)."""
        return [s for s in self.tmux.sessions() if s.option("kind") in (None, "server", "node")]

    def statuses(self, profiles: list[LoadedProfile] | None = None) -> list[ServerStatus]:
        """One status per profile, plus servers whose profile is not found here (a batch
        job's server: read from its job)."""
        if profiles is None:
            profiles, _ = discover(self.settings)
        found = self.reader.statuses(profiles)
        jobs = {p.profile.name: p for p in profiles if p.profile.runtime.slurm is not None}
        return [slurm_server.status(self.settings, jobs[s.name]) if s.name in jobs else s for s in found]

    def status(self, loaded: LoadedProfile) -> ServerStatus:
        """The status of a profile's server."""
        if loaded.profile.runtime.slurm is not None:
            return slurm_server.status(self.settings, loaded)
        return self.reader.status(loaded)

    def _is_job(self, name: str) -> bool:
        """Whether `name`'s profile runs as a Slurm batch job."""
        good, _ = discover(self.settings)
        return any(p.profile.name == name and p.profile.runtime.slurm is not None for p in good)

    def status_by_name(self, name: str) -> ServerStatus:
        """Status of a server whose profile may be gone (started elsewhere)."""
        return self.reader.status_by_name(name)

    def check_names(
        self, names: list[str], profiles: list[LoadedProfile], broken: list[BrokenProfile]
    ) -> None:
        """Refuse (UsageError, did-you-mean) a name that is no profile, server or run history."""
        self.reader.check_names(names, profiles, broken)

    # ------------------------------------------------------------ start

    def start(
        self,
        loaded: LoadedProfile,
        others: list[LoadedProfile] | None = None,
        on_progress: Progress | None = None,
        marks: dict[str, str] | None = None,
        run_notes: dict[str, object] | None = None,
    ) -> StartResult:
        """Start a server in its own tmux session: resolve the launch spec, run the pre-start
        checks, create the run, open the session. Refuses (changing nothing) when the profile
        has errors, the server exists or the port is taken. `marks`: session options set with
        the session (the gateway's `managed-by`, `restarts`); `run_notes`: added to the run's
        launch.json (why the gateway started it)."""
        say = on_progress or (lambda _msg: None)
        profile = loaded.profile
        if profile.nodes:  # several machines: vllmtui.nodes starts each node, then the head's server
            hosts = ", ".join(n.host for n in profile.nodes)
            raise UsageError(f"{profile.name} spans nodes ({hosts}): `vllmtui start {profile.name}` starts"
                             " every node and then its server (docs/multinode.md)")
        if profile.runtime.slurm is not None:
            slurm_server.refuse_running(self.settings, profile.name)  # before its port is checked
        name = self._make_way(profile.name)
        spec = self._launch_spec(loaded)
        warnings = self._pre_start_checks(loaded, others, say)
        # every profile's key stays out of what is not its own server
        profiles = others if others is not None else discover(self.settings)[0]
        keys = launcher.secret_sources([loaded, *profiles])
        helpers = launcher.helper_environ(keys)
        python = runtime_python(profile, self.settings)
        launcher.ensure_demo_model(profile, spec, python, say, env=helpers)
        environ = launcher.server_environ(spec, launcher.secret_values(spec), keys)
        environ[SERVER_MARK] = self.server_mark(profile.name)  # inherited by every vLLM process
        version = runs.runtime_vllm_version(python, env=helpers)
        if profile.runtime.slurm is not None:  # a batch job runs it, not a pane here (docs/slurm.md)
            job, run_dir = slurm_server.start(self.settings, loaded, spec, environ, version)
            say(f"submitted {slurm_server.job_label(job)}; its log is {run_dir / runs.LOG}")
            return StartResult(profile.name, slurm_server.job_label(job), run_dir, spec, warnings)
        step = prepull.pull_step(profile, self.settings, spec)
        if step is not None:  # the pane pulls the model first, then execs vLLM
            say(f"{step.repo} is not (completely) in the cache: the server pulls it first")
            spec = prepull.wrap(spec, step)
        spec, marks = container.prepare(profile, spec, marks)  # a container: its image is pulled first

        def make_run() -> Path:
            run_dir = runs.create_run(self.settings, profile, spec, loaded.path, version, notes=run_notes)
            environ.update(prepull.progress_env(run_dir))  # sent to the pane after this
            environ.update(image_pull.progress_env(run_dir))
            return run_dir

        run_dir = launcher.open_session(self.tmux, name, profile, spec, environ, make_run, marks=marks)
        return StartResult(profile.name, name, run_dir, spec, warnings)

    def _make_way(self, profile: str) -> str:
        """The server's session name; refuses a running server, clears one that has exited."""
        name = session_name(profile)
        existing = self.tmux.session(name)
        if existing is not None:
            if not existing.dead:
                if self.reader.status_by_name(profile).state != "crashed":
                    raise VllmtuiError(
                        f"{profile} is already running (tmux session {name}); stop it first"
                        f" with `vllmtui stop {profile}`"
                    )
                self._end_crashed(existing)  # it said why it failed and is winding down
            self._clear_dead(existing)
        return name

    def _end_crashed(self, session: SessionInfo) -> None:
        """Kill what is left of a server that has crashed but not exited yet (vLLM takes
        seconds to exit after its fatal error), recording that it crashed."""
        pane_pid = session.pane_pid or int(session.option("pid") or 0) or None
        tree = procs.tree_of(pane_pid) if pane_pid else []
        self._kill(tree, pane_pid, signal.SIGKILL)
        container.end(session)  # a container outlives its client: the engine kills it
        self._wait_gone(tree, 5.0)
        rd = session.option("run-dir")
        if rd and Path(rd).is_dir() and not (Path(rd) / runs.EXIT).exists():
            runs.record_exit(Path(rd), {"how": "crashed", "exit_status": None,
                                        "ended_by": "vllmtui start (the crashed server was still exiting)"})

    def _launch_spec(self, loaded: LoadedProfile) -> LaunchSpec:
        try:
            return resolve(loaded.profile, self.settings)
        except UsageError as exc:
            raise _not_started(loaded, [f"runtime: {exc}"]) from None

    def _pre_start_checks(
        self, loaded: LoadedProfile, others: list[LoadedProfile] | None, say: Progress | None = None
    ) -> tuple[str, ...]:
        """Refuse on the errors of the start checks (`checks.start_problems`, the same that
        `vllmtui check` prints); their warnings (`file:line: field: message`)."""
        from vllmtui.servers import checks  # the planner and the model checks: when starting

        problems = checks.start_problems(loaded, self.settings, others, self, say=say)
        errors = [p.line() for p in problems if p.level == "error"]
        if errors:
            raise _not_started(loaded, errors)
        return tuple(p.line() for p in problems if p.level == "warning")

    def fit_warnings(self, loaded: LoadedProfile) -> list[str]:
        """The memory plan's warnings for starting `loaded` now, for the GPUs as they are
        (`checks.fit_warnings`); never raises."""
        from vllmtui.servers import checks

        try:
            snapshot = checks.gpu_snapshot(loaded, self)
        except VllmtuiError:
            return []
        return checks.fit_warnings(loaded, self.settings, snapshot)

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
            pulling = status.phase in (prepull.PHASE, image_pull.PHASE)
            key = (status.state, status.detail if pulling else status.phase)
            if key != last and on_change:
                on_change(status)
            last = key
            if status.state == "ready":
                record_ready(status)
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
                {"how": "exited", "exit_status": session.exit_code, "signal": session.dead_signal},
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
        if session is None and self._is_job(name):  # a batch job's server: scancel
            text, seconds = slurm_server.stop(self.settings, name, force, timeout or 30.0)
            say(text)
            return StopResult(name, "slurm-cancel", seconds)
        if session is None:
            raise VllmtuiError(f"{name} is not running (no tmux session {sess_name})")
        begin = time.monotonic()
        pane_pid = session.pane_pid or int(session.option("pid") or 0) or None
        tree = procs.tree_of(pane_pid) if pane_pid else []
        box = containers.of_session(session)  # a container outlives its client: its engine stops it
        if session.dead and not tree and (box is None or not box.exists()):
            self._clear_dead(session)
            return StopResult(name, "already-exited", time.monotonic() - begin, (), (), session.exit_code)
        self.tmux.set_options(sess_name, {"stopping": f"{time.time():.3f}"})
        if box is not None:
            timeouts = self._stop_timeouts(name, timeout, term_timeout)
            method, tree, left = container.stop(box, tree, pane_pid, force, timeouts, say)
        elif force:
            method = "force"
            say(
                "killing "
                + ", ".join(f"{p.pid} ({p.title})" for p in tree)
                + " with SIGKILL"
            )
            self._kill(tree, pane_pid, signal.SIGKILL)
            left = self._wait_gone(tree, 5.0)
        else:
            method, left = self._stop_gracefully(name, tree, pane_pid, timeout, term_timeout, say)
        seconds = time.monotonic() - begin
        after = self.tmux.session(sess_name)
        if after is not None:
            after = self.tmux.settled(after)
        status = after.exit_code if after else None
        rd = session.option("run-dir")
        if rd and Path(rd).is_dir():
            runs.record_exit(
                Path(rd),
                {
                    "how": method,
                    "seconds": round(seconds, 2),
                    "exit_status": status,
                    "signal": after.dead_signal if after else None,
                    "left": [p.pid for p in left],
                },
            )
        if not left:
            self.tmux.kill_session(sess_name)
        else:
            self.tmux.unset_option(sess_name, "stopping")
        return StopResult(name, method, seconds, tuple(tree), tuple(left), status)

    def _stop_gracefully(
        self,
        name: str,
        tree: list[procs.ProcInfo],
        pane_pid: int | None,
        timeout: float | None,
        term_timeout: float | None,
        say: Progress,
    ) -> tuple[str, list[procs.ProcInfo]]:
        """SIGINT to the pane's process group, then SIGTERM, then SIGKILL to what is left, each
        after its timeout (the profile's `stop:` unless given); (method, still running)."""
        timeout, term_timeout = self._stop_timeouts(name, timeout, term_timeout)
        say(f"sending SIGINT (Ctrl-C) to {name}, waiting up to {timeout:.0f} s")
        self._kill(tree, pane_pid, signal.SIGINT, group_only=True)
        left = self._wait_gone(tree, timeout, say, "SIGTERM")
        if not left:
            return "graceful", left
        say(f"still running after {timeout:.0f} s: sending SIGTERM")
        self._kill(left, pane_pid, signal.SIGTERM)
        left = self._wait_gone(left, term_timeout, say, "SIGKILL")
        if not left:
            return "sigterm", left
        say(f"still running after SIGTERM: sending SIGKILL to {len(left)} process(es)")
        self._kill(left, pane_pid, signal.SIGKILL)
        return "sigkill", self._wait_gone(left, 5.0)

    def _stop_timeouts(
        self, name: str, timeout: float | None, term_timeout: float | None
    ) -> tuple[float, float]:
        """(SIGINT wait, SIGTERM wait): as given, else the profile's, else 30 s and 10 s."""
        if timeout is not None and term_timeout is not None:
            return timeout, term_timeout
        try:
            stop_cfg = find_profile(self.settings, name).profile.stop
            return timeout or stop_cfg.timeout, term_timeout or stop_cfg.term_timeout
        except VllmtuiError:
            return timeout or 30.0, term_timeout or 10.0

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
        """Wait until `targets` are gone (what is left after `timeout` s). The countdown to
        `next_step` is announced once a second, from the first second on: a stop that ends
        sooner announces none."""
        begin = time.monotonic()
        deadline = begin + timeout
        last_tick = None
        while True:
            alive = set(procs.alive([p.pid for p in targets]))
            if not alive:
                return []
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return [p for p in targets if p.pid in alive]
            tick = math.ceil(remaining)
            if say and next_step and now - begin >= COUNTDOWN_AFTER and tick != last_tick:
                say(f"{len(alive)} process(es) still running; {next_step} in {tick} s")
                last_tick = tick
            time.sleep(0.1)

    # ------------------------------------------------------------ orphans

    def owned_pids(self, everything: list[procs.ProcInfo] | None = None) -> set[int]:
        """Every process in the tree of a live tmux session of this tmux server."""
        everything = everything if everything is not None else procs.all_processes()
        owned: set[int] = set()
        for sess in self.tmux.sessions():
            pid = sess.pane_pid or int(sess.option("pid") or 0)
            if pid and not sess.dead:
                owned |= {p.pid for p in procs.tree_of(pid, everything)}
                owned |= containers.session_pids(sess, everything)
        return owned

    def orphans(self) -> list[procs.ProcInfo]:
        """vLLM processes that belong to no live server (they may hold a GPU)."""
        everything = procs.all_processes()  # one reading of /proc for both (20 ms each)
        return procs.orphans(self.owned_pids(everything), everything)

    def server_mark(self, name: str) -> str:
        """The `VLLMTUI_SERVER` value a server's processes carry: its tmux server and name."""
        return f"{self.tmux.socket or 'default'}/{name}"

    def orphans_of(self, name: str) -> list[procs.ProcInfo]:
        """The orphans that were processes of the server `name` of this tmux server (they
        carry its mark): what `stop --force NAME` reaps, and nothing of anyone else."""
        mark = self.server_mark(name)
        return [p for p in self.orphans() if procs.environ_value(p.pid, SERVER_MARK) == mark]

    def reap(
        self, on_progress: Progress | None = None, server: str | None = None
    ) -> tuple[list[procs.ProcInfo], list[procs.ProcInfo]]:
        """SIGKILL every orphan (only those of `server`, when given); returns (killed, still
        alive)."""
        found = self.orphans() if server is None else self.orphans_of(server)
        if on_progress and found:
            on_progress("killing " + ", ".join(f"{p.pid} ({p.title})" for p in found))
        procs.signal_all([p.pid for p in found], signal.SIGKILL)
        return found, self._wait_gone(found, 5.0)


def _not_started(loaded: LoadedProfile, errors: list[str]) -> UsageError:
    lines = "\n".join(f"  {e}" for e in errors)
    return UsageError(f"{loaded.profile.name} ({loaded.path}) was not started:\n{lines}")


def record_ready(status: ServerStatus) -> None:
    """Write down (ready.json, once) the time to ready of a run seen ready."""
    run_dir, started, ttr = status.run_dir, status.started, status.time_to_ready
    if run_dir is not None and started is not None and ttr is not None and run_dir.is_dir():
        runs.record_ready(run_dir, started, started + ttr)
