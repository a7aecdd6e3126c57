"""A container engine's commands (docker, podman or a docker-compatible CLI) for one server's
container: is it there, its processes on this machine, stop, kill, remove.

A server in a container is a tmux session like any other; its session options name the
container (`container`) and the engine's executable (`container-engine`). The container's
processes are not in the pane's process tree (the engine's daemon or its runtime starts them),
so they are found through the engine: `inspect` gives the host pid of the container's first
process, and everything below it is the container's.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass

import psutil

from vllmtui.core import procs
from vllmtui.core.tmux import SessionInfo

NAME_OPTION = "container"
ENGINE_OPTION = "container-engine"
QUERY_TIMEOUT = 10.0
"""Seconds an engine query may take (a busy daemon can be slow; a dead one fails at once)."""


@dataclass(frozen=True)
class EngineAnswer:
    """What an engine command said: exit status and output (the status is 127 when the engine
    is not installed, 124 when it did not answer in time)."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def reason(self) -> str:
        """The engine's last line of complaint, for a message."""
        lines = [ln.strip() for ln in (self.err or self.out).splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {self.code}"


def engine_run(engine: str, *args: str, timeout: float = QUERY_TIMEOUT) -> EngineAnswer:
    """Run `ENGINE ARGS...` (never a shell) and collect what it said."""
    try:
        done = subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return EngineAnswer(127, "", f"{engine}: not found")
    except PermissionError:
        return EngineAnswer(126, "", f"{engine}: not executable")
    except subprocess.TimeoutExpired:
        return EngineAnswer(124, "", f"{engine} {' '.join(args[:2])} did not answer in {timeout:.0f} s")
    return EngineAnswer(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Container:
    """One server's container: the engine that runs it and its name."""

    engine: str
    name: str

    def inspect(self, template: str) -> EngineAnswer:
        return engine_run(self.engine, "inspect", "--type", "container", "--format", template, self.name)

    def exists(self) -> bool:
        """Whether the engine still has the container (running or not). An engine that cannot
        be asked counts as having it: a stop must not report a container gone that it never saw
        go."""
        answer = self.inspect("{{.State.Status}}")
        if answer.ok:
            return True
        return not _no_such(answer)

    def pid(self) -> int | None:
        """The host pid of the container's first process, while it runs."""
        answer = self.inspect("{{.State.Pid}}")
        try:
            pid = int(answer.out.strip()) if answer.ok else 0
        except ValueError:
            return None
        return pid or None

    def processes(self, everything: list[procs.ProcInfo] | None = None) -> list[procs.ProcInfo]:
        """The container's processes on this machine (its first process and all below it)."""
        pid = self.pid()
        return procs.tree_of(pid, everything) if pid else []

    def stop(self, seconds: int) -> subprocess.Popen[str]:
        """`ENGINE stop -t SECONDS NAME`, started (the engine sends the container's stop signal,
        SIGTERM, then SIGKILL after SECONDS); the caller waits for it."""
        return subprocess.Popen([self.engine, "stop", "-t", str(seconds), self.name],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def kill(self) -> EngineAnswer:
        return engine_run(self.engine, "kill", self.name)

    def remove(self) -> EngineAnswer:
        return engine_run(self.engine, "rm", "-f", self.name)

    def wait_gone(self, timeout: float) -> bool:
        """Wait until the engine no longer has the container (`--rm` removes it a moment after
        it exits); whether it is gone."""
        deadline = time.monotonic() + timeout
        while self.exists():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True


def _no_such(answer: EngineAnswer) -> bool:
    text = (answer.err + answer.out).lower()
    return "no such" in text or "no container with name" in text


def of_session(session: SessionInfo) -> Container | None:
    """The container of a server's session, when it runs in one."""
    name, engine = session.option(NAME_OPTION), session.option(ENGINE_OPTION)
    return Container(engine, name) if name and engine else None


_PIDS: dict[tuple[str, str], tuple[int, float]] = {}  # (engine, name) -> (pid, its start time)


def session_pids(session: SessionInfo, everything: list[procs.ProcInfo]) -> set[int]:
    """The pids of a session's container on this machine (empty for a server without one).
    The container's first pid is asked of the engine once and kept while that process lives
    (the GPU view reads this every second)."""
    box = of_session(session)
    if box is None:
        return set()
    key = (box.engine, box.name)
    pid = _known_pid(key)
    if pid is None:
        pid = box.pid()
        if pid is None:
            return set()
        with contextlib.suppress(psutil.Error):
            _PIDS[key] = (pid, psutil.Process(pid).create_time())
    return {p.pid for p in procs.tree_of(pid, everything)}


def _known_pid(key: tuple[str, str]) -> int | None:
    known = _PIDS.get(key)
    if known is None:
        return None
    try:
        if psutil.Process(known[0]).create_time() == known[1]:
            return known[0]
    except psutil.Error:
        pass
    _PIDS.pop(key, None)
    return None
