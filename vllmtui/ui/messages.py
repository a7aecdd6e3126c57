"""Messages the main screen's own workers post: typed dataclasses named in the past tense.
A panel's messages are nested in the panel that posts them (`GpuPanel.SnapshotTaken`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers.fleet import StartResult, StopResult
from vllmtui.servers.runs import Run
from vllmtui.servers.status import ServerStatus

if TYPE_CHECKING:  # the hosts' modules load with the first other host
    from vllmtui.hosts.fleet import HostReading, Hosts


@dataclass
class HostsRead(Message):
    """One reading of the other hosts of hosts.yaml (`names`; none: no other hosts)."""

    readings: dict[str, HostReading]
    names: tuple[str, ...]
    hosts: Hosts | None = None
    error: str | None = None
    endpoints: tuple[ServerStatus, ...] = ()
    """The live remote servers, reached through forwards (`Selection.endpoints`)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostsRead)


@dataclass
class StatusesRead(Message):
    """One reading of every server (and the profiles it was taken against)."""

    statuses: list[ServerStatus]
    profiles: list[LoadedProfile]
    broken: list[BrokenProfile]
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusesRead)  # only the newest reading matters


@dataclass
class LogLinesRead(Message):
    """New lines of a log; `reset` means they replace what is shown (a new file/run). `path`
    names the log followed: a file here, or `HOST:PATH` on another host."""

    path: Path | str | None
    lines: list[str]
    reset: bool
    size: int


@dataclass(frozen=True)
class InfoSnapshot:
    """What the Info tab shows for one profile, read in a worker."""

    name: str
    command: str | None
    env_names: tuple[str, ...]
    runs: tuple[Run, ...]
    error: str | None = None


@dataclass
class InfoRead(Message):
    info: InfoSnapshot


@dataclass
class ServerStarted(Message):
    result: StartResult


@dataclass
class StartRefused(Message):
    """The start was refused before anything ran (validation, port, already running)."""

    name: str
    message: str


@dataclass
class StopProgressed(Message):
    """A line of Fleet.stop's progress (the countdown)."""

    name: str
    text: str


@dataclass
class ServerStopped(Message):
    name: str
    result: StopResult | None
    error: str | None = None
    restart: bool = False


@dataclass
class ForceTargetsRead(Message):
    """What a forced stop would kill, for the confirmation dialog."""

    name: str
    targets: list[str]
    error: str | None = None


@dataclass
class ProfileEdited(Message):
    name: str
    ok: bool
    message: str


@dataclass
class ProfileDuplicated(Message):
    name: str | None
    message: str
    ok: bool


@dataclass
class OrphansRead(Message):
    """vLLM processes that belong to no server ('PID (title)'), for the reap dialog."""

    orphans: list[str]
    error: str | None = None


@dataclass
class OrphansReaped(Message):
    killed: int
    left: list[str]
    error: str | None = None
