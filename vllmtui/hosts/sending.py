"""Which profile a `start --host HOST NAME` runs: the host's own, or this machine's, sent.

The rule (docs/hosts.md): a profile of the host's own with that name wins; this machine's is
sent (into the host's `<config dir>/sent-profiles/`) when the host has none of that name,
when `--send` is given, or when hosts.yaml says `profiles: local` for the host. A path
(`start --host gpu1 ./p.yaml`) is always sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.hosts.config import HostConfig
from vllmtui.hosts.fleet import Hosts
from vllmtui.profiles.loading import discover, load_profile_file, read_profile_text
from vllmtui.profiles.model import PROFILE_SUFFIXES, LoadedProfile

SENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Choice:
    """The profile a start on a host runs: `source` "host" (its own, at `path` there) or
    "local" (this machine's file at `path`, to be sent); `argument`: what the host's
    `start` is given (the name, or the sent file's path there)."""

    name: str
    source: str
    path: str
    argument: str

    def describe(self, host: str) -> str:
        if self.source == "host":
            return f"profile {self.name}: {host}'s own ({self.path})"
        return f"profile {self.name}: this machine's ({self.path}), sent to {host} ({self.argument})"


def local_profile(settings: Settings, name: str) -> LoadedProfile | None:
    """This machine's profile `name` (or the file `name`), or None."""
    candidate = Path(name).expanduser()
    if candidate.suffix in PROFILE_SUFFIXES and candidate.is_file():
        return load_profile_file(candidate)
    good, _ = discover(settings)
    return next((p for p in good if p.profile.name == name), None)


def choose(hosts: Hosts, host: HostConfig, name: str, send: bool) -> Choice | None:
    """Decide (and, when it is this machine's, send) the profile; None: neither side has one
    of that name (the host's `start` then says so)."""
    mine = local_profile(hosts.settings, name)
    is_path = mine is not None and mine.profile.name != name
    if mine is None or not (send or is_path or host.profiles == "local"):
        reading = hosts.read(names=[host.name], gpus=False)[host.name]
        if not reading.reachable:
            raise VllmtuiError(f"cannot reach {host.name}: {reading.problem}")
        theirs = next((p for p in reading.profiles if p.name == name), None)
        if theirs is not None:
            return Choice(name, "host", theirs.path, name)
        if mine is None:
            return None
    assert mine is not None
    remote = send_profile(hosts, host.name, mine.profile.name, read_profile_text(mine.path))
    return Choice(mine.profile.name, "local", str(mine.path), remote)


def send_profile(hosts: Hosts, host: str, name: str, text: str) -> str:
    """Put a profile's text in the host's sent-profiles directory; its path there."""
    done = hosts.run(host, ["hosts", "receive", name, "--host", "local"], input=text, timeout=60)
    if done.returncode != 0:
        raise VllmtuiError(f"{host}: the profile {name} was not taken: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def receive(settings: Settings, name: str, text: str) -> Path:
    """The host's side of `send_profile`: check the profile, keep it, return its path."""
    from vllmtui.profiles.loading import parse_profile_lines

    if not SENT_NAME.match(name):
        raise UsageError(f"{name!r} is not a profile name (letters, digits, '.', '_', '-')")
    target = settings.sent_profiles_dir / f"{name}.yaml"
    parse_profile_lines(text, target)  # a profile this vllmtui cannot read is refused, nothing kept
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".yaml.part")
    partial.write_text(text)
    partial.replace(target)
    return target
