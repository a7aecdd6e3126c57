"""`<config dir>/hosts.yaml`: the hosts vllmtui manages besides `local` (this machine).

```yaml
hosts:
  gpu1:
    ssh: gpu1                  # an ~/.ssh/config alias, or user@host[:port]
    vllmtui: ~/bin/vllmtui     # the vllmtui command there (default: the venv `hosts install` makes)
    profiles: host             # host: a profile of the host's own wins; local: the laptop's is sent
```
Every mistake is one line naming the file, its line, the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vllmtui.core import safeyaml
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import did_you_mean
from vllmtui.profiles.tunnel_spec import split_destination

LOCAL = "local"
"""The name of this machine: always there, reached without ssh."""
DEFAULT_VLLMTUI = "~/.local/share/vllmtui/venv/bin/vllmtui"
"""Where `vllmtui hosts install` puts vllmtui on a host (and so the default `vllmtui:`)."""
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_OURS = {"controlmaster", "controlpath", "controlpersist", "batchmode"}


class HostSpec(BaseModel):
    """One entry of `hosts:` as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ssh: str
    vllmtui: str = DEFAULT_VLLMTUI
    profiles: Literal["host", "local"] = "host"
    ssh_config: str | None = None
    ssh_options: dict[str, str] = {}

    @field_validator("ssh")
    @classmethod
    def _check_ssh(cls, value: str) -> str:
        value = value.strip()
        if not value or value.startswith("-") or any(c.isspace() for c in value):
            raise ValueError("must be an ~/.ssh/config alias or user@host[:port] (no spaces, no leading '-')")
        _dest, port = split_destination(value)
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not a TCP port: write user@host:PORT with PORT 1-65535")
        return value

    @field_validator("vllmtui")
    @classmethod
    def _check_command(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must be the vllmtui command on that host, e.g. {DEFAULT_VLLMTUI}")
        return value.strip()

    @field_validator("ssh_options", mode="before")
    @classmethod
    def _check_options(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, str] = {}
        for key, val in value.items():
            if not _OPTION_NAME.match(str(key)):
                raise ValueError(f"{key!r} is not an ssh option name (see `man ssh_config`)")
            if str(key).lower() in _OURS:
                raise ValueError(f"{key} is set by vllmtui (one multiplexed connection per host)")
            out[str(key)] = ("yes" if val else "no") if isinstance(val, bool) else str(val)
        return out


@dataclass(frozen=True)
class HostConfig:
    """A host with its defaults resolved. `ssh` is None for `local`."""

    name: str
    ssh: str | None
    vllmtui: str = DEFAULT_VLLMTUI
    profiles: str = "host"
    port: int | None = None
    ssh_config: str | None = None
    ssh_options: tuple[tuple[str, str], ...] = ()
    line: int | None = None
    """Its line in hosts.yaml (for messages)."""

    @property
    def is_local(self) -> bool:
        return self.ssh is None


LOCAL_HOST = HostConfig(LOCAL, None)


def hosts_file(settings: Settings) -> Path:
    return settings.config_dir / "hosts.yaml"


def hosts_stamp(settings: Settings) -> tuple[float, int] | None:
    """hosts.yaml's modification time and size (None: there is none): what tells a long-lived
    reader (the TUI) to read it again."""
    try:
        st = hosts_file(settings).stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


def _problems(exc: ValidationError, path: Path, lines: dict[tuple[str, ...], int],
              base: tuple[str, ...]) -> list[str]:
    out = []
    for err in exc.errors():
        loc = base + tuple(str(p) for p in err["loc"])
        line = lines.get(loc) or lines.get(base) or 1
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field" + did_you_mean(loc[-1], list(HostSpec.model_fields))
        elif err["type"] == "literal_error":
            msg = "must be `host` (a profile of the host's own wins) or `local` (the laptop's is sent)"
        elif err["type"] == "missing":
            msg = "is required: an ~/.ssh/config alias or user@host[:port]"
        out.append(f"{path}:{line}: {'.'.join(loc)}: {msg}")
    return out


def _entry(name: str, item: Any, path: Path, lines: dict[tuple[str, ...], int]) -> HostConfig:
    base = ("hosts", name)
    where = f"{path}:{lines.get(base) or 1}: hosts.{name}"
    if name == LOCAL:
        raise UsageError(f"{where}: `local` is this machine and always there: give the entry another name")
    if not NAME_RE.match(name):
        raise UsageError(f"{where}: a host name is 1-40 letters, digits, '.', '_' or '-'")
    if isinstance(item, str):  # `gpu1: user@gpu1` is short for `gpu1: {ssh: user@gpu1}`
        item = {"ssh": item}
    if not isinstance(item, dict):
        raise UsageError(f"{where}: write `{name}: {{ssh: ALIAS}}` (a mapping with `ssh:`)")
    try:
        spec = HostSpec.model_validate(item)
    except ValidationError as exc:
        raise UsageError("\n".join(_problems(exc, path, lines, base))) from None
    dest, port = split_destination(spec.ssh)
    return HostConfig(name, dest, spec.vllmtui, spec.profiles, port, spec.ssh_config,
                      tuple(spec.ssh_options.items()), lines.get(base))


def load_hosts(settings: Settings) -> dict[str, HostConfig]:
    """`local` and every host of hosts.yaml, in the file's order; UsageError naming the file,
    the line, the field and the fix when it is wrong (nothing is read from a wrong file)."""
    path = hosts_file(settings)
    found: dict[str, HostConfig] = {LOCAL: LOCAL_HOST}
    if not path.exists():
        return found
    try:
        node, data = safeyaml.load_file(path, "hosts.yaml: a `hosts:` mapping")
    except safeyaml.YamlRefused as exc:
        raise UsageError("\n".join(exc.problems)) from None
    lines = safeyaml.key_lines(node) if node is not None else {}
    if data is None:
        return found
    items = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(items, dict) or set(data) - {"hosts"}:
        extra = sorted(set(data) - {"hosts"}) if isinstance(data, dict) else []
        what = f"unknown key {extra[0]!r}{did_you_mean(extra[0], ['hosts'])}: " if extra else ""
        raise UsageError(f"{path}:{lines.get((extra[0],), 1) if extra else 1}: {what}write a `hosts:`"
                         " mapping of NAME: {ssh: ALIAS} (see docs/hosts.md)")
    problems: list[str] = []
    for name, item in items.items():
        try:
            found[str(name)] = _entry(str(name), item, path, lines)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("\n".join(problems))
    return found


def pick(hosts: dict[str, HostConfig], name: str, where: str = "--host") -> HostConfig:
    """The host called `name`; UsageError with a did-you-mean naming where it was written."""
    if name in hosts:
        return hosts[name]
    known = list(hosts)
    raise UsageError(f"{where}: no host named {name!r}{did_you_mean(name, known)}; hosts: {', '.join(known)}"
                     " (hosts.yaml names them; `vllmtui hosts` lists them)")
