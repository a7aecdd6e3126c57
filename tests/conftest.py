"""Shared fixtures: an isolated tmux server per test, settings in temp dirs, profile writers,
the stand-in server, a fake GPU server, and the real vLLM (CPU) runtime for the end-to-end
suite. Helpers that are not fixtures live in tests/support/.

Tests are grouped by kind, one folder each (unit, tmux, ui, e2e, ssh); every test gets its
folder's marker, so `-m "not e2e"` runs everything but the real-vLLM tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import (
    ROOT,
    STANDIN,
    VllmServer,
    free_port,
    kill_tmux_server,
    start_vllm_server,
    stop_vllm_server,
    vllm_cpu_python,
    wait_for,
)
from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "tmux", "ui", "e2e", "ssh")
REAL_VLLM = {"vllm_runtime", "vllm_server"}  # fixtures that need the real vLLM: always e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the kind of the folder it lives in (tests/<kind>/...)."""
    for item in items:
        try:
            kind = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if kind in KINDS:
            item.add_marker(kind)
        if kind != "e2e" and REAL_VLLM & set(getattr(item, "fixturenames", ())):
            item.add_marker("e2e")


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    """A tmux server of this test's own; killed (with every session) afterwards."""
    name = f"vllmtui-test-{uuid.uuid4().hex[:10]}"
    yield name
    kill_tmux_server(name)


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


@pytest.fixture
def fake_server(settings: Settings, tmux: Tmux) -> Iterator[int]:
    """A tmux session marked as a vllmtui server whose pane runs a shell with a
    `VLLM::EngineCore` child (the process vLLM's GPU memory belongs to). Yields its pid."""
    tmux.new_session("vllmtui-fake", ["bash", "-c", "(exec -a VLLM::EngineCore sleep 300) & wait"])
    tmux.set_options("vllmtui-fake", {"kind": "server", "profile": "fake"})
    pane = tmux.session("vllmtui-fake")
    assert pane is not None and pane.pane_pid

    def engine() -> int | None:
        tree = procs.tree_of(pane.pane_pid)  # type: ignore[arg-type]
        found = [p.pid for p in tree if p.command.startswith("VLLM::EngineCore")]
        return found[0] if found else None

    yield int(wait_for(engine, what="the fake EngineCore"))  # type: ignore[arg-type]
    tmux.kill_session("vllmtui-fake")


# ---------------------------------------------------------------- real vLLM (CPU)


@pytest.fixture(scope="session")
def vllm_runtime() -> Path:
    """The vLLM CPU runtime that scripts/setup-vllm-cpu.sh made. Missing: the test FAILS
    (the end-to-end suite is never skipped) with the command that fixes it."""
    python = vllm_cpu_python()
    if not python.exists():
        pytest.fail(f"no vLLM CPU runtime at {python}: run scripts/setup-vllm-cpu.sh first")
    return python


@pytest.fixture(scope="session")
def vllm_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One real tiny-model vLLM server (hermes tool parser) for the whole test session."""
    server = start_vllm_server(tmp_path_factory.mktemp("vllm-shared"), "tiny-shared")
    yield server
    stop_vllm_server(server)
