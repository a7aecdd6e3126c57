"""What the main screen hands down to its panels: the selected server and the latest
reading of all of them (attributes go down, messages come up)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers.runs import LOG
from vllmtui.servers.status import ServerStatus

if TYPE_CHECKING:  # the hosts' modules load with the first other host
    from vllmtui.hosts.fleet import Hosts


@dataclass(frozen=True)
class Selection:
    """The selected server (`name`, its `status` and profile) among `statuses`."""

    name: str | None = None
    status: ServerStatus | None = None
    loaded: LoadedProfile | None = None
    statuses: tuple[ServerStatus, ...] = ()
    profiles: tuple[LoadedProfile, ...] = ()
    broken: tuple[BrokenProfile, ...] = ()  # profile files that do not validate
    host: str | None = None
    """The other host the selected row is on (None: this machine); `name` is then the row's
    key (`NAME@HOST`, or `@HOST` for a host's own row) and `status.name` the server's."""
    hosts: Hosts | None = None
    """The other hosts' connections (with `host`): to read a log there, run a command there."""
    endpoints: tuple[ServerStatus, ...] = ()
    """The other hosts' live servers as reached from here: `name` their row key (`NAME@HOST`),
    `host:port` the local end of a forward over the host's ssh connection (metrics, benchmarks)."""

    def endpoint_of(self, name: str | None) -> ServerStatus | None:
        return next((s for s in self.endpoints if s.name == name), None) if name else None

    @property
    def remote(self) -> bool:
        return self.host is not None

    @property
    def any_profiles(self) -> bool:
        """Any server or profile file at all (tells "no profiles yet" from "no runs yet")."""
        return bool(self.statuses or self.broken)

    def status_of(self, name: str | None) -> ServerStatus | None:
        return next((s for s in self.statuses if s.name == name), None) if name else None

    def profile_of(self, name: str | None) -> LoadedProfile | None:
        return next((p for p in self.profiles if p.profile.name == name), None) if name else None

    def broken_of(self, name: str | None) -> BrokenProfile | None:
        return next((b for b in self.broken if b.name == name), None) if name else None

    @property
    def key(self) -> tuple[str, str, str | None]:
        """What a panel re-reads on: the server, its state and its run."""
        status = self.status
        return (self.name or "", status.state if status else "", str(status.run_dir) if status else None)

    @property
    def log_path(self) -> Path | None:
        status = self.status
        return status.run_dir / LOG if status and status.run_dir and not self.remote else None

    @property
    def live(self) -> bool:
        """The selected server answers requests (ready, or up but unhealthy)."""
        return self.status is not None and self.status.state in ("ready", "unhealthy")


@dataclass(frozen=True)
class Display:
    """What tests freeze so snapshots are deterministic: the host name, uptime-like text
    and a scrubber for volatile text (pids, times, temp paths) in the log and Info tabs."""

    hostname: str | None = None
    uptime: Callable[[ServerStatus], str] | None = None
    scrub: Callable[[str], str] | None = None
    gpu_summary: str | None = None

    def scrubbed(self, text: str) -> str:
        return self.scrub(text) if self.scrub else text
