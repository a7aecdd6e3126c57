"""The checks before a container start (`vllmtui check` and `start` say the same): the engine
missing or without its daemon, a leftover container of the server's name, an image that is not
here with `pull: never`, a mounted host path that does not exist. Against the docker STAND-IN."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_standin import DockerStandin
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import preflight
from vllmtui.profiles.loading import parse_profile_lines
from vllmtui.profiles.model import LoadedProfile

PATH = Path("/p/box.yaml")


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[DockerStandin]:
    standin = DockerStandin.make(tmp_path)
    yield standin
    standin.cleanup()


def load(text: str) -> LoadedProfile:
    profile, warnings, lines = parse_profile_lines(text, PATH)
    return LoadedProfile(profile, PATH, warnings, lines)


def container_lines(loaded: LoadedProfile, settings: Settings) -> list[str]:
    return [str(p) for p in preflight(loaded, settings, check_port=True)
            if p.field.startswith("runtime")]


def profile(engine: Path | str, extra: str = "") -> LoadedProfile:
    return load(f"model: m\nport: 8123\nruntime:\n  docker:\n    image: vllm/vllm-openai:v1\n"
                f"    engine: {engine}\n    gpus: none\n    hf_cache: false\n{extra}")


def test_docker_not_installed(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker on it
    found = container_lines(load("model: m\nruntime:\n  docker: {image: vllm/vllm-openai:v1}\n"), settings)
    assert found == ["error: /p/box.yaml:3: runtime.docker: docker is not installed here: install it"
                     " (https://docs.docker.com/engine/install/), or point runtime.docker.engine at a"
                     " docker-compatible executable"]
    found = container_lines(load("model: m\nruntime:\n  podman:\n    image: i\n    engine: /nope/podman\n"),
                            settings)
    assert found == ["error: /p/box.yaml:5: runtime.podman.engine: /nope/podman is not an executable:"
                     " install it (e.g. apt-get install podman), or point runtime.podman.engine at a"
                     " podman-compatible executable"]


def test_docker_without_its_daemon(settings: Settings, docker: DockerStandin) -> None:
    docker.configure(DOCKER_STANDIN_NO_DAEMON="1")
    assert container_lines(profile(docker.exe), settings) == [
        "error: /p/box.yaml:4: runtime.docker: docker does not work here (Cannot connect to the Docker daemon"
        " at unix:///var/run/docker.sock. Is the docker daemon running?): start it (sudo systemctl start"
        " docker), or check DOCKER_HOST and that you may use it (the docker group)"]


def test_image_leftover_container_and_mounts(settings: Settings, docker: DockerStandin, tmp_path: Path) -> None:
    # the image is missing: pulled at start (a warning); with pull: never, an error
    assert container_lines(profile(docker.exe), settings) == [
        "warning: /p/box.yaml:5: runtime.docker.image: vllm/vllm-openai:v1 is not on this machine yet: the"
        " server pulls it first (its progress shows in `vllmtui status`)"]
    never = container_lines(profile(docker.exe, "    pull: never\n"), settings)
    assert never == ["error: /p/box.yaml:9: runtime.docker.pull: the image vllm/vllm-openai:v1 is not on this"
                     " machine and pull is never: pull it (`docker pull vllm/vllm-openai:v1`) or set pull: missing"]
    # pulled; a container of the server's name is still there (here: a state entry of a live pid)
    (docker.state / "images.txt").write_text("vllm/vllm-openai:v1\n")
    (docker.state / "containers").mkdir(exist_ok=True)
    (docker.state / "containers" / "vllmtui-box.json").write_text(json.dumps({"pid": os.getpid(), "id": "x"}))
    extra = f"    volumes:\n      - {tmp_path}:/ok\n      - {tmp_path}/absent:/models:ro\n"
    found = container_lines(profile(docker.exe, extra), settings)
    (docker.state / "containers" / "vllmtui-box.json").unlink()
    assert found == [
        f"error: /p/box.yaml:11: runtime.docker.volumes.1: {tmp_path}/absent does not exist on this machine:"
        " create it or fix the path",
        "error: /p/box.yaml:4: runtime.docker: a container named vllmtui-box is already there (left by an"
        " earlier run?): remove it with `docker rm -f vllmtui-box`",
    ]
    assert container_lines(profile(docker.exe, extra.replace("/absent", "")), settings) == []
    assert ["run"] not in [c[:1] for c in docker.calls()]  # the checks started nothing
