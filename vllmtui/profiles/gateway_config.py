"""`<config_dir>/gateway.yaml`: how the gateway listens and what it serves, validated like a
profile (every problem as `file:line: field: message`). A missing file means the defaults.

Kept in `profiles` (the layer that reads what users write) so that the tunnels can offer the
gateway's tunnel without importing the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vllmtui.core import safeyaml
from vllmtui.core.net import base_url, client_host
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import did_you_mean
from vllmtui.profiles.model import BrokenProfile, LoadedProfile, check_host, check_key_env, parse_minutes
from vllmtui.profiles.tunnel_spec import TunnelSpec

FILE_NAME = "gateway.yaml"


def _seconds(value: Any) -> Any:
    """Seconds: a number, or text such as '90s', '10m' (parse_minutes' units)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    return parse_minutes(text) * 60.0


class GatewayConfig(BaseModel):
    """The gateway's settings (`gateway.yaml`); durations in seconds ('90s', '10m' also)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    api_key_env: str | None = None
    profiles: list[str] | None = None  # None: every profile
    start_timeout: float = Field(default=600.0, gt=0, le=86400)
    wake_timeout: float = Field(default=60.0, gt=0, le=3600)
    idle_check: float = Field(default=10.0, ge=0.1, le=3600)
    request_timeout: float = Field(default=600.0, gt=0, le=86400)
    retry_after: int = Field(default=30, ge=1, le=3600)
    swap: bool = True
    max_body_mb: float = Field(default=64.0, gt=0, le=4096)
    tunnels: list[TunnelSpec] = Field(default_factory=list)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return check_key_env(value, "VLLMTUI_GATEWAY_KEY")

    @field_validator("start_timeout", "wake_timeout", "idle_check", "request_timeout", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _seconds(value)

    @property
    def base_url(self) -> str:
        """What a client on this machine uses (`/v1` added)."""
        return base_url(client_host(self.host), self.port) + "/v1"

    @property
    def origin(self) -> str:
        return base_url(client_host(self.host), self.port)


@dataclass(frozen=True)
class LoadedGateway:
    config: GatewayConfig
    path: Path
    exists: bool
    lines: dict[tuple[str, ...], int]

    def where(self, *loc: str) -> str:
        """`file:line` of a field (the file's first line when not written there)."""
        return f"{self.path}:{self.lines.get(tuple(loc)) or 1}"


def gateway_file(settings: Settings) -> Path:
    return settings.config_dir / FILE_NAME


def load_gateway(
    settings: Settings,
    profiles: list[LoadedProfile] | None = None,
    broken: list[BrokenProfile] | None = None,
) -> tuple[LoadedGateway, list[str]]:
    """The gateway's config and its problems (`file:line: field: message`); with problems
    the config returned is the defaults and must not be used to serve."""
    path = gateway_file(settings)
    default = LoadedGateway(GatewayConfig(), path, False, {})
    if not path.exists():
        return default, []
    try:
        node, data = safeyaml.load_file(path)
    except safeyaml.YamlRefused as exc:
        return default, list(exc.problems)
    lines = safeyaml.key_lines(node) if node is not None else {}
    data = {} if data is None else data
    if not isinstance(data, dict):
        return default, [f"{path}:1: write a mapping of settings (host:, port:, profiles:, ...);"
                         " see docs/gateway.md"]
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), 1)
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting" + did_you_mean(loc[-1], list(GatewayConfig.model_fields))
            problems.append(f"{path}:{line}: {'.'.join(loc)}: {msg}")
        return default, problems
    loaded = LoadedGateway(config, path, True, lines)
    problems = []
    if config.profiles is not None and profiles is not None:
        known = [p.profile.name for p in profiles] + [b.name for b in broken or []]
        for index, name in enumerate(config.profiles):
            if name not in known:
                line = lines.get(("profiles", str(index))) or lines.get(("profiles",)) or 1
                problems.append(f"{path}:{line}: profiles.{index}: no profile named {name!r}"
                                f"{did_you_mean(name, known)}")
    return loaded, problems


def served_profiles(config: GatewayConfig, profiles: list[LoadedProfile]) -> list[LoadedProfile]:
    """The profiles the gateway serves (`profiles:`, default every one), in that order."""
    if config.profiles is None:
        return list(profiles)
    by_name = {p.profile.name: p for p in profiles}
    return [by_name[n] for n in config.profiles if n in by_name]
