"""From a profile to a probe target: base URL (local, or a tunnel's local port), served
model name, API key (from the variable the profile names), generation defaults, the
server's current run directory, and the options its `probe:` section sets."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vllmtui.core import net
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.probes.results import ProbeResult, ProbeStep
from vllmtui.probes.runner import run_probe
from vllmtui.probes.snippets import Snippets, client_snippets
from vllmtui.probes.spec import ProbeOptions, ProbeTarget, TextCallback
from vllmtui.probes.toolcheck import load_tools_file
from vllmtui.profiles.loading import discover, find_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus, session_name


def probe_target(
    fleet: Fleet,
    loaded: LoadedProfile,
    url: str | None = None,
    model: str | None = None,
) -> ProbeTarget:
    """The target for a profile's server. `url` (e.g. `http://127.0.0.1:18100`, a tunnel's
    local end) replaces the profile's host and port; `model` the served model name."""
    profile = loaded.profile
    session = fleet.tmux.session(session_name(profile.name))
    run_dir = None
    if session is not None and session.option("run-dir"):
        run_dir = Path(str(session.option("run-dir")))
    base_url = profile.base_url
    if session is not None and session.option("port"):
        host = session.option("host") or profile.host
        base_url = net.base_url(host, int(session.option("port") or 0))
    if url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {url!r}: write it as http://HOST:PORT")
        base_url = url.rstrip("/").removesuffix("/v1")
    key_env = profile.api_key_env
    tools_file = None
    if profile.probe.tools_file:
        tools_file = Path(profile.probe.tools_file).expanduser()
        if not tools_file.is_absolute():
            tools_file = loaded.path.parent / tools_file
    return ProbeTarget(
        name=profile.name,
        base_url=base_url,
        model=model or profile.model_name,
        api_key_env=key_env,
        api_key=os.environ.get(key_env) or None if key_env else None,
        generation=profile.generation.model_dump(exclude_none=True),
        profile_path=loaded.path,
        run_dir=run_dir,
        tools_file=tools_file,
        tunnelled=bool(url) and base_url != profile.base_url,
    )


def probe_options(
    loaded: LoadedProfile,
    target: ProbeTarget,
    tools_file: str | None = None,
    prompt: str | None = None,
    named_tool: str | None = None,
    **limits: Any,
) -> ProbeOptions:
    """Options from the profile's `probe:` section, overridden by the caller's values.
    A tools file is read here (UsageError naming the file and tool when it is wrong)."""
    settings = loaded.profile.probe
    path = Path(tools_file).expanduser() if tools_file else target.tools_file
    extra = load_tools_file(path) if path else ()
    options = ProbeOptions(extra_tools=extra, **limits)
    return replace(
        options,
        prompt=prompt or settings.prompt or options.prompt,
        named_tool=named_tool or settings.named_tool,
    )


def status_reader(fleet: Fleet, loaded: LoadedProfile) -> Callable[[], ServerStatus | None]:
    """A `status_of` for `run_probe`: the server's status, or None when it cannot be read."""

    def read() -> ServerStatus | None:
        try:
            return fleet.status(loaded)
        except Exception:  # noqa: BLE001 - an explanation must never fail the probe
            return None

    return read


def probe_server(
    settings: Settings,
    name: str,
    kind: str,
    on_text: TextCallback | None = None,
    cancel: threading.Event | None = None,
) -> ProbeResult:
    """Everything a TUI worker needs in one call: load the profile, resolve the target and
    options, run the probe, save it. Never raises: a profile or tools-file mistake comes
    back as a failed result whose step says what to fix."""
    fleet = Fleet(settings)
    try:
        loaded = find_profile(settings, name)
        target = probe_target(fleet, loaded)
        options = probe_options(loaded, target)
    except VllmtuiError as exc:
        step = ProbeStep("setup", False, error=str(exc))
        return ProbeResult(kind, name, "", "", time.time(), 0.0, False, (step,))
    return run_probe(kind, target, options, on_text, cancel, status_reader(fleet, loaded))


def server_snippets(settings: Settings, name: str, url: str | None = None,
                    loaded: LoadedProfile | None = None) -> Snippets | str:
    """The client snippets of a server (for the TUI), or what went wrong as a sentence.
    `loaded`: its profile as the caller has it (else it is looked up: every profile parsed)."""
    try:
        target = probe_target(Fleet(settings), loaded or find_profile(settings, name), url)
    except VllmtuiError as exc:
        return str(exc)
    return client_snippets(target.base_url, target.model, target.api_key_env)


def tunnel_url(settings: Settings, loaded: LoadedProfile, name: str) -> tuple[str, str | None]:
    """The base URL through a configured tunnel, and where that URL works: None for here (a
    `local` tunnel's listening end), else the destination host (a `remote` tunnel's end)."""
    from vllmtui.tunnels.manager import Tunnels

    profiles, _ = discover(settings)
    if all(p.profile.name != loaded.profile.name for p in profiles):
        profiles.append(loaded)
    found = Tunnels(settings).find(name, profiles)
    tunnel = found[0]
    url = net.base_url(tunnel.bind_address, tunnel.bind_port)
    return url, None if tunnel.direction == "local" else tunnel.destination
