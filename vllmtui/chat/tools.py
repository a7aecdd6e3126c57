"""The chat's tools: the MCP servers of `mcp.yaml`, started once for a chat, as the session's
`ToolRunner`; and the generation settings a user changes in the session (`temperature=0.2`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vllmtui.chat.mcp_config import load_mcp_config, mcp_file
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.probes.toolcheck import ToolSpec
from vllmtui.profiles.model import Generation

if TYPE_CHECKING:  # the SDK's client takes 1.5 s to import: only when mcp.yaml names servers
    from vllmtui.chat.mcp_hub import McpHub


class HubTools:
    """MCP tools for a ChatSession (`only`: offer just these tools)."""

    def __init__(self, hub: McpHub, only: tuple[str, ...] = ()):
        self.hub = hub
        self.only = only

    def specs(self) -> list[ToolSpec]:
        return [t.spec() for t in self.hub.tools if not self.only or t.name in self.only]

    def run(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        outcome = self.hub.call(name, arguments)
        return outcome.text, outcome.is_error

    def close(self) -> None:
        self.hub.close()


def open_tools(settings: Settings) -> tuple[HubTools | None, list[str]]:
    """Start the MCP servers of `mcp.yaml` (None when it names none). Returns the tools and
    the problems: the file's (then nothing is started) or each server's that did not start."""
    path = mcp_file(settings)
    specs, problems = load_mcp_config(path)
    if problems:
        return None, [f"{path} has problems (no MCP server was started):", *problems]
    if not [s for s in specs if not s.disabled]:
        return None, []
    from vllmtui.chat.mcp_hub import McpHub

    hub = McpHub(specs, source=path).start()
    return HubTools(hub), list(hub.problems)


def tool_named(tools: HubTools | None, name: str) -> str:
    """`--tool NAME` checked against the tools the MCP servers offer."""
    known = [s.name for s in tools.specs()] if tools is not None else []
    if name in known:
        return name
    offered = ", ".join(known) or "none (name MCP servers in mcp.yaml in the config dir)"
    raise UsageError(f"--tool {name}: no MCP tool of that name; the tools offered: {offered}")


def parse_settings(current: dict[str, Any], text: str) -> dict[str, Any]:
    """`temperature=0.2 max_tokens=200` (or `max_tokens=` to drop one) applied to `current`,
    checked against the profile's `generation` fields and ranges."""
    values = dict(current)
    for item in text.split():
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r}: write NAME=VALUE, e.g. temperature=0.2")
        if key not in Generation.model_fields:
            known = ", ".join(Generation.model_fields)
            raise UsageError(f"{key!r} is not a generation setting; known: {known}")
        if raw == "":
            values.pop(key, None)
            continue
        values[key] = raw
    try:
        checked = Generation.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise UsageError(f"{field}: {str(err['msg']).removeprefix('Value error, ')}") from None
    return checked.model_dump(exclude_none=True)
