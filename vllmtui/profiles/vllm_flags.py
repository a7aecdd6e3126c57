"""The flags a profile's vLLM accepts, and a profile checked against them before a start.

The flags are read from the runtime's own vLLM (its argument parser, run by
`vllm_flags_dump.py` in the runtime's python: ~15 s on a CPU, once per installed vLLM, then
cached under the data dir), so a newer vLLM's new choices are accepted and a removed flag is
caught. When they cannot be read (no python for the runtime, a container command, an import
that fails) a built-in list of the closed-set fields' values is the fallback, and `args:`
flags are not checked (vLLM itself will say).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.profiles.model import FLAG_FIELDS, OFF_BY_DEFAULT, Profile

DUMP_SCRIPT = Path(__file__).with_name("vllm_flags_dump.py")
MARKER = "@@VLLMTUI-FLAGS@@"
READ_TIMEOUT = 120.0
SERVE_MODULES = ("vllm.entrypoints.cli.main", "vllm.entrypoints.openai.api_server")
MODULE_ENTRYPOINT = "vllm.entrypoints.openai.api_server"

# Typed fields whose values form a closed set, with the flag that takes them.
CLOSED_FIELDS = {
    "dtype": "--dtype",
    "kv_cache_dtype": "--kv-cache-dtype",
    "quantization": "--quantization",
    "load_format": "--load-format",
    "tool_call_parser": "--tool-call-parser",
}
# The fallback: values of vLLM 0.26-0.33 (a union, so an older or newer vLLM's values pass).
BUILTIN_VALUES: dict[str, tuple[str, ...]] = {
    "dtype": ("auto", "half", "float16", "bfloat16", "float", "float32"),
    "kv_cache_dtype": (
        "auto", "bfloat16", "float16", "fp8", "fp8_ds_mla", "fp8_e4m3", "fp8_e5m2", "fp8_inc",
        "fp8_per_token_head", "int4_per_token_head", "int8_per_token_head", "nvfp4",
        "nvfp4_4over6", "nvfp4_ds_mla", "turboquant_3bit_nc", "turboquant_4bit_nc",
        "turboquant_k3v4_nc", "turboquant_k8v4", "ultraquant_4bit",
    ),
    "quantization": (
        "aqlm", "auto_awq", "auto_gptq", "awq", "awq_marlin", "bitblas", "bitsandbytes",
        "compressed-tensors", "deepseek_v4_fp8", "deepspeedfp", "experts_int8", "fbgemm_fp8",
        "fp8", "fp8_per_block", "fp8_per_channel", "fp8_per_tensor", "fp_quant", "gguf",
        "gpt_oss_mxfp4", "gptq", "gptq_bitblas", "gptq_marlin", "gptq_marlin_24", "hqq",
        "humming", "inc", "int8_per_channel_weight_only", "ipex", "marlin", "modelopt",
        "modelopt_fp4", "modelopt_mixed", "modelopt_mxfp8", "moe_wna16", "mxfp4", "mxfp8",
        "nvfp4_per_token", "online", "petit_nvfp4", "ptpc_fp8", "quark", "rtn", "torchao",
        "tpu_int8",
    ),
    "load_format": (
        "auto", "bitsandbytes", "dummy", "fastsafetensors", "gguf", "hf", "instanttensor",
        "ipc_cache", "mistral", "modelexpress", "npcache", "pt", "runai_streamer",
        "runai_streamer_sharded", "safetensors", "sharded_state", "tensorizer",
    ),
    "tool_call_parser": (
        "apertus", "cohere_command3", "cohere_command4", "deepseek_v3", "deepseek_v31",
        "deepseek_v32", "deepseek_v4", "deepseek_v41", "dots", "ernie45", "functiongemma",
        "gemma4", "gigachat3", "glm45", "glm47", "granite", "granite-20b-fc", "granite4",
        "hermes", "hf", "hunyuan_a13b", "hy_v3", "hy_v4", "inkling", "internlm", "jamba",
        "k2_horizon", "kimi_k2", "kimi_k3", "lfm2", "ling3", "llama3_json", "llama4_json",
        "llama4_pythonic", "longcat", "mimo", "minicpm5", "minimax", "minimax_m2", "minimax_m3",
        "mistral", "muse_glimmer", "olmo3", "openai", "phi4_mini_json", "plamo3",
        "poolside_v1", "pythonic", "qwen3_coder", "qwen3_json", "qwen3_xml", "seed_oss",
        "step3", "step3p5", "xlam",
    ),
}
# Flags that let a profile name a value vLLM does not ship (a plugin registers it).
PLUGIN_FLAGS = {"tool_call_parser": "--tool-parser-plugin"}


@dataclass(frozen=True)
class VllmFlags:
    """What one vLLM accepts: its options (None when they could not be read) and the values
    of the closed-set fields; `source` says where they came from, for the user."""

    source: str
    values: dict[str, tuple[str, ...]]
    options: dict[str, dict[str, Any]] | None = None
    version: str | None = None
    from_runtime: bool = False


def builtin(reason: str) -> VllmFlags:
    """The fallback, saying why the runtime's own flags were not read."""
    return VllmFlags(f"vllmtui's built-in list ({reason})", dict(BUILTIN_VALUES))


# ---------------------------------------------------------------- reading a runtime


@dataclass
class _Memo:
    lock: threading.Lock = field(default_factory=threading.Lock)
    read: dict[str, VllmFlags] = field(default_factory=dict)


_MEMO = _Memo()


def _package_stamp(python: Path) -> str | None:
    """What changes when vLLM is installed again in this python's venv: its dist-info
    directories with their mtimes; None when the python is not in a venv we can see into."""
    root = python.parent.parent
    found = []
    libs = [*root.glob("lib/python3*/*-packages"), *root.glob("local/lib/python3*/*-packages")]
    for lib in libs:
        for info in lib.glob("vllm*.dist-info"):
            try:
                found.append(f"{info.name}:{info.stat().st_mtime_ns}")
            except OSError:
                continue
    return ";".join(sorted(found)) or None


def read_runtime(
    python: str, modules: tuple[str, ...], cache_dir: Path, say: Callable[[str], None] | None = None
) -> VllmFlags:
    """The flags of the vLLM installed for `python`, cached per installation; the built-in
    list (saying why) when they cannot be read."""
    exe = Path(python)
    if not exe.is_file():
        return builtin(f"{python} does not exist")
    stamp = _package_stamp(exe.absolute()) or _package_stamp(exe.resolve())
    if stamp is None:
        return builtin(f"no vLLM installed next to {python}")
    key = hashlib.sha256(f"{exe.absolute()}|{stamp}|{','.join(modules)}".encode()).hexdigest()[:24]
    with _MEMO.lock:
        if key in _MEMO.read:
            return _MEMO.read[key]
        payload = _load_cache(cache_dir / f"{key}.json")
        if payload is None:
            if say:
                say(f"reading the flags of the vLLM in {python} (once per installed vLLM)")
            dumped = _run_dump(python, modules)
            if isinstance(dumped, str):
                return builtin(dumped)
            payload = dumped
            _save_cache(cache_dir / f"{key}.json", payload)
        flags = _from_payload(payload, python)
        _MEMO.read[key] = flags
        return flags


def _run_dump(python: str, modules: tuple[str, ...]) -> dict[str, Any] | str:
    """The dump script's payload, or why it could not be had."""
    why = "no module of vLLM's server could be run"
    for module in modules:
        try:
            proc = subprocess.run(
                [python, str(DUMP_SCRIPT), module],
                capture_output=True, text=True, timeout=READ_TIMEOUT,
                env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR", "PYTHONWARNINGS": "ignore"},
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            why = f"reading vLLM's flags took over {READ_TIMEOUT:.0f} s"
            continue
        except OSError as exc:
            return f"{python} cannot run: {exc.strerror}"
        for line in proc.stdout.splitlines():
            if line.startswith(MARKER):
                try:
                    payload = json.loads(line[len(MARKER) :])
                except ValueError:
                    break
                if isinstance(payload, dict) and isinstance(payload.get("flags"), dict):
                    return payload
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = f"{module} failed: {lines[-1][:160] if lines else f'exit status {proc.returncode}'}"
    return why


def _load_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("flags"), dict) else None


def _save_cache(path: Path, payload: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next check the same read


def _from_payload(payload: dict[str, Any], python: str) -> VllmFlags:
    options: dict[str, dict[str, Any]] = payload["flags"]
    version = payload.get("vllm_version")
    values = dict(BUILTIN_VALUES)
    named = payload.get("values") or {}
    for name, flag in CLOSED_FIELDS.items():
        choices = (options.get(flag) or {}).get("choices") or named.get(name)
        if choices:
            values[name] = tuple(str(c) for c in choices)
    label = f"vLLM {version}" if version else "the vLLM"
    return VllmFlags(f"{label} in {python} (its own parser)", values, options, version, True)


# ---------------------------------------------------------------- checking a profile


Found = tuple[tuple[str, ...], str]  # (key path, message)


def check_profile(profile: Profile, flags: VllmFlags) -> list[Found]:
    """Each typed closed-set field against the values this vLLM takes; with the runtime's own
    options also every flag the profile turns into (typed fields and `args:`), their on/off
    form and their values."""
    found: list[Found] = []
    for name in CLOSED_FIELDS:
        value = getattr(profile, name)
        if value is None:
            continue
        allowed = flags.values.get(name, ())
        plugin = PLUGIN_FLAGS.get(name)
        if plugin and _given(profile, plugin):
            continue
        if allowed and str(value) not in allowed:
            found.append(((name,), _not_one_of(value, allowed, flags)))
    if flags.options is None:
        return found
    done = {loc for loc, _message in found}
    for loc, flag, value in _generated(profile):
        problem = None if loc in done else _check_flag(flag, value, flags)
        if problem:
            found.append((loc, problem))
    return found


def _given(profile: Profile, flag: str) -> bool:
    names = {str(k).replace("_", "-") for k in profile.args}
    return flag[2:] in names


def _not_one_of(value: Any, allowed: tuple[str, ...], flags: VllmFlags) -> str:
    import difflib

    close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listed = ", ".join(allowed) if len(allowed) <= 24 else ", ".join(allowed[:24]) + ", ..."
    return f"got {value!r}{hint}: {_who(flags)} accepts {listed}"


def _who(flags: VllmFlags) -> str:
    return f"vLLM {flags.version}" if flags.version else "vLLM" if flags.from_runtime else "vLLM"


def _generated(profile: Profile) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """(key path, flag without a --no- prefix resolved, value) for each flag the profile makes."""
    for name in FLAG_FIELDS:
        value = getattr(profile, name)
        if value is not None and not (value is False and name in OFF_BY_DEFAULT):
            yield (name,), "--" + name.replace("_", "-"), value
    for key, value in profile.args.items():
        if value is not None:
            yield ("args", str(key)), "--" + str(key).replace("_", "-"), value


def _check_flag(flag: str, value: Any, flags: VllmFlags) -> str | None:
    """Why vLLM would refuse `flag` given `value` (as `profiles.launch` writes it), or None."""
    options = flags.options or {}
    info = options.get(flag)
    if info is None:
        import difflib

        close = difflib.get_close_matches(flag, list(options), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0][2:]}?)" if close else ""
        return f"{_who(flags)} has no flag {flag}{hint}: fix the name or remove the line"
    nargs = info.get("nargs")
    if isinstance(value, bool):
        if value is False and nargs == "0" and f"--no-{flag[2:]}" not in options:
            return f"{flag} is an on switch without an off form: remove the line to leave it off"
        if value is True and nargs not in ("0", "?"):
            return f"{flag} takes a value, not true/false"
        return None
    if nargs == "0":
        return f"{flag} is an on/off switch: write true or false"
    if isinstance(value, list) and nargs in (None, "?"):
        return f"{flag} takes one value, not a list"
    choices = info.get("choices")
    if choices:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if str(item) not in choices:
                return _not_one_of(item, tuple(choices), flags)
    return None
