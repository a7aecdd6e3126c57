"""A host's side of a multi-node server's other nodes: `hosts serve` requests that open, read
and stop a node's process in a tmux session of this host (`vllmtui-NAME-nodeI-ROLE`, option
`kind` = node, so it is never listed as a server), and list what a stop must not leave behind.

    {"op": "node-start", "session": S, "profile": NAME, "argv": [...], "env": {...}, "cwd": DIR}
    {"op": "node-state", "sessions": [S, ...]}   -> each: alive, exit status, its last lines
    {"op": "node-stop", "session": S, "timeout": T}  -> SIGINT, wait, SIGTERM, SIGKILL, removed
    {"op": "leftovers"}                          -> this user's `VLLM::` / `ray::` / raylet processes
    {"op": "ray-nodes", "ray": [...], "address": A}  -> `ray status` there: active nodes, GPUs
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from vllmtui.core import procs
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import SESSION_PREFIX, SessionExists, Tmux, client_environ

KIND = "node"
LEFTOVER_MARKS = ("VLLM::", "ray::", "/raylet", "gcs_server", "ray.scripts.scripts start", "bin/ray start")
"""What a node's process tree is made of (vLLM's workers, Ray's actors and daemons)."""


def _session(value: Any) -> str:
    name = str(value)
    if not name.startswith(SESSION_PREFIX) or "-node" not in name or any(c in name for c in ":.; \n"):
        raise UsageError(f"{name!r} is not a node session name (vllmtui-NAME-nodeI-ROLE)")
    return name


def start(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    session = _session(request.get("session"))
    argv = [str(a) for a in request.get("argv") or []]
    env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
    if not argv:
        raise UsageError("node-start needs argv")
    if any("\n" in v for v in env.values()):
        raise UsageError("node-start: a value with a line break cannot be passed")
    tmux = Tmux(settings.tmux_socket)
    environ = {**client_environ(), **env}
    cwd = str(request.get("cwd") or Path.home())
    try:
        tmux.new_session(session, argv, cwd=cwd if os.path.isdir(cwd) else str(Path.home()),
                         options={"kind": KIND, "profile": str(request.get("profile") or "")},
                         pane_env=environ)
    except SessionExists:
        info = tmux.session(session)
        if info is not None and not info.dead:
            return {"ok": True, "session": session, "pid": info.pane_pid, "already": True}
        tmux.kill_session(session)  # a dead pane of an earlier run: replaced
        tmux.new_session(session, argv, cwd=cwd if os.path.isdir(cwd) else str(Path.home()),
                         options={"kind": KIND, "profile": str(request.get("profile") or "")},
                         pane_env=environ)
    info = tmux.session(session)
    return {"ok": True, "session": session, "pid": info.pane_pid if info else None}


def state(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    tmux = Tmux(settings.tmux_socket)
    out: dict[str, dict[str, Any]] = {}
    for name in request.get("sessions") or []:
        session = _session(name)
        info = tmux.session(session)
        if info is None:
            out[session] = {"exists": False, "alive": False}
            continue
        lines = [line for line in tmux.capture(session, 30) if line.strip()]
        out[session] = {"exists": True, "alive": not info.dead, "pid": info.pane_pid,
                        "exit_status": info.exit_code, "last": lines[-6:]}
    return {"ok": True, "sessions": out}


def stop(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """SIGINT the node's process tree (Ray and vLLM shut down on it), then SIGTERM, SIGKILL;
    the session removed. `left`: what still runs of it (nothing, normally)."""
    session = _session(request.get("session"))
    timeout = float(request.get("timeout") or 15.0)
    tmux = Tmux(settings.tmux_socket)
    info = tmux.session(session)
    if info is None:
        return {"ok": True, "session": session, "gone": True, "left": []}
    tree = [p.pid for p in procs.tree_of(info.pane_pid)] if info.pane_pid and not info.dead else []
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 3.0)):
        if not procs.alive(tree):
            break
        procs.signal_all(tree, sig)
        deadline = time.monotonic() + wait
        while procs.alive(tree) and time.monotonic() < deadline:
            time.sleep(0.2)
    tmux.kill_session(session)
    return {"ok": True, "session": session, "left": procs.alive(tree)}


def leftovers() -> dict[str, Any]:
    """This user's processes a multi-node server is made of, still running."""
    me = pwd.getpwuid(os.getuid()).pw_name
    found = [{"pid": p.pid, "command": p.command[:160]} for p in procs.all_processes()
             if p.user == me and p.pid != os.getpid() and any(mark in p.command for mark in LEFTOVER_MARKS)]
    return {"ok": True, "processes": found}


def ray_nodes(request: dict[str, Any]) -> dict[str, Any]:
    """`ray status` of the cluster at `address`, read here: its active nodes and GPUs
    (`nodes` None while it does not answer yet)."""
    ray = [str(a) for a in request.get("ray") or ["ray"]]
    env = {**os.environ, **{str(k): str(v) for k, v in (request.get("env") or {}).items()}}
    try:
        done = subprocess.run([*ray, "status", "--address", str(request.get("address"))], env=env,
                              capture_output=True, text=True, timeout=25, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": True, "nodes": None, "said": str(exc)}
    return {"ok": True, **parse_ray_status(done.stdout), "said": done.stderr[-400:]}


def parse_ray_status(text: str) -> dict[str, Any]:
    """Active nodes and total GPUs from `ray status` (None: no cluster status yet)."""
    if "Active:" not in text:
        return {"nodes": None, "gpus": 0.0}
    active = text.split("Active:", 1)[1].split("Pending:", 1)[0]
    nodes = sum(int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+node_", active, re.M))
    gpus = re.search(r"^\s*[\d.]+/([\d.]+)\s+GPU\b", text, re.M)
    return {"nodes": nodes, "gpus": float(gpus.group(1)) if gpus else 0.0}


def answer_node(settings: Settings, op: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to a node request, or None when `op` is not one."""
    if op == "node-start":
        return start(settings, request)
    if op == "node-state":
        return state(settings, request)
    if op == "node-stop":
        return stop(settings, request)
    if op == "leftovers":
        return leftovers()
    if op == "ray-nodes":
        return ray_nodes(request)
    return None
