"""Container runtimes (`runtime: {docker: ...}` / `podman:`): the exact `ENGINE run` command
line a profile resolves to, and the messages for mistakes in the section (file:line: field: fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import resolve, runtime_flags, runtime_python
from vllmtui.profiles.loading import parse_profile_lines
from vllmtui.profiles.model import LoadedProfile

PATH = Path("/p/box.yaml")


def load(text: str) -> LoadedProfile:
    profile, warnings, lines = parse_profile_lines(text, PATH)
    return LoadedProfile(profile, PATH, warnings, lines)


def problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load(text)
    return list(caught.value.problems)


def test_docker_command_line_in_full(settings: Settings, tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    spec = resolve(load(
        f"model: {model}\nport: 8011\ngpus: [2, 3]\napi_key_env: TEAM_KEY\nhf_token_env: MY_HF\n"
        f"env: {{HF_HUB_CACHE: {tmp_path}/hub, FOO: bar}}\nmax_model_len: 8K\n"
        "runtime:\n  docker:\n    image: vllm/vllm-openai:v0.10.1\n"
        "    volumes: [/data:/data:ro, 'cache-vol:/cache']\n    extra_args: --shm-size 16g --ulimit memlock=-1\n"
    ).profile, settings)
    assert list(spec.argv) == [
        "docker", "run", "--rm", "--name", "vllmtui-box", "--init",
        "--gpus", '"device=2,3"',
        "-p", "127.0.0.1:8011:8011",
        "-v", f"{tmp_path}/hub:{tmp_path}/hub",
        "-v", f"{model}:{model}:ro",
        "-v", "/data:/data:ro", "-v", "cache-vol:/cache",
        "-e", "FOO", "-e", "HF_HUB_CACHE", "-e", "HF_TOKEN", "-e", "VLLM_API_KEY",
        "-e", "HF_HUB_OFFLINE", "-e", "TRANSFORMERS_OFFLINE",
        "--shm-size", "16g", "--ulimit", "memlock=-1",
        "vllm/vllm-openai:v0.10.1",
        str(model), "--host", "0.0.0.0", "--port", "8011", "--tensor-parallel-size", "2",
        "--max-model-len", "8192",
    ]
    # secrets: only their names, read from the pane's environment by the engine
    assert spec.secret_env == {"VLLM_API_KEY": "TEAM_KEY", "HF_TOKEN": "MY_HF"}
    assert "CUDA_VISIBLE_DEVICES" in spec.env  # for the pane; never passed into the container
    shown = spec.display()
    assert "VLLM_API_KEY=$TEAM_KEY" in shown and "docker run --rm --name vllmtui-box" in shown
    # the image's vLLM: nothing of this machine's python is read
    assert runtime_python(load("model: m\nruntime: {docker: {image: i}}").profile, settings) is None
    assert "container image" in runtime_flags(load("model: m\nruntime: {docker: {image: i}}").profile,
                                              settings).source


def test_podman_uses_cdi_devices_and_defaults(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", "/srv/hf")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = resolve(load(
        "model: Qwen/Qwen2.5-7B-Instruct\nhost: 0.0.0.0\nport: 9000\ngpus: [0, 1]\n"
        "runtime:\n  entrypoint: module\n  podman:\n    image: quay.io/me/vllm:1\n    engine: /opt/bin/podman\n"
        "    init: false\n    extra_args: [--ipc=private, --security-opt=label=disable]\n"
    ).profile, settings)
    assert list(spec.argv) == [
        "/opt/bin/podman", "run", "--rm", "--name", "vllmtui-box",
        "--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=1",
        "-p", "0.0.0.0:9000:9000",
        "-v", "/srv/hf/hub:/srv/hf/hub", "-e", "HF_HUB_CACHE=/srv/hf/hub",
        "-e", "HF_TOKEN", "-e", "HF_HUB_OFFLINE", "-e", "TRANSFORMERS_OFFLINE",  # no CUDA_VISIBLE_DEVICES
        "--ipc=private", "--security-opt=label=disable",
        "quay.io/me/vllm:1",
        "--model", "Qwen/Qwen2.5-7B-Instruct", "--host", "0.0.0.0", "--port", "9000",
        "--tensor-parallel-size", "2",
    ]


@pytest.mark.parametrize(("gpus", "docker", "podman"), [
    ("", ["--gpus", "all"], ["--device", "nvidia.com/gpu=all"]),  # no gpus anywhere: all of them
    ("    gpus: none\n", [], []),
    ("    gpus: 1\n", ["--gpus", "device=1"], ["--device", "nvidia.com/gpu=1"]),
    ("    gpus: '0,3'\n", ["--gpus", '"device=0,3"'], ["--device", "nvidia.com/gpu=0", "--device", "nvidia.com/gpu=3"]),
])
def test_gpu_flags(settings: Settings, gpus: str, docker: list[str], podman: list[str]) -> None:
    for kind, expected in (("docker", docker), ("podman", podman)):
        argv = list(resolve(load(f"model: m\nruntime:\n  {kind}:\n    image: i\n{gpus}").profile, settings).argv)
        assert argv[5:argv.index("-p")] == ["--init", "--ipc=host", *expected]


def test_host_network_and_ipv6_publish(settings: Settings) -> None:
    argv = list(resolve(load("model: m\nhost: 127.0.0.1\nport: 8000\n"
                             "runtime: {docker: {image: i, network: host, gpus: none}}").profile, settings).argv)
    assert "-p" not in argv and argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"  # no publish: vLLM binds the profile's host itself
    argv = list(resolve(load("model: m\nhost: '::1'\nport: 8000\n"
                             "runtime: {docker: {image: i, network: vllm-net, hf_cache: false}}").profile,
                        settings).argv)
    assert argv[argv.index("-p") + 1] == "[::1]:8000:8000" and "-v" not in argv
    assert argv[argv.index("--host") + 1] == "0.0.0.0"


def test_secrets_never_on_the_command_line(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-very-secret")
    spec = resolve(load("model: m\napi_key_env: TEAM_KEY\nenv: {TOKENISH: x}\n"
                        "runtime: {docker: {image: i}}").profile, settings)
    assert not any("sk-very-secret" in a for a in spec.argv)
    assert not any(a.startswith("VLLM_API_KEY=") for a in spec.argv)
    assert spec.argv[spec.argv.index("VLLM_API_KEY") - 1] == "-e"
    assert "sk-very-secret" not in spec.display() and " ".join(spec.masked_argv()) == " ".join(spec.argv)


@pytest.mark.parametrize(("text", "expected"), [
    ("runtime:\n  docker:\n    image: ''\n",
     "/p/box.yaml:4: runtime.docker.image: is empty: give vLLM's image, e.g. vllm/vllm-openai:v0.10.1"),
    ("runtime:\n  venv: /opt/v\n  docker: {image: i}\n",
     "/p/box.yaml:2: runtime: set only one of command, venv, python, docker, podman (got venv, docker):"
     " a container runs the vLLM of its image; remove the others"),
    ("runtime:\n  docker: {image: i}\n  podman: {image: i}\n",
     "/p/box.yaml:2: runtime: set only one of command, venv, python, docker, podman (got docker, podman)"),
    ("runtime:\n  docker:\n    image: i\n    volumes:\n      - /a:/a\n      - models\n",
     "/p/box.yaml:7: runtime.docker.volumes.1: 'models' is not SRC:DST[:ro]: write e.g. /data/models:/models:ro"),
    ("runtime:\n  docker:\n    image: i\n    volumes: ['/a:relative']\n",
     "runtime.docker.volumes.0: '/a:relative': the container path 'relative' must be absolute"),
    ("runtime:\n  docker:\n    image: i\n    volumes: ['/a:/b:rx']\n",
     "runtime.docker.volumes.0: '/a:/b:rx': unknown mount option 'rx': use ro or rw (e.g. /a:/b:ro)"),
    ("runtime:\n  docker:\n    image: i\n    extra_args: [--shm-size, 8g, --name, other]\n",
     "/p/box.yaml:5: runtime.docker.extra_args.2: --name is set by vllmtui: vllmtui names the container"
     " vllmtui-NAME"),
    ("runtime:\n  docker:\n    image: i\n    extra_args: [--rm]\n",
     "runtime.docker.extra_args.0: --rm is set by vllmtui: vllmtui passes --rm already: remove it"),
    ("runtime:\n  docker:\n    image: i\n    extra_args: -e HF_TOKEN=hf_abc\n",
     "runtime.docker.extra_args: -e (--env) is set by vllmtui: write the variable in the profile's env:"),
    ("runtime:\n  docker:\n    image: i\n    extra_args: [--publish=8000:8000]\n",
     "runtime.docker.extra_args.0: --publish=8000:8000 is set by vllmtui: vllmtui publishes the profile's host and port"),
    ("runtime:\n  docker:\n    image: i\n    imgae: j\n",
     "/p/box.yaml:5: runtime.docker.imgae: unknown field (did you mean image?)"),
    ("runtime:\n  docker:\n    image: i\n    pull: sometimes\n",
     "/p/box.yaml:5: runtime.docker.pull: got 'sometimes': Input should be 'missing', 'always' or 'never'"),
    ("host: gpu-box-1\nruntime: {docker: {image: i}}\n",
     "/p/box.yaml:2: host: 'gpu-box-1': a container's port is published on an IP address, not a name"),
    ("gpus: [0, 1]\nruntime:\n  docker:\n    image: i\n    gpus: [1]\n",
     "/p/box.yaml:6: runtime.docker.gpus: lists [1] but the profile's gpus: lists [0, 1]: keep one"),
])
def test_mistakes_name_file_line_field_and_fix(text: str, expected: str) -> None:
    found = problems("model: m\n" + text)
    assert any(expected in p for p in found), found


def test_a_valid_section_changes_nothing_else(settings: Settings) -> None:
    loaded = load("model: m\nruntime:\n  docker:\n    image: vllm/vllm-openai:latest\n")
    assert loaded.warnings == () and loaded.profile.runtime.docker is not None
    assert loaded.profile.runtime.docker.pull == "missing"
    assert loaded.lines[("runtime", "docker", "image")] == 4
