"""Process trees: which processes belong to a server, and which vLLM processes belong to none.

vLLM's children (`VLLM::EngineCore`, `VLLM::Worker_TP*`) survive a killed API server,
reparented to pid 1 but still in its session and process group, and hold the GPU. So a
server's processes are: the pane's process, its descendants, and everything in the pane's
session or process group. Zombies hold nothing and are skipped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

VLLM_TITLE_PREFIX = "VLLM::"
_VLLM_MARKERS = ("vllm.entrypoints", "vllm serve", "/vllm serve")


@dataclass(frozen=True)
class ProcInfo:
    """A snapshot of one process."""

    pid: int
    ppid: int
    sid: int | None
    pgid: int | None
    user: str
    command: str
    rss: int

    @property
    def title(self) -> str:
        """The first word of the command line (vLLM sets `VLLM::EngineCore` etc.)."""
        return self.command.split(" ", 1)[0] if self.command else ""

    @property
    def is_vllm(self) -> bool:
        return is_vllm_command(self.command)


def is_vllm_command(command: str) -> bool:
    """vLLM's own processes: titles `VLLM::...`, or the API server's command line."""
    return command.startswith(VLLM_TITLE_PREFIX) or any(m in command for m in _VLLM_MARKERS)


def command_line(argv: list[str], name: str = "") -> str:
    """A process's command line for display: its arguments joined by spaces, less the empty
    ones a retitled process pads its argv with (setproctitle: `VLLM::EngineCore` then NULs,
    which psutil reads as hundreds of empty arguments); `name` when it has none."""
    while argv and not argv[-1].strip():
        argv = argv[:-1]
    return " ".join(argv).strip() or name


def _info(proc: psutil.Process) -> ProcInfo | None:
    try:
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            pid = proc.pid
            try:
                sid: int | None = os.getsid(pid)
                pgid: int | None = os.getpgid(pid)
            except OSError:
                sid = pgid = None
            try:
                user = proc.username()
            except (psutil.Error, KeyError):
                user = "?"
            cmd = command_line(proc.cmdline(), proc.name())
            return ProcInfo(pid, proc.ppid(), sid, pgid, user, cmd, proc.memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def all_processes() -> list[ProcInfo]:
    out = []
    for proc in psutil.process_iter():
        info = _info(proc)
        if info is not None:
            out.append(info)
    return out


def tree_of(root_pid: int, processes: list[ProcInfo] | None = None) -> list[ProcInfo]:
    """Every live process of a server whose pane process is `root_pid`: its descendants and
    every process in its session or process group (reparented orphans included)."""
    procs = processes if processes is not None else all_processes()
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found: dict[int, ProcInfo] = {}
    for p in procs:
        if p.pid == root_pid or p.sid == root_pid or p.pgid == root_pid:
            found[p.pid] = p
    stack = list(found.values())
    while stack:
        for child in children.get(stack.pop().pid, []):
            if child.pid not in found:
                found[child.pid] = child
                stack.append(child)
    return sorted(found.values(), key=lambda p: p.pid)


# What an orphan's parent becomes: init, or a subreaper that adopts orphans
_ADOPTERS = ("init", "systemd", "tini", "dumb-init", "catatonit", "s6-svscan", "runit")


def orphans(owned_pids: set[int], processes: list[ProcInfo] | None = None) -> list[ProcInfo]:
    """Orphaned vLLM processes: a `VLLM::` process in no live server's tree that was
    reparented (its parent is pid 1 or a subreaper such as systemd), plus everything below it.
    A vLLM whose parent still lives is somebody's running job (a `vllm serve` by hand, an
    offline `LLM()` script) and is never an orphan. Other users' processes are left alone
    unless running as root."""
    procs = processes if processes is not None else all_processes()
    by_pid = {p.pid: p for p in procs}
    me = os.getuid()
    roots = []
    for p in procs:
        if p.pid in owned_pids or not p.command.startswith(VLLM_TITLE_PREFIX):
            continue
        parent = by_pid.get(p.ppid)
        adopted = p.ppid <= 1 or parent is None or os.path.basename(parent.title) in _ADOPTERS
        if not adopted:
            continue
        if me != 0:
            try:
                if psutil.Process(p.pid).uids().real != me:
                    continue
            except psutil.Error:
                continue
        roots.append(p)
    found: dict[int, ProcInfo] = {}
    for root in roots:
        for member in tree_of(root.pid, procs):
            if member.pid not in owned_pids:
                found[member.pid] = member
    return sorted(found.values(), key=lambda p: p.pid)


def alive(pids: list[int]) -> list[int]:
    """The pids that still exist and are not zombies."""
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue


def environ_value(pid: int, name: str) -> str | None:
    """One variable of a process's environment (as it was at exec), when we may read it."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode("utf-8", "replace")
    return None


def holding(paths: set[str]) -> list[ProcInfo]:
    """The processes (of those this user may look at, this one left out) that have one of
    `paths` (real paths) open or mapped into memory (safetensors weights are mmapped)."""
    if not paths:
        return []
    out = []
    for pid in psutil.pids():
        if pid != os.getpid() and _holds(pid, paths):
            try:
                info = _info(psutil.Process(pid))
            except psutil.Error:
                continue
            if info is not None:
                out.append(info)
    return out


def _holds(pid: int, paths: set[str]) -> bool:
    base = f"/proc/{pid}"
    try:
        for fd in os.listdir(f"{base}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"{base}/fd/{fd}") in paths:
                    return True
        with open(f"{base}/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) == 6 and parts[5] in paths:
                    return True
    except OSError:  # gone, or another user's
        return False
    return False
