"""Which tunnels are configured: a profile's `tunnels:`, the user's `<config_dir>/tunnels.yaml`,
each resolved against its profile's server, and the local ports they would clash on."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from vllmtui.core import safeyaml
from vllmtui.core.errors import UsageError
from vllmtui.core.net import client_host
from vllmtui.core.settings import Settings
from vllmtui.profiles.gateway_config import load_gateway
from vllmtui.profiles.loading import did_you_mean, discover
from vllmtui.profiles.model import LoadedProfile, Profile
from vllmtui.profiles.tunnel_spec import Tunnel, TunnelSpec


def resolve_spec(
    spec: TunnelSpec, name: str, profile: Profile | None, source: str
) -> Tunnel:
    """Fill in the defaults: target = the profile's server, remote bind port = target port."""
    target_host = spec.target_host or (profile.client_host if profile else "127.0.0.1")
    target_port = spec.target_port or (profile.port if profile else None)
    if target_port is None:
        raise UsageError(
            f"{source}: tunnel {name}: target_port is required (or name a profile with"
            " `profile:` so the tunnel reaches its server)"
        )
    bind_port = spec.bind_port or target_port
    return Tunnel(
        name=name, direction=spec.direction, destination=spec.destination,
        bind_address=spec.bind_address, bind_port=bind_port, target_host=target_host,
        target_port=target_port, ssh_options=tuple(spec.ssh_options.items()),
        ssh_config=str(Path(spec.ssh_config).expanduser()) if spec.ssh_config else None,
        health_path=spec.health_path, reconnect=spec.reconnect, retry_max=spec.retry_max,
        profile=profile.name if profile else None, source=source,
    )


def profile_tunnels(loaded: LoadedProfile) -> list[Tunnel]:
    """A profile's tunnels; the first is named after the profile, the next NAME-2, NAME-3."""
    out = []
    for index, spec in enumerate(loaded.profile.tunnels):
        default = loaded.profile.name if index == 0 else f"{loaded.profile.name}-{index + 1}"
        out.append(resolve_spec(spec, spec.name or default, loaded.profile, str(loaded.path)))
    return out


def user_tunnels_file(settings: Settings) -> Path:
    return settings.config_dir / "tunnels.yaml"


def load_user_tunnels(
    settings: Settings, profiles: list[LoadedProfile]
) -> tuple[list[Tunnel], list[str]]:
    """Tunnels from `<config_dir>/tunnels.yaml` (a `tunnels:` list), and its problems
    as `file:line: field: message` lines."""
    path = user_tunnels_file(settings)
    if not path.is_file():
        return [], []
    try:
        node, data = safeyaml.load_file(path)
    except safeyaml.YamlRefused as exc:
        return [], exc.problems
    data = data or {}
    lines = safeyaml.key_lines(node) if node is not None else {}
    items = data.get("tunnels") if isinstance(data, dict) else None
    if not isinstance(items, list) or set(data) - {"tunnels"}:
        return [], [f"{path}:1: write a `tunnels:` list of tunnels (see docs/tunnels.md)"]
    by_name = {p.profile.name: p.profile for p in profiles}
    tunnels: list[Tunnel] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        base = ("tunnels", str(index))
        try:
            spec = TunnelSpec.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = base + tuple(str(p) for p in err["loc"])
                line = lines.get(loc) or lines.get(base)
                msg = str(err["msg"]).removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown field" + did_you_mean(loc[-1], list(TunnelSpec.model_fields))
                problems.append(f"{path}:{line}: {'.'.join(loc)}: {msg}")
            continue
        where = f"{path}:{lines.get(base)}"
        if not spec.name:
            problems.append(f"{where}: tunnels.{index}.name: is required in tunnels.yaml")
            continue
        profile = None
        if spec.profile:
            profile = by_name.get(spec.profile)
            if profile is None:
                problems.append(f"{where}: tunnels.{index}.profile: no profile named"
                                f" {spec.profile!r}{did_you_mean(spec.profile, list(by_name))}")
                continue
        try:
            tunnels.append(resolve_spec(spec, spec.name, profile, str(path)))
        except UsageError as exc:
            problems.append(f"{where}: {exc}".replace(f"{path}: ", ""))
    return tunnels, problems


def gateway_tunnels(settings: Settings) -> tuple[list[Tunnel], list[str]]:
    """The tunnels of gateway.yaml (`tunnels:`): one reaches every model the gateway serves.
    The first is named `gateway`, the next gateway-2, ...; their target defaults to the
    gateway's own host and port."""
    loaded, problems = load_gateway(settings)
    if problems:
        return [], []  # reported by `vllmtui gateway` and `vllmtui check`
    config = loaded.config
    out: list[Tunnel] = []
    for index, spec in enumerate(config.tunnels):
        spec = spec.model_copy(update={"target_host": spec.target_host or client_host(config.host),
                                       "target_port": spec.target_port or config.port})
        name = spec.name or ("gateway" if index == 0 else f"gateway-{index + 1}")
        try:
            out.append(resolve_spec(spec, name, None, str(loaded.path)))
        except UsageError as exc:
            problems.append(str(exc))
    return out, problems


def configured(
    settings: Settings, profiles: list[LoadedProfile] | None = None
) -> tuple[list[Tunnel], list[str]]:
    """Every configured tunnel (profiles first, then tunnels.yaml) and the problems found."""
    if profiles is None:
        profiles, _ = discover(settings)
    found: list[Tunnel] = []
    problems: list[str] = []
    for loaded in profiles:
        if loaded.profile.tunnels and loaded.profile.tunnels[0].profile:
            problems.append(f"{loaded.path}: tunnels: `profile:` belongs in tunnels.yaml only")
        try:
            found += profile_tunnels(loaded)
        except UsageError as exc:
            problems.append(str(exc))
    user, user_problems = load_user_tunnels(settings, profiles)
    problems += user_problems
    gateway, gateway_problems = gateway_tunnels(settings)
    user += gateway
    problems += gateway_problems
    seen: dict[str, Tunnel] = {}
    for tunnel in found + user:
        problems += [f"{tunnel.source}: tunnel {tunnel.name}: {p}"
                     for p in port_conflicts(tunnel, profiles, {})]
        if tunnel.name in seen:
            problems.append(f"{tunnel.source}: tunnel name {tunnel.name!r} is also used by"
                            f" {seen[tunnel.name].source}; the first one wins")
            continue
        seen[tunnel.name] = tunnel
    return list(seen.values()), problems


def port_conflicts(
    tunnel: Tunnel, profiles: list[LoadedProfile], server_ports: dict[int, str]
) -> list[str]:
    """Why a local tunnel's port must not be used: it is a server's port (configured or
    running). Remote tunnels listen on the destination, so they clash with nothing here."""
    if tunnel.direction != "local":
        return []
    out = [f"port {tunnel.bind_port} is the server port of profile {p.profile.name!r}"
           f" ({p.path}): pick another bind_port"
           for p in profiles if p.profile.port == tunnel.bind_port]
    if tunnel.bind_port in server_ports and not out:
        out.append(f"port {tunnel.bind_port} is used by the running server"
                   f" {server_ports[tunnel.bind_port]}: pick another bind_port")
    return out
