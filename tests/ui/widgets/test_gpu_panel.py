"""The GPU panel renders the snapshots it is given (Textual Pilot).

The GPU readings here come from real processes in a real tmux session with the NVML query
replaced by the STAND-IN of tests/support/gpu.py (this machine has no GPU); the no-GPU reading
is the real one."""

from __future__ import annotations

from tests.support.gpu import standin_nvml_query
from tests.support.ui import Harness
from tests.support.ui import rendered as _text
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import GpuHistory, GpuSnapshot, read_gpus
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.widgets.gpu_panel import GpuPanel, gpu_cells
from vllmtui.ui.widgets.plan_view import PlanView


async def test_no_gpu_is_said_plainly() -> None:
    app = Harness(GpuPanel(id="gpu"), PlanView(id="plan"))
    async with app.run_test() as pilot:
        app.query_one(GpuPanel).show(read_gpus(), GpuHistory())
        await pilot.pause()
        text = _text(app, "#gpu-panel-body")
        assert text.startswith("No GPU readings: no NVIDIA driver / no GPU")
        assert "Everything else keeps working" in text


async def test_panel_names_servers_and_flags_orphans(settings: Settings, fake_server: int) -> None:  # noqa: F811
    snap = read_gpus(Fleet(settings), query=standin_nvml_query({fake_server: 40_000, 1: 500}))
    history = GpuHistory().add(snap)
    app = Harness(GpuPanel(id="gpu"), PlanView(id="plan"))
    async with app.run_test() as pilot:
        app.query_one(GpuPanel).show(snap, history)
        await pilot.pause()
        text = _text(app, "#gpu-panel-body")
    assert "GPU 0  STAND-IN H100 80GB HBM3" in text
    assert "util  87%" + " " * 31 + "▇" in text  # one point of the sparkline so far, on the right
    assert f"pid {fake_server}" in text and "server fake" in text and "VLLM::EngineCore" in text
    assert "other (root)" in text  # pid 1: not a server's, not a vLLM orphan
    assert gpu_cells(snap, "fake") == ("0", "39.1 GiB")
    assert gpu_cells(snap, "nothing") == ("-", "-")
    assert gpu_cells(GpuSnapshot(error="no GPU"), "fake") == ("-", "-")
