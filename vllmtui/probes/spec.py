"""What a probe is aimed at (a base URL, a model, an API key) and how it runs (timeouts,
prompts, tools): plain data, shared by the runner and the explanations without a cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.probes.toolcheck import ToolSpec

TextCallback = Callable[[str], None]  # receives each streamed piece of text
KINDS = ("chat", "tools", "roundtrip")
TOOL_CHOICES = ("auto", "required", "named")
DEFAULT_PROMPT = "Write one short sentence about the sea."


@dataclass(frozen=True)
class ProbeTarget:
    """Where and what to probe: resolved from a profile (`probes.target.probe_target`) or given
    directly. `api_key` is the key's value: never serialised, never shown."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    generation: dict[str, Any] = field(default_factory=dict)
    profile_path: Path | None = None
    run_dir: Path | None = None
    tools_file: Path | None = None
    tunnelled: bool = False


@dataclass(frozen=True)
class ProbeOptions:
    """Limits and choices. Timeouts bound every wait; `deadline` bounds a whole request."""

    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    deadline: float = 180.0
    prompt: str = DEFAULT_PROMPT
    tool_max_tokens: int = 512
    extra_tools: tuple[ToolSpec, ...] = ()
    named_tool: str | None = None
    tool_choices: tuple[str, ...] = TOOL_CHOICES
