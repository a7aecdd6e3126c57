"""Tunnel specs as written in a profile (`tunnels:`) or in `<config_dir>/tunnels.yaml`,
and the resolved `Tunnel` with its ssh command.

Kept in `profiles` (not `tunnels`) so that the Profile model can use it without importing
upward. Target host and port left out default to the profile's own server (see
`tunnels.config.resolve_spec`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vllmtui.core.net import bracketed

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Options vllmtui sets itself: a tunnel must never prompt or half-work.
RESERVED_SSH_OPTIONS = {
    "batchmode": "BatchMode=yes keeps ssh from waiting on a password prompt nobody sees",
    "exitonforwardfailure": "ExitOnForwardFailure=yes makes a failed forward visible",
    "controlmaster": "a tunnel owns its connection (ControlMaster=no)",
    "controlpath": "a tunnel owns its connection (ControlPath=none)",
    "clearallforwardings": "it would remove the tunnel's own forward",
}
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
KEEPALIVE = {"ServerAliveInterval": "15", "ServerAliveCountMax": "3", "ConnectTimeout": "10"}


class TunnelSpec(BaseModel):
    """One SSH port forward.

    `direction: local` is `ssh -L`: listen on this machine at bind_address:bind_port and
    reach target_host:target_port as the destination sees it. `direction: remote` is
    `ssh -R`: the destination listens at bind_address:bind_port and connections come back
    to target_host:target_port as this machine sees it (the usual way to hand a server on
    this box to a gateway).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    profile: str | None = None  # tunnels.yaml only: target defaults to that profile's server
    direction: Literal["local", "remote"] = "local"
    destination: str
    bind_address: str = "127.0.0.1"
    bind_port: int | None = Field(default=None, ge=1, le=65535)
    target_host: str | None = None
    target_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_options: dict[str, str] = Field(default_factory=dict)
    ssh_config: str | None = None  # passed as `ssh -F`; default: ssh's own lookup
    health_path: str | None = "/health"  # null: a plain TCP forward (no HTTP check)
    reconnect: bool = True
    retry_max: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("destination")
    @classmethod
    def _check_destination(cls, value: str) -> str:
        value = value.strip()
        if not value or value.startswith("-") or any(c.isspace() for c in value):
            raise ValueError(
                "must be an ~/.ssh/config alias or user@host[:port] (no spaces, no leading '-')"
            )
        return value

    @field_validator("ssh_options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> Any:
        if isinstance(value, list):  # also accept ["Key=value", ...]
            out: dict[str, Any] = {}
            for item in value:
                key, sep, val = str(item).partition("=")
                if not sep:
                    raise ValueError(f"{item!r}: write ssh options as Key=value")
                out[key.strip()] = val.strip()
            value = out
        if isinstance(value, dict):
            result = {}
            for key, val in value.items():
                key = str(key)
                if not _OPTION_NAME.match(key):
                    raise ValueError(f"{key!r} is not an ssh option name (see `man ssh_config`)")
                if key.lower() in RESERVED_SSH_OPTIONS:
                    raise ValueError(
                        f"{key} is set by vllmtui: {RESERVED_SSH_OPTIONS[key.lower()]}"
                    )
                if isinstance(val, bool):
                    val = "yes" if val else "no"
                result[key] = str(val)
            return result
        return value

    @field_validator("health_path")
    @classmethod
    def _health(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/' (e.g. /health), or be null for a plain TCP forward")
        return value

    @model_validator(mode="after")
    def _ports(self) -> TunnelSpec:
        if self.direction == "local" and self.bind_port is None:
            raise ValueError(
                "bind_port is required for a local tunnel: the port to listen on here, e.g."
                " 18000 (it must differ from every server's port)"
            )
        return self


def split_destination(destination: str) -> tuple[str, int | None]:
    """`user@host:2222` / `[::1]:2222` / `ssh://user@host:2222` -> (ssh destination, port)."""
    dest = destination.removeprefix("ssh://")
    user, at, host = dest.rpartition("@")
    prefix = user + at
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return prefix + inner, int(port) if port.isdigit() else None
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        if port.isdigit():
            return prefix + name, int(port)
    return prefix + host, None


@dataclass(frozen=True)
class Tunnel:
    """A tunnel with every default resolved; what is stored on its tmux session."""

    name: str
    direction: str  # local | remote
    destination: str
    bind_address: str
    bind_port: int
    target_host: str
    target_port: int
    ssh_options: tuple[tuple[str, str], ...] = ()
    ssh_config: str | None = None
    health_path: str | None = "/health"
    reconnect: bool = True
    retry_max: float = 30.0
    profile: str | None = None
    source: str = ""

    @property
    def flag(self) -> str:
        return "-L" if self.direction == "local" else "-R"

    @property
    def forward(self) -> str:
        """ssh's forward spec: bind_address:bind_port:target_host:target_port."""
        return (f"{bracketed(self.bind_address)}:{self.bind_port}:"
                f"{bracketed(self.target_host)}:{self.target_port}")

    def describe(self) -> str:
        """`127.0.0.1:18000 -> 127.0.0.1:8000 via box` (local) or `box:9000 -> ...` (remote)."""
        if self.direction == "local":
            return (f"{self.bind_address}:{self.bind_port} -> {self.target_host}:{self.target_port}"
                    f" (via {self.destination})")
        return (f"{self.destination} {self.bind_address}:{self.bind_port} -> this host"
                f" {self.target_host}:{self.target_port}")

    def ssh_argv(self) -> list[str]:
        """The ssh command: never prompts (BatchMode), exits when a forward fails, notices a
        dead connection (keepalives), owns its connection (no ControlMaster sharing)."""
        dest, port = split_destination(self.destination)
        argv = ["ssh", "-N", "-v"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if port is not None:
            argv += ["-p", str(port)]
        given = {k.lower() for k, _ in self.ssh_options}
        for key, value in self.ssh_options:  # first value wins in ssh: the user's go first
            argv += ["-o", f"{key}={value}"]
        for key, value in KEEPALIVE.items():
            if key.lower() not in given:
                argv += ["-o", f"{key}={value}"]
        argv += ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                 "-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return [*argv, self.flag, self.forward, "--", dest]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Tunnel | None:
        try:
            data = json.loads(text)
            data["ssh_options"] = tuple(tuple(p) for p in data.get("ssh_options", ()))
            return cls(**data)
        except (ValueError, TypeError):
            return None
