"""The Plan view renders the plan it is given beside vLLM's own figures (Textual Pilot)."""

from __future__ import annotations

import json

from tests.support.helpers import CONFIGS
from tests.support.ui import Harness
from tests.support.ui import rendered as _text
from vllmtui.models.config import ModelFiles
from vllmtui.planner.inputs import GpuTarget, Settings4Plan
from vllmtui.planner.memory import estimate
from vllmtui.planner.vllm_figures import VllmFigures
from vllmtui.ui.widgets.gpu_panel import GpuPanel
from vllmtui.ui.widgets.plan_view import PlanMade, PlanView


async def test_plan_view_shows_estimate_beside_vllm_figures() -> None:
    config = json.loads((CONFIGS / "Llama-3.1-8B.json").read_text())
    plan = estimate(
        ModelFiles("meta-llama/Llama-3.1-8B", config, "fixture"),
        Settings4Plan(max_model_len=8192),
        GpuTarget(80 << 30, 1, "80GiB"),
        "llama",
    )
    logged = VllmFigures(14.99, 54.12, 443_344, "GPU", 54.12, 8192)
    app = Harness(GpuPanel(id="gpu"), PlanView(id="plan"))
    async with app.run_test() as pilot:
        app.query_one(PlanView).show(PlanMade("llama", plan, logged, "/runs/llama/1"))
        await pilot.pause()
        text = _text(app, "#plan-view-body")
        assert "vLLM logged" in text and "443,344" in text and f"{plan.tokens:,}" in text
        assert "verdict:  fits" in text
        app.query_one(PlanView).show(PlanMade("remote", None, error="no config.json for 'x'"))
        await pilot.pause()
        assert _text(app, "#plan-view-body") == "remote: no plan: no config.json for 'x'\n"
