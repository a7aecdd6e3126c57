"""Blocking domain calls the screen and its panels run in their thread workers, each turning
a failure into data (an error text), never an exception; none touches a widget."""

from __future__ import annotations

import os
from pathlib import Path

from vllmtui.core import procs
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import resolve
from vllmtui.profiles.loading import ProfileCache, discover
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers import logs, runs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus
from vllmtui.ui.messages import InfoSnapshot

TAIL_LINES = 2000
CATCH_UP_BYTES = 16 << 20  # further behind than this: jump to the end again


def read_profiles(
    settings: Settings, cache: ProfileCache | None = None
) -> tuple[list[LoadedProfile], list[BrokenProfile], str | None]:
    try:
        good, broken = discover(settings, cache)
    except VllmtuiError as exc:
        return [], [], str(exc)
    except OSError as exc:
        return [], [], f"cannot read the profiles: {exc}"
    return good, broken, None


def read_statuses(
    fleet: Fleet, profiles: list[LoadedProfile]
) -> tuple[list[ServerStatus], str | None]:
    """Fleet.statuses, with a failed reading turned into a message (never an exception)."""
    try:
        return fleet.statuses(profiles), None
    except VllmtuiError as exc:
        return [], str(exc)
    except Exception as exc:  # noqa: BLE001 - a poll must never raise into the UI
        return [], f"reading the servers failed: {type(exc).__name__}: {exc}"


def read_info(settings: Settings, name: str, loaded: LoadedProfile | None) -> InfoSnapshot:
    command = None
    env: tuple[str, ...] = ()
    error = None
    if loaded is not None:
        try:
            spec = resolve(loaded.profile, settings)
            command = spec.display()
            env = tuple(sorted(spec.env)) + tuple(f"{k} (secret)" for k in sorted(spec.secret_env))
        except VllmtuiError as exc:
            error = str(exc)
    try:
        history = tuple(runs.runs_of(settings, name, limit=8))
    except OSError as exc:
        history, error = (), error or f"cannot read the runs: {exc}"
    if loaded is None and history:
        # no profile here (started elsewhere): show what the newest run recorded
        import shlex

        command = shlex.join(history[0].launch.get("argv", []))
        env = tuple(history[0].launch.get("env_names", []))
    return InfoSnapshot(name, command, env, history, error)


def force_targets(pid: int | None) -> list[str]:
    """'PID (title)' of every process a forced stop of this pane would kill."""
    if not pid:
        return []
    return [f"{p.pid} ({p.title})" for p in procs.tree_of(pid)]


class LogTail:
    """Reads a log from its end, then what is appended, by byte offset."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def start(self) -> tuple[list[str], int]:
        lines, self.offset = logs.tail_lines(self.path, TAIL_LINES)
        return lines, self.offset

    def more(self) -> tuple[list[str], bool]:
        """(new lines, reset): reset when the file was replaced or we fell far behind."""
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return [], False
        if size < self.offset or size - self.offset > CATCH_UP_BYTES:
            lines, _ = self.start()
            return lines, True
        lines, self.offset = logs.read_lines_from(self.path, self.offset)
        if len(lines) > TAIL_LINES * 5:
            lines = lines[-TAIL_LINES * 5 :]
        return lines, False
