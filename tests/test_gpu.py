"""GPU readings: no GPU here says so plainly (CLI and JSON alike); GPU processes are mapped to
servers through real process trees in real tmux sessions; orphans are flagged first.

This machine has no NVIDIA driver, so the NVML query itself is replaced by
`standin_nvml_query`, a STAND-IN listing real pids with made-up memory figures; everything
after the query (process trees, tmux sessions, orphans) is real. The real query is proven on
the GPU machine (docs/gpu-and-plan.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux
from vllmtui.models.config import ModelFiles
from vllmtui.planner import fitcheck, memory
from vllmtui.planner.gpu import GpuHistory, GpuSnapshot, read_gpus
from vllmtui.servers.fleet import Fleet

GiB = 1 << 30
CONFIGS = Path(__file__).parent / "data" / "configs"


def test_no_gpu_reading_says_so_plainly() -> None:
    snap = read_gpus()
    assert not snap.ok
    assert snap.error == "no NVIDIA driver / no GPU (libnvidia-ml.so not found)"
    assert snap.summary() == f"GPU: {snap.error}"
    assert snap.gpus == () and snap.usage_by_server() == {}


def test_gpus_command_prints_the_same_reading(run_cli: Callable[..., Any]) -> None:
    text = run_cli("gpus")
    assert text.returncode == 0
    assert text.stdout.strip() == "GPU: no NVIDIA driver / no GPU (libnvidia-ml.so not found)"
    data = json.loads(run_cli("gpus", "--json").stdout)
    assert data["ok"] is False
    assert data["error"] == read_gpus().error
    assert data["gpus"] == [] and data["unowned"] == []


def _titled(title: str, new_session: bool) -> subprocess.Popen[bytes]:
    """A real process whose command line starts with `title` (as vLLM's children do)."""
    return subprocess.Popen(["bash", "-c", f"exec -a {title} sleep 300"], start_new_session=new_session)


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


def standin_nvml_query(pids: dict[int, int], used: int = 60 * GiB) -> Callable[[], Any]:
    """STAND-IN for gpustat's NVML query (no GPU here): one 80 GiB GPU listing `pids` with
    their memory in MiB, in gpustat's own entry format."""

    def query() -> tuple[list[dict[str, Any]], str]:
        entry = {
            "index": 0,
            "uuid": "GPU-standin",
            "name": "STAND-IN H100 80GB HBM3",
            "temperature.gpu": 41,
            "utilization.gpu": 87,
            "power.draw": 310,
            "enforced.power.limit": 700,
            "memory.used": used >> 20,
            "memory.total": 81559,
            "processes": [
                {
                    "pid": pid,
                    "username": "root",
                    "command": "x",
                    "full_command": ["x"],
                    "gpu_memory_usage": mib,
                }
                for pid, mib in pids.items()
            ],
        }
        return [entry], "standin"

    return query


def test_processes_map_to_their_server_and_orphans_come_first(settings: Settings, fake_server: int) -> None:
    from conftest import spawn_orphan

    orphan_pid = spawn_orphan("VLLM::Worker_TP0")  # reparented: its API server is gone
    other = _titled("python3", new_session=True)  # somebody else's job
    try:
        wait_for(lambda: all(procs.alive([orphan_pid, other.pid])), what="helper processes")
        query = standin_nvml_query({fake_server: 40_000, orphan_pid: 12_000, other.pid: 3_000})
        snap = read_gpus(Fleet(settings), query=query)
        assert snap.ok
        by_pid = {p.pid: p for p in snap.processes}
        assert by_pid[fake_server].server == "fake"
        assert by_pid[fake_server].command.startswith("VLLM::EngineCore")
        assert by_pid[orphan_pid].orphan and by_pid[orphan_pid].server is None
        assert not by_pid[other.pid].orphan and by_pid[other.pid].owner == "other"
        assert [p.pid for p in snap.unowned] == [orphan_pid, other.pid]
        usage = snap.usage_by_server()["fake"]
        assert usage.gpus == (0,) and usage.memory == 40_000 << 20 and usage.pids == (fake_server,)
        assert "1 ORPHAN(S)" in snap.summary()
        assert snap.to_json()["hint"] and "vllmtui reap" in snap.to_json()["hint"]
    finally:
        os.kill(orphan_pid, signal.SIGKILL)
        other.kill()
        other.wait()


def test_fit_check_names_the_process_holding_the_gpu(settings: Settings, fake_server: int) -> None:
    snap = read_gpus(Fleet(settings), query=standin_nvml_query({fake_server: 60_000}))
    config = json.loads((CONFIGS / "Llama-3.1-8B.json").read_text())
    plan = memory.estimate(
        ModelFiles("meta-llama/Llama-3.1-8B", config, "fixture"),
        memory.Settings4Plan(max_model_len=8192),
        fitcheck.live_target(snap),
    )
    warnings = fitcheck.live_warnings(plan, snap)
    assert len(warnings) == 1
    assert warnings[0].startswith("GPU 0 has 19.65 GiB free but gpu_memory_utilization 0.92 asks for")
    assert f"pid {fake_server} VLLM::EngineCore (58.59 GiB, server fake)" in warnings[0]
    # `vllmtui plan fake` while fake runs: its own memory is no obstacle (seen on the H100 run)
    assert fitcheck.live_warnings(plan, snap, own_server="fake") == []


def test_history_keeps_the_last_minutes() -> None:
    history = GpuHistory(keep=120)
    for t, used in ((0, 10), (60, 20), (130, 40)):
        snap = read_gpus(query=standin_nvml_query({}, used=used * GiB))
        history = history.add(GpuSnapshot(gpus=snap.gpus, taken_at=1000.0 + t))
    assert history.utilization(0) == [87.0, 87.0]  # the point at t=0 is older than 120 s
    assert [round(m) for m in history.memory(0)] == [
        round(20 * 1024 / 81559 * 100),
        round(40 * 1024 / 81559 * 100),
    ]
    assert history.add(GpuSnapshot(error="no GPU")) is history
