"""Helpers for the tunnel tests: a loaded profile from text, a resolved local tunnel,
two tunnel statuses."""

from __future__ import annotations

from pathlib import Path

from vllmtui.profiles.loading import parse_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.profiles.tunnel_spec import Tunnel, TunnelSpec
from vllmtui.tunnels.config import resolve_spec
from vllmtui.tunnels.state import TunnelStatus


def loaded(text: str, name: str = "srv") -> LoadedProfile:
    path = Path(f"/profiles/{name}.yaml")
    profile, warnings = parse_profile(text, path)
    return LoadedProfile(profile, path, warnings)


def local(**fields: object) -> Tunnel:
    base: dict[str, object] = {"destination": "box", "bind_port": 18000, "target_port": 8000}
    base.update(fields)
    return resolve_spec(TunnelSpec.model_validate(base), "t", None, "tunnels.yaml")


def statuses() -> list[TunnelStatus]:
    up = resolve_spec(TunnelSpec(destination="gw", direction="remote"), "srv",
                      loaded("model: m\nport: 8000\n").profile, "p.yaml")
    return [
        TunnelStatus("srv", "up", "forward confirmed by the destination", up),
        TunnelStatus("web", "failed", "auth failed: the server refused every key", local()),
    ]
