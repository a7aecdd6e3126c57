"""The host's side: `vllmtui hosts serve` answers JSON lines on stdin, one answer line each.

Another machine's vllmtui runs it over its ssh connection and keeps it: one process per
watching vllmtui, which keeps what it has read (the logs' offsets) between polls, so a poll
costs the host a tmux listing and the /health checks, not a Python start.

Requests: `{"op": "report", "gpus": true}` (servers, profiles and, if asked, the GPUs),
`{"op": "log", "run_dir": DIR, "offset": N | null, "lines": N}` (a server's log from its end
or from a byte offset: `log_answer`), `{"op": "version"}`. Every answer carries
`"vllmtui": VERSION`; a failed one `"ok": false, "error": MESSAGE`.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import IO, Any

from vllmtui import __version__
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.hosts.node_ops import answer_node
from vllmtui.planner.gpu import read_gpus
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers import logs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.runs import LOG


def profile_sources(settings: Settings, good: list[LoadedProfile],
                    broken: list[BrokenProfile]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every profile here: name, path and whether another machine sent it (`sent`); and the
    invalid ones (name, path)."""
    sent = settings.sent_profiles_dir
    rows = [{"name": p.profile.name, "path": str(p.path), "sent": p.path.is_relative_to(sent)}
            for p in good]
    return rows, [{"name": b.name, "path": str(b.path)} for b in broken]


def report(settings: Settings, fleet: Fleet, gpus: bool = True) -> dict[str, Any]:
    """What one poll of this host reads: its servers' statuses, its profiles, its GPUs."""
    good, bad = discover(settings)
    profiles, broken = profile_sources(settings, good, bad)
    return {
        "ok": True,
        "vllmtui": __version__,
        "hostname": socket.gethostname(),
        "servers": [s.to_json() for s in fleet.statuses(good)],
        "profiles": profiles,
        "invalid_profiles": broken,
        "gpus": read_gpus(fleet).to_json() if gpus else None,
        "taken_at": time.time(),
    }


LOG_LINES = 2000
"""Most lines one `log` answer carries from a log's end."""


def log_answer(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """A server's log, read here for another machine: the last `lines` lines (`offset` null)
    or the complete lines after byte `offset`; `reset` when the file shrank (a new run's).
    Only the logs of this host's own runs (under its runs dir) are read."""
    runs_dir = settings.runs_dir.resolve()
    try:
        run_dir = Path(str(request["run_dir"])).resolve()
        offset = request.get("offset")
        count = min(LOG_LINES, int(request.get("lines") or LOG_LINES))
    except (KeyError, TypeError, ValueError):
        return {"ok": False, "vllmtui": __version__, "error": "log needs run_dir, offset and lines"}
    if not run_dir.is_relative_to(runs_dir):
        return {"ok": False, "vllmtui": __version__, "error": f"{run_dir} is not a run of this host"}
    path = run_dir / LOG
    reset = False
    if offset is not None:
        size = path.stat().st_size if path.exists() else 0
        reset = int(offset) > size
    if offset is None or reset:
        lines, end = logs.tail_lines(path, count)
    else:
        lines, end = logs.read_lines_from(path, int(offset))
        lines = lines[-LOG_LINES * 5:]
    return {"ok": True, "vllmtui": __version__, "lines": lines, "offset": end, "reset": reset}


def duplicate_answer(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    """Another machine's `d` on this host's profile: the copy beside it, with a new port."""
    from vllmtui.profiles import ops
    from vllmtui.profiles.loading import find_profile

    name, new = str(request.get("name") or ""), str(request.get("new") or "")
    copy = ops.duplicate(settings, find_profile(settings, name), new)
    return {"ok": True, "vllmtui": __version__, "name": copy.profile.name, "path": str(copy.path),
            "port": copy.profile.port}


def answer(settings: Settings, fleet: Fleet, line: str) -> dict[str, Any]:
    """The answer to one request line (never raises)."""
    try:
        request = json.loads(line)
    except ValueError:
        return {"ok": False, "vllmtui": __version__, "error": f"not JSON: {line[:80]!r}"}
    op = request.get("op") if isinstance(request, dict) else None
    try:
        if op == "report":
            return report(settings, fleet, bool(request.get("gpus", True)))
        if op == "log":
            return log_answer(settings, request)
        if op == "duplicate":
            return duplicate_answer(settings, request)
        node = answer_node(settings, str(op), request)
        if node is not None:
            return {"vllmtui": __version__, **node}
        if op == "version":
            return {"ok": True, "vllmtui": __version__, "hostname": socket.gethostname()}
    except VllmtuiError as exc:
        return {"ok": False, "vllmtui": __version__, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a reading that failed says so; the session goes on
        return {"ok": False, "vllmtui": __version__, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": False, "vllmtui": __version__,
            "error": f"unknown op {op!r}: report, log, duplicate, node-start, node-state, node-stop,"
                     " leftovers, ray-nodes or version"}


def serve(settings: Settings, stdin: IO[str], stdout: IO[str]) -> int:
    """Answer until stdin ends (the other side closed its ssh session)."""
    fleet = Fleet(settings)
    for line in stdin:
        if line.strip():
            stdout.write(json.dumps(answer(settings, fleet, line)) + "\n")
            stdout.flush()
    return 0
