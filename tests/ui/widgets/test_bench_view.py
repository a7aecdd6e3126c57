"""The bench view: its form turns into a request, then shows progress and the outcome."""

from __future__ import annotations

from textual.widgets import Input, Static

from tests.support.ui import Harness
from tests.support.ui import printed as _text
from vllmtui.bench.load import BenchProgress
from vllmtui.bench.run import BenchOutcome
from vllmtui.ui.widgets.bench_view import BenchView


class BenchHarness(Harness):
    """Keeps every request the view posts up."""

    def __init__(self) -> None:
        super().__init__(BenchView(id="bench"))
        self.requested: list[BenchView.Requested] = []

    def on_bench_view_requested(self, message: BenchView.Requested) -> None:
        self.requested.append(message)


async def test_bench_view_form_progress_and_outcome() -> None:
    app = BenchHarness()
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
