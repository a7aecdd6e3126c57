"""Servers in a container, end to end through the real CLI and a real tmux, with the docker
STAND-IN (tests/standin/docker_standin.py: no container engine can run here) whose "container"
is the vLLM stand-in, started outside the pane's process tree as a daemon would: start, the
image pull shown as the status phase, status, logs, check, graceful stop through `docker stop`,
forced stop through `docker kill`, GPU processes and orphans, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_standin import DockerStandin
from tests.support.helpers import free_port, wait_for
from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import read_gpus
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.fleet import Fleet

IMAGE = "vllm/vllm-openai:v0.10.1"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[DockerStandin]:
    standin = DockerStandin.make(tmp_path)
    yield standin
    standin.cleanup()


@pytest.fixture
def box_profile(write_profile: Callable[..., Path], docker: DockerStandin, tmp_path: Path) -> Callable[..., Path]:
    """A profile whose server is the vLLM stand-in in a (stand-in) docker container."""

    def write(name: str = "box", mode: str = "ok", delay: float = 0.1, **section: Any) -> Path:
        extra = section.pop("profile", {})
        return write_profile(
            name, model="standin-model", port=free_port(),
            env={"STANDIN_MODE": mode, "STANDIN_DELAY": str(delay), "HF_HUB_CACHE": str(tmp_path / "hub")},
            stop={"timeout": 3, "term_timeout": 2},
            runtime={"docker": {"image": IMAGE, "engine": str(docker.exe), "gpus": "none", **section}},
            **extra,
        )

    return write


def container_pids(docker: DockerStandin, name: str) -> list[int]:
    box = docker.containers().get(f"vllmtui-{name}")
    return [p.pid for p in procs.tree_of(int(box["pid"]))] if box else []


def test_check_start_status_logs_stop_through_docker(
    run_cli: Cli, box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    path = box_profile()
    port = load_profile_file(path).profile.port
    checked = run_cli("check", "box")
    assert checked.returncode == 0, checked.stderr
    command = next(line for line in checked.stdout.splitlines() if line.startswith("command: "))
    assert f"{docker.exe} run --rm --name vllmtui-box --init --ipc=host -p 127.0.0.1:{port}:{port}" in command
    assert f"-e STANDIN_MODE -e HF_TOKEN -e HF_HUB_OFFLINE -e TRANSFORMERS_OFFLINE {IMAGE}" in command
    assert command.endswith(f"{IMAGE} standin-model --host 0.0.0.0 --port {port}")
    assert f"{IMAGE} is not on this machine yet: the server pulls it first" in checked.stdout
    assert docker.calls("run") == [] and docker.calls("pull") == []  # a check starts nothing

    started = run_cli("start", "box", "--wait", "--timeout", "60")
    assert started.returncode == 0, started.stdout + started.stderr
    [run] = docker.calls("run")
    assert run[run.index("-p") + 1] == f"127.0.0.1:{port}:{port}" and run[-3:] == ["0.0.0.0", "--port", str(port)]
    assert docker.calls("pull") == [["pull", IMAGE]]  # pulled by the pane's step, before the run
    [status] = json.loads(run_cli("status", "box", "--json", check=True).stdout)["servers"]
    assert (status["state"], status["port"]) == ("ready", port)
    inside = container_pids(docker, "box")
    assert inside and not set(inside) & {p.pid for p in procs.tree_of(status["pid"])}  # not the pane's
    log = run_cli("logs", "box", check=True).stdout
    assert "Status: Downloaded newer image for" in log and "Application startup complete." in log
    assert log.index("Pull complete") < log.index("vLLM API server version")

    stopped = run_cli("stop", "box")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped gracefully (the container engine's stop: SIGTERM)" in stopped.stdout + stopped.stderr
    assert ["stop", "-t", "3", "vllmtui-box"] in docker.calls("stop")
    assert docker.containers() == {} and procs.alive(inside) == []
    assert Fleet(settings).tmux.session("vllmtui-box") is None
    exit_record = json.loads((Path(status["run_dir"]) / "exit.json").read_text())
    assert exit_record["how"] == "container-stop" and exit_record["left"] == []


def test_the_image_pull_is_the_start_phase(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    docker.configure(DOCKER_STANDIN_PULL_SECONDS="3")
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile())
    fleet.start(loaded)
    pulling = wait_for(lambda: (s := fleet.status(loaded)).phase == "pulling image" and "layers" in s.detail
                       and s, 15, what="the pull phase")
    assert pulling.state == "starting" and pulling.eta is None  # type: ignore[union-attr]
    assert pulling.phase_label.startswith(f"pulling {IMAGE}: ")  # type: ignore[union-attr]
    assert " of 4 layers downloaded" in pulling.detail  # type: ignore[union-attr]
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    # the image is here now: the next start does not pull again
    fleet.stop("box")
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready" and len(docker.calls("pull")) == 1
    fleet.stop("box", force=True)


def test_force_stop_kills_the_container(
    run_cli: Cli, box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile(mode="ignore-sigint"))
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    inside = container_pids(docker, "box")
    stopped = run_cli("stop", "box", "--force")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "force-stopped" in stopped.stdout + stopped.stderr and "STILL RUNNING" not in stopped.stdout
    assert ["kill", "vllmtui-box"] in docker.calls("kill") and docker.calls("stop") == []
    assert docker.containers() == {} and procs.alive(inside) == []


def test_a_container_that_ignores_sigterm_is_killed_by_the_engine(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile(mode="ignore-sigterm"))
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    said: list[str] = []
    result = fleet.stop("box", timeout=1.5, term_timeout=1, on_progress=said.append)
    assert result.method == "container-kill" and result.left == ()
    assert "the container engine killed it" in result.summary()
    assert ["stop", "-t", "2", "vllmtui-box"] in docker.calls("stop")
    assert said[0].endswith("stop -t 2 vllmtui-box: SIGTERM to the container, SIGKILL after 2 s")
    assert "the container is still running; docker kills it in 1 s" in said  # the countdown
    assert docker.containers() == {}


def test_gpu_processes_of_the_container_belong_to_its_server(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile(mode="engine"))
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    engine = wait_for(lambda: [p for p in procs.tree_of(int(docker.containers()["vllmtui-box"]["pid"]))
                               if p.command.startswith("VLLM::EngineCore")], what="the engine in the container")
    pid = engine[0].pid  # type: ignore[index]

    def query() -> tuple[list[dict[str, Any]], str]:
        return [{"index": 0, "name": "H200", "memory.used": 1000, "memory.total": 140000,
                 "processes": [{"pid": pid, "gpu_memory_usage": 900, "username": "root"}]}], "570"

    snapshot = read_gpus(fleet, query=query)
    assert [(p.pid, p.server, p.orphan) for p in snapshot.processes] == [(pid, "box", False)]
    assert pid in fleet.owned_pids() and pid not in {p.pid for p in fleet.orphans()}
    fleet.stop("box")
    assert procs.alive([pid]) == []


def test_a_key_reaches_the_container_but_no_command_line(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOX_KEY", "sk-container-secret")
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile(profile={"api_key_env": "BOX_KEY"}))
    result = fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    server = int(docker.containers()["vllmtui-box"]["server_pid"])
    assert procs.environ_value(server, "VLLM_API_KEY") == "sk-container-secret"
    assert procs.environ_value(server, "BOX_KEY") is None  # only what -e names gets in
    for where in ("calls.jsonl",):
        assert "sk-container-secret" not in (docker.state / where).read_text()
    for name in ("launch.json", "server.log"):
        assert "sk-container-secret" not in (result.run_dir / name).read_text()
    fleet.stop("box", force=True)


def test_a_failed_pull_is_the_reason_it_crashed(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    docker.configure(DOCKER_STANDIN_PULL_FAIL="1", DOCKER_STANDIN_PULL_SECONDS="0.2")
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile())
    fleet.start(loaded)
    status = fleet.wait_ready(loaded, timeout=30)
    assert status.state == "crashed"
    assert status.detail.startswith(f"pulling {IMAGE} failed: Error response from daemon: pull access denied")
    assert docker.calls("run") == []
    assert fleet.stop("box").method == "already-exited"


def test_a_stop_while_the_image_is_pulled_leaves_nothing(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    docker.configure(DOCKER_STANDIN_PULL_SECONDS="20")
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile())
    result = fleet.start(loaded)
    wait_for(lambda: fleet.status(loaded).phase == "pulling image", 15, what="the pull phase")
    said: list[str] = []
    stopped = fleet.stop("box", on_progress=said.append)
    assert stopped.method == "graceful" and stopped.left == () and stopped.seconds < 5
    assert said[0].startswith("sending SIGINT (Ctrl-C) to the pane: no container vllmtui-box yet")
    assert docker.calls("run") == [] and docker.calls("stop") == [] and docker.containers() == {}
    assert not [p for p in procs.all_processes() if "docker_standin.py pull" in p.command
                and str(docker.state) in (procs.environ_value(p.pid, "DOCKER_STANDIN_DIR") or "")]
    assert json.loads((result.run_dir / "image-pull.json").read_text())["state"] == "failed"


def test_a_container_whose_client_was_killed_is_still_stopped(
    box_profile: Callable[..., Path], docker: DockerStandin, settings: Settings
) -> None:
    fleet = Fleet(settings)
    loaded = load_profile_file(box_profile())
    fleet.start(loaded)
    status = fleet.wait_ready(loaded, timeout=30)
    inside = container_pids(docker, "box")
    os.kill(int(status.pid or 0), signal.SIGKILL)  # the pane's `docker run`: the container lives on
    wait_for(lambda: (s := fleet.tmux.session("vllmtui-box")) is not None and s.dead, 10, what="a dead pane")
    assert procs.alive(inside) == inside and "vllmtui-box" in docker.containers()
    result = fleet.stop("box")
    assert result.method == "container-stop" and result.left == ()
    assert docker.containers() == {} and procs.alive(inside) == []
