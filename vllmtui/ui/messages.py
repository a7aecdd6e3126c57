"""Messages that workers post to the app: typed, immutable, named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers.fleet import ServerStatus, StartResult, StopResult
from vllmtui.servers.runs import Run


class StatusesRead(Message):
    """One reading of every server (and the profiles it was taken against)."""

    def __init__(
        self,
        statuses: list[ServerStatus],
        profiles: list[LoadedProfile],
        broken: list[BrokenProfile],
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.statuses = statuses
        self.profiles = profiles
        self.broken = broken
        self.error = error


class LogLinesRead(Message):
    """New lines of a log; `reset` means they replace what is shown (a new file/run)."""

    def __init__(self, path: Path | None, lines: list[str], reset: bool, size: int) -> None:
        super().__init__()
        self.path = path
        self.lines = lines
        self.reset = reset
        self.size = size


@dataclass(frozen=True)
class InfoSnapshot:
    """What the Info tab shows for one profile, read in a worker."""

    name: str
    command: str | None
    env_names: tuple[str, ...]
    runs: tuple[Run, ...]
    error: str | None = None


class InfoRead(Message):
    def __init__(self, info: InfoSnapshot) -> None:
        super().__init__()
        self.info = info


class ServerStarted(Message):
    def __init__(self, result: StartResult) -> None:
        super().__init__()
        self.result = result


class StartRefused(Message):
    """The start was refused before anything ran (validation, port, already running)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__()
        self.name = name
        self.message = message


class StopProgressed(Message):
    """A line of Fleet.stop's progress (the countdown)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__()
        self.name = name
        self.text = text


class ServerStopped(Message):
    def __init__(
        self, name: str, result: StopResult | None, error: str | None = None, restart: bool = False
    ) -> None:
        super().__init__()
        self.name = name
        self.result = result
        self.error = error
        self.restart = restart


class ForceTargetsRead(Message):
    """What a forced stop would kill, for the confirmation dialog."""

    def __init__(self, name: str, targets: list[str], error: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.targets = targets
        self.error = error


class ProfileEdited(Message):
    def __init__(self, name: str, ok: bool, message: str) -> None:
        super().__init__()
        self.name = name
        self.ok = ok
        self.message = message


class ProfileDuplicated(Message):
    def __init__(self, name: str | None, message: str, ok: bool) -> None:
        super().__init__()
        self.name = name
        self.message = message
        self.ok = ok


class FeatureRead(Message):
    """A feature worker's reading (`kind`: side, probes-latest, tunnel-toggled)."""

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        super().__init__()
        self.kind = kind
        self.data = data


class OrphansRead(Message):
    """vLLM processes that belong to no server ('PID (title)'), for the reap dialog."""

    def __init__(self, orphans: list[str], error: str | None = None) -> None:
        super().__init__()
        self.orphans = orphans
        self.error = error


class OrphansReaped(Message):
    def __init__(self, killed: int, left: list[str], error: str | None = None) -> None:
        super().__init__()
        self.killed = killed
        self.left = left
        self.error = error
