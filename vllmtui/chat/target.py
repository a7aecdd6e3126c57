"""Whom a chat talks to: a profile's server (checked ready, and able to call tools when
tools are offered) or a model behind the gateway (which starts or wakes it on demand), and
where its conversations are saved."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vllmtui.chat.conversation import CHATS
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.gateway.manage import gateway_key, gateway_status, load_checked
from vllmtui.probes.explain import TOOL_PARSER_FIELDS
from vllmtui.probes.spec import ProbeTarget
from vllmtui.probes.target import probe_target
from vllmtui.profiles.loading import discover, find_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers import runs
from vllmtui.servers.fleet import Fleet

GATEWAY_CHATS = "gateway"  # <state>/gateway/chats: conversations through the gateway


@dataclass(frozen=True)
class ChatTarget:
    """A resolved chat target: the request target, the generation defaults, where chats are
    saved (`folder`, None when it cannot be saved) and where to look for older ones."""

    target: ProbeTarget
    generation: dict[str, Any]
    folder: Path | None
    history: tuple[Path, ...]
    profile: LoadedProfile | None = None
    via_gateway: bool = False

    @property
    def can_call_tools(self) -> bool:
        """False when the profile's server cannot parse tool calls (through the gateway it
        is the backend's profile that decides)."""
        if self.profile is None:
            return True
        p = self.profile.profile
        return bool(p.enable_auto_tool_choice and p.tool_call_parser)

    def tools_problem(self) -> str:
        """Why tools cannot be offered, naming the profile fields to set."""
        path = self.profile.path if self.profile is not None else "the profile"
        return (f"{path}: {self.target.name} has no tool parser, so it cannot call tools: set"
                f" `{TOOL_PARSER_FIELDS}` (or the parser your model needs) and restart it;"
                " chat without tools (no --tool) works now")


def server_target(settings: Settings, name: str, url: str | None = None) -> ChatTarget:
    """A profile's running server. Refused (UsageError) when it is not ready, with the way out."""
    fleet = Fleet(settings)
    loaded = find_profile(settings, name)
    status = fleet.status(loaded)
    if status.state != "ready" and url is None:
        raise UsageError(_not_ready(loaded.profile.name, status.state, status.phase_label or status.detail))
    target = probe_target(fleet, loaded, url)
    folder = target.run_dir / CHATS if target.run_dir is not None else None
    return ChatTarget(target, dict(target.generation), folder, chat_history(settings, name), loaded)


def _not_ready(name: str, state: str, detail: str | None) -> str:
    if state in ("stopped", "exited", "crashed"):
        return (f"{name} is {state}: start it with `vllmtui start {name}` (or chat through the gateway,"
                f" which starts it on demand: `vllmtui chat --gateway {name}`)")
    if state == "asleep":
        return f"{name} is asleep: chat through the gateway, which wakes it: `vllmtui chat --gateway {name}`"
    more = f" ({detail})" if detail else ""
    return f"{name} is {state}{more}: wait until it is ready (`vllmtui status {name}`)"


def gateway_target(settings: Settings, model: str) -> ChatTarget:
    """A model behind the gateway: the gateway's URL and key, the backend profile's
    generation defaults and tool parser when the model is one of its profiles."""
    config = load_checked(settings)
    status = gateway_status(settings)
    if status.state != "up":
        more = f" ({status.detail})" if status.detail else ""
        raise UsageError(f"the gateway is {status.state}{more}: start it with `vllmtui gateway up`")
    key = gateway_key(config)
    loaded = _backend(settings, model)
    generation = loaded.profile.generation.model_dump(exclude_none=True) if loaded else {}
    served = loaded.profile.model_name if loaded else model
    target = ProbeTarget(name=model, base_url=config.config.origin, model=served,
                         api_key_env=config.config.api_key_env, api_key=key, generation=generation)
    history = chat_history(settings, model, gateway=True)
    return ChatTarget(target, generation, history[0], history, loaded, via_gateway=True)


def _backend(settings: Settings, model: str) -> LoadedProfile | None:
    good, _ = discover(settings)
    hits = [p for p in good if p.profile.name == model]
    hits = hits or [p for p in good if model in (p.profile.model_name, p.profile.model)]
    return hits[0] if hits else None


def chat_history(settings: Settings, name: str, gateway: bool = False) -> tuple[Path, ...]:
    """Where the saved conversations of a profile (every run of it) or the gateway are."""
    if gateway:
        return (settings.state_dir / GATEWAY_CHATS / CHATS,)
    loaded = find_profile(settings, name)
    return tuple(run.path / CHATS for run in runs.runs_of(settings, loaded.profile.name))


def chat_target(settings: Settings, name: str, gateway: bool = False, url: str | None = None,
                model: str | None = None) -> ChatTarget:
    """The target `vllmtui chat NAME` and the Chat tab use."""
    found = gateway_target(settings, name) if gateway else server_target(settings, name, url)
    if model:
        found = replace(found, target=replace(found.target, model=model))
    return found
