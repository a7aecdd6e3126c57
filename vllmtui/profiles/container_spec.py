"""Containers: a profile's `runtime: {docker: {...}}` (or `podman:`), validated, and the
`ENGINE run` argv that runs vLLM's image in the server's tmux pane (docs/containers.md).

The image's entrypoint is vLLM (`vllm/vllm-openai`: `vllm serve`), so the argv is
`ENGINE run --rm --name vllmtui-NAME --init --ipc=host [GPUs] -p HOST:PORT:PORT [-v ...]
[-e NAME ...] [extra_args] IMAGE MODEL --host 0.0.0.0 --port PORT ...`. Inside the container vLLM
listens on every interface so that the published port reaches it; the publish binds the
profile's `host`. Variables go as `-e NAME`: the engine reads the value from the pane's
environment, so a key or a token never appears on a command line or in a log.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from vllmtui.profiles.launch import LaunchSpec
    from vllmtui.profiles.model import Profile, Runtime

CONTAINER_PREFIX = "vllmtui-"
"""A server's container is named like its tmux session: `vllmtui-NAME`."""
ENGINES = ("docker", "podman")
PASSED_THROUGH = ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
"""Variables always named with `-e`: the engine sets each only when the pane has it (what a
venv's vLLM would inherit: a token, the offline switch a model pull sets)."""
NOT_PASSED = frozenset({"CUDA_VISIBLE_DEVICES"})
"""Host GPU indices mean nothing inside the container: its GPUs come from `gpus:`."""
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VOLUME_OPTIONS = frozenset({"ro", "rw", "z", "Z", "shared", "slave", "private", "rshared", "rslave",
                             "rprivate", "nocopy", "U"})

# options of `ENGINE run` that vllmtui sets itself: what to write instead
OWNED_OPTIONS: dict[str, str] = {
    "--name": "vllmtui names the container vllmtui-NAME (stop, status and the GPU view find it by it):"
              " remove it",
    "--rm": "vllmtui passes --rm already: remove it",
    "--detach": "the container runs in the server's tmux pane (its log, status and stop need that):"
                " remove it",
    "--publish": "vllmtui publishes the profile's host and port (-p HOST:PORT:PORT): set host: and"
                 " port: instead",
    "--publish-all": "vllmtui publishes the profile's host and port: set host: and port: instead",
    "--env": "write the variable in the profile's env: (vllmtui passes it as -e NAME, the value never"
             " on a command line)",
    "--gpus": "use runtime.ENGINE.gpus (all, none or a list such as [0, 1])",
    "--network": "use runtime.ENGINE.network",
    "--net": "use runtime.ENGINE.network",
}
_SHORT = {"d": "--detach", "p": "--publish", "P": "--publish-all", "e": "--env"}


def _check_volume(value: str) -> str:
    """`SRC:DST[:OPTIONS]`: SRC a host path (absolute or ~) or a volume name, DST absolute."""
    parts = value.split(":")
    example = "write e.g. /data/models:/models:ro (a host path or a volume name, ':', the path inside)"
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"{value!r} is not SRC:DST[:ro]: {example}")
    src, dst = parts[0], parts[1]
    if not (src.startswith(("/", "~")) or _VOLUME_NAME.match(src)):
        raise ValueError(f"{value!r}: the source {src!r} is neither an absolute host path nor a volume"
                         f" name: {example}")
    if not dst.startswith("/"):
        raise ValueError(f"{value!r}: the container path {dst!r} must be absolute: {example}")
    if len(parts) == 3 and not set(parts[2].split(",")) <= _VOLUME_OPTIONS:
        raise ValueError(f"{value!r}: unknown mount option {parts[2]!r}: use ro or rw (e.g. {src}:{dst}:ro)")
    return value


def _check_extra_arg(value: str) -> str:
    """An `extra_args` word that is not one of the options vllmtui sets itself."""
    name = value.partition("=")[0]
    if value.startswith("-") and not value.startswith("--") and name[1:].isalpha():
        owned = next((_SHORT[c] for c in name[1:] if c in _SHORT), None)
    else:
        owned = name if name in OWNED_OPTIONS else None
    if owned is not None:
        shown = value if owned == name else f"{value} ({owned})"
        raise ValueError(f"{shown} is set by vllmtui: {OWNED_OPTIONS[owned]}")
    return value


Volume = Annotated[str, AfterValidator(_check_volume)]
ExtraArg = Annotated[str, AfterValidator(_check_extra_arg)]


class ContainerSpec(BaseModel):
    """`runtime.docker` / `runtime.podman`: vLLM's image run by a container engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str
    engine: str | None = Field(default=None, min_length=1)
    """The engine's executable (a docker-compatible CLI); default `docker` / `podman` on PATH."""
    gpus: Literal["all", "none"] | list[int] | None = None
    """None: the profile's `gpus:`, else all."""
    volumes: list[Volume] = Field(default_factory=list)
    extra_args: list[ExtraArg] = Field(default_factory=list)
    pull: Literal["missing", "always", "never"] = "missing"
    network: str | None = Field(default=None, min_length=1)
    hf_cache: bool = True
    """Mount the Hugging Face cache (at the same path) so the container reads the host's models."""
    init: bool = True  # --init: an init process forwards signals and reaps vLLM's children

    @field_validator("image")
    @classmethod
    def _check_image(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: give vLLM's image, e.g. vllm/vllm-openai:v0.10.1")
        if value != value.strip() or " " in value or value.startswith("-"):
            raise ValueError(f"{value!r} is not an image reference: write e.g. vllm/vllm-openai:v0.10.1")
        return value

    @field_validator("gpus", mode="before")
    @classmethod
    def _split_gpus(cls, value: Any) -> Any:
        if value is False or value == []:
            return "none"
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        if isinstance(value, str) and value not in ("all", "none"):
            try:
                return [int(p) for p in value.replace(" ", "").split(",") if p]
            except ValueError:
                raise ValueError("write all, none, or GPU indices such as [0, 1] or '0,1'") from None
        return value

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: Any) -> Any:
        if isinstance(value, list) and any(g < 0 for g in value):
            raise ValueError("GPU indices start at 0 (nvidia-smi lists them)")
        return value

    @field_validator("extra_args", mode="before")
    @classmethod
    def _split_extra(cls, value: Any) -> Any:
        return shlex.split(value) if isinstance(value, str) else value


def container_of(runtime: Runtime) -> tuple[str, ContainerSpec] | None:
    """(engine kind, section) of a runtime that runs a container, else None."""
    for kind in ENGINES:
        section = getattr(runtime, kind, None)
        if section is not None:
            return kind, section
    return None


def container_name(profile_name: str) -> str:
    return CONTAINER_PREFIX + profile_name


def engine_exe(kind: str, spec: ContainerSpec) -> str:
    return str(Path(spec.engine).expanduser()) if spec.engine and "/" in spec.engine else spec.engine or kind


def container_problems(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """Rules between the container section and the rest of the profile (`cross_check`)."""
    found = container_of(profile.runtime)
    if found is None:
        return []
    kind, spec = found
    loc = ("runtime", kind)
    problems: list[tuple[tuple[str, ...], str]] = []
    if profile.nodes:
        problems.append((loc, "a container on several nodes is not supported yet: remove nodes:, or run"
                              " the nodes with runtime.venv"))
    if isinstance(spec.gpus, list) and profile.gpus is not None and sorted(spec.gpus) != sorted(profile.gpus):
        problems.append(((*loc, "gpus"), f"lists {spec.gpus} but the profile's gpus: lists {profile.gpus}:"
                                          " keep one (the profile's gpus: is the container's default)"))
    if spec.network != "host" and _publish_address(profile.host) is None:
        problems.append((("host",), f"{profile.host!r}: a container's port is published on an IP address,"
                                    " not a name: use 127.0.0.1, 0.0.0.0 or this machine's address"))
    return problems


def _publish_address(host: str) -> str | None:
    """The address part of `-p ADDRESS:PORT:PORT`, or None for a host name."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"[{address}]" if address.version == 6 else str(address)


def hub_cache(profile: Profile) -> tuple[Path, bool]:
    """The Hugging Face cache the server reads (as `models.source.profile_cache_dir` says),
    and whether it comes from `args: {download-dir: ...}` (then vLLM's flag names it)."""
    for key in ("download-dir", "download_dir"):
        if profile.args.get(key) not in (None, ""):
            return Path(str(profile.args[key])).expanduser(), True
    env = {**os.environ, **profile.env}
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not cache:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
        cache = os.path.join(home, "hub")
    return Path(cache).expanduser(), False


def _gpu_args(kind: str, spec: ContainerSpec, profile: Profile) -> list[str]:
    gpus = spec.gpus if spec.gpus is not None else (profile.gpus if profile.gpus else "all")
    if gpus == "none":
        return []
    if kind == "podman":  # CDI names (nvidia-ctk cdi generate)
        names = ["all"] if gpus == "all" else [str(g) for g in gpus]
        return [a for n in names for a in ("--device", f"nvidia.com/gpu={n}")]
    if gpus == "all":
        return ["--gpus", "all"]
    devices = ",".join(str(g) for g in gpus)
    return ["--gpus", f'"device={devices}"' if len(gpus) > 1 else f"device={devices}"]


def _mounts(spec: ContainerSpec, profile: Profile, launch: LaunchSpec) -> tuple[list[str], list[str]]:
    """(-v arguments, -e NAME=VALUE arguments) for the cache, the model and the user's volumes."""
    volumes: list[str] = []
    literal_env: list[str] = []
    if spec.hf_cache:
        cache, from_flag = hub_cache(profile)
        volumes.append(f"{cache}:{cache}")
        if not from_flag and "HF_HUB_CACHE" not in launch.env:
            literal_env.append(f"HF_HUB_CACHE={cache}")
    if launch.model_path is not None:  # a local directory (or a demo model): at the same path
        volumes.append(f"{launch.model_path}:{launch.model_path}:ro")
    template = profile.chat_template
    if template and "{" not in template and "\n" not in template:
        path = Path(template).expanduser()
        volumes.append(f"{path}:{path}:ro")
    for volume in spec.volumes:
        src, _, rest = volume.partition(":")
        volumes.append(f"{Path(src).expanduser()}:{rest}" if src.startswith("~") else volume)
    return [a for v in volumes for a in ("-v", v)], [a for e in literal_env for a in ("-e", e)]


def _served_argv(vllm_argv: list[str], host: str) -> list[str]:
    """vLLM's own arguments with `--host` set to where it listens inside the container."""
    out = list(vllm_argv)
    if "--host" in out:
        out[out.index("--host") + 1] = host
    else:
        out += ["--host", host]
    return out


def wrap(launch: LaunchSpec, profile: Profile, vllm_argv: list[str]) -> LaunchSpec:
    """The launch spec that runs `vllm_argv` (the model and vLLM's flags, after the image's
    `vllm serve` entrypoint) in the profile's container."""
    found = container_of(profile.runtime)
    assert found is not None, "wrap() is for a profile with runtime.docker or runtime.podman"
    kind, spec = found
    argv = [engine_exe(kind, spec), "run", "--rm", "--name", container_name(profile.name)]
    extra = {a.partition("=")[0] for a in spec.extra_args}
    if spec.init and "--init" not in extra:
        argv.append("--init")
    if not extra & {"--ipc", "--shm-size"}:
        argv.append("--ipc=host")  # vLLM's workers share memory (PyTorch): docker's 64 MB is too little
    argv += _gpu_args(kind, spec, profile)
    if spec.network:
        argv += ["--network", spec.network]
    if spec.network != "host":
        address = _publish_address(profile.host) or profile.host
        argv += ["-p", f"{address}:{profile.port}:{profile.port}"]
    volumes, literal_env = _mounts(spec, profile, launch)
    argv += volumes + literal_env
    names = dict.fromkeys([*(n for n in sorted(launch.env) if n not in NOT_PASSED),
                           *sorted(launch.secret_env), *PASSED_THROUGH])
    argv += [a for n in names for a in ("-e", n)]
    argv += spec.extra_args
    argv.append(spec.image)
    argv += _served_argv(vllm_argv, profile.host if spec.network == "host" else "0.0.0.0")
    return replace(launch, argv=tuple(argv))
