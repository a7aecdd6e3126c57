"""The GPU panel and the Plan view render the snapshots they are given (Textual Pilot).

The GPU readings here come from real processes in a real tmux session with the NVML query
replaced by the STAND-IN of tests/test_gpu.py (this machine has no GPU); the no-GPU reading
is the real one."""

from __future__ import annotations

import json
from pathlib import Path

from test_gpu import fake_server, standin_nvml_query  # noqa: F401 - fixture re-used
from textual.app import App, ComposeResult
from textual.widgets import Static

from vllmtui.core.settings import Settings
from vllmtui.models.config import ModelFiles
from vllmtui.planner.gpu import GpuHistory, GpuSnapshot, read_gpus
from vllmtui.planner.memory import Settings4Plan, Target, estimate
from vllmtui.planner.vllm_figures import VllmFigures
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.widgets.gpu_panel import GpuPanel, gpu_cells, sparkline
from vllmtui.ui.widgets.plan_view import PlanMade, PlanView

CONFIGS = Path(__file__).parent / "data" / "configs"


class Harness(App[None]):
    def compose(self) -> ComposeResult:
        yield GpuPanel(id="gpu")
        yield PlanView(id="plan")


def _text(app: App[None], selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def test_sparkline_scales_to_blocks() -> None:
    assert sparkline([0, 50, 100], width=5) == "  ▁▅█"
    assert sparkline([100.0] * 40, width=10) == "█" * 10


async def test_no_gpu_is_said_plainly() -> None:
    app = Harness()
    async with app.run_test() as pilot:
        app.query_one(GpuPanel).show(read_gpus(), GpuHistory())
        await pilot.pause()
        text = _text(app, "#gpu-panel-body")
        assert text.startswith("No GPU readings: no NVIDIA driver / no GPU")
        assert "Everything else keeps working" in text


async def test_panel_names_servers_and_flags_orphans(settings: Settings, fake_server: int) -> None:  # noqa: F811
    snap = read_gpus(Fleet(settings), query=standin_nvml_query({fake_server: 40_000, 1: 500}))
    history = GpuHistory().add(snap)
    app = Harness()
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


async def test_plan_view_shows_estimate_beside_vllm_figures() -> None:
    config = json.loads((CONFIGS / "Llama-3.1-8B.json").read_text())
    plan = estimate(
        ModelFiles("meta-llama/Llama-3.1-8B", config, "fixture"),
        Settings4Plan(max_model_len=8192),
        Target(80 << 30, 1, "80GiB"),
        "llama",
    )
    logged = VllmFigures(14.99, 54.12, 443_344, "GPU", 54.12, 8192)
    app = Harness()
    async with app.run_test() as pilot:
        app.query_one(PlanView).show(PlanMade("llama", plan, logged, "/runs/llama/1"))
        await pilot.pause()
        text = _text(app, "#plan-view-body")
        assert "vLLM logged" in text and "443,344" in text and f"{plan.tokens:,}" in text
        assert "verdict:  fits" in text
        app.query_one(PlanView).show(PlanMade("remote", None, error="no config.json for 'x'"))
        await pilot.pause()
        assert _text(app, "#plan-view-body") == "remote: no plan: no config.json for 'x'\n"
