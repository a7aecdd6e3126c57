"""The checks before a container start (part of `launch.preflight`, so `vllmtui check` says
the same as `vllmtui start`): the engine is installed and works, no leftover container holds
the server's name, the image is there or may be pulled, the mounted host paths exist."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vllmtui.core.containers import Container, engine_run
from vllmtui.profiles.container_spec import container_name, container_of, engine_exe
from vllmtui.profiles.launch import LaunchSpec, Problem
from vllmtui.profiles.model import LoadedProfile

INSTALL = {
    "docker": "install it (https://docs.docker.com/engine/install/)",
    "podman": "install it (e.g. apt-get install podman)",
}
DAEMON = {
    "docker": "start it (sudo systemctl start docker), or check DOCKER_HOST and that you may use it"
              " (the docker group)",
    "podman": "`podman info` says why",
}


def engine_problems(loaded: LoadedProfile, spec: LaunchSpec, check_name: bool = True) -> list[Problem]:
    """Errors and warnings about the profile's container engine and image; changes nothing.
    `check_name`: look for a leftover container of the server's name (not while it runs)."""
    found = container_of(loaded.profile.runtime)
    if found is None:
        return []
    kind, section = found
    field = f"runtime.{kind}"
    where = loaded.where(("runtime", kind))
    exe = engine_exe(kind, section)
    path = shutil.which(exe) if not os.path.isabs(exe) else (exe if os.access(exe, os.X_OK) else None)
    if path is None:
        at = (f"{exe} is not an executable" if section.engine else f"{kind} is not installed here")
        return [Problem("error", f"{field}.engine" if section.engine else field,
                        f"{at}: {INSTALL[kind]}, or point {field}.engine at a {kind}-compatible executable",
                        loaded.where(("runtime", kind, "engine")) if section.engine else where)]
    version = engine_run(exe, "version")
    if not version.ok:
        return [Problem("error", field, f"{kind} does not work here ({version.reason()}): {DAEMON[kind]}",
                        where)]
    problems = _mount_problems(loaded, kind)
    name = container_name(loaded.profile.name)
    if check_name and Container(exe, name).exists():
        problems.append(Problem("error", field, f"a container named {name} is already there (left by an"
                                f" earlier run?): remove it with `{kind} rm -f {name}`", where))
    image = section.image
    present = engine_run(exe, "image", "inspect", image).ok
    if not present and section.pull == "never":
        problems.append(Problem("error", f"{field}.pull", f"the image {image} is not on this machine and pull"
                                f" is never: pull it (`{kind} pull {image}`) or set pull: missing",
                                loaded.where(("runtime", kind, "pull"))))
    elif not present:
        problems.append(Problem("warning", f"{field}.image", f"{image} is not on this machine yet: the"
                                " server pulls it first (its progress shows in `vllmtui status`)",
                                loaded.where(("runtime", kind, "image"))))
    return problems


def _mount_problems(loaded: LoadedProfile, kind: str) -> list[Problem]:
    """Host paths of `volumes:` that do not exist (an engine would make them, empty, as root)."""
    found = container_of(loaded.profile.runtime)
    assert found is not None
    problems = []
    for index, volume in enumerate(found[1].volumes):
        src = volume.partition(":")[0]
        if src.startswith(("/", "~")) and not Path(src).expanduser().exists():
            problems.append(Problem(
                "error", f"runtime.{kind}.volumes.{index}",
                f"{src} does not exist on this machine: create it or fix the path",
                loaded.where(("runtime", kind, "volumes", str(index)))))
    return problems
