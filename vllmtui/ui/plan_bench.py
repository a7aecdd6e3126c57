"""The Plan and Bench tabs: the selected profile's memory plan (GPU planner) and its
benchmarks (run one from the tab's form, compare the saved ones). The views render; this
mixin reads and runs in thread workers and routes the results to them. Mixed into
VllmtuiApp. A tab is only refreshed while it is shown (and when it becomes shown)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches
from textual.widgets import TabbedContent

from vllmtui.core.errors import VllmtuiError

if TYPE_CHECKING:
    from vllmtui.ui.app import VllmtuiApp


class PlanBenchMixin:
    _bench_cancel: threading.Event | None = None
    _plan_bench_for: tuple[str, str | None] | None = None

    def _active_tab(self: VllmtuiApp) -> str | None:  # type: ignore[misc]
        try:
            return str(self.query_one(TabbedContent).active)
        except NoMatches:
            return None

    def plan_bench_follow(self: VllmtuiApp) -> None:  # type: ignore[misc]
        """The selection or the tab changed: read what the shown tab needs."""
        name = self.selected
        tab = self._active_tab()
        if name is None or tab not in ("tab-plan", "tab-bench"):
            return
        if self._plan_bench_for == (name, tab):
            return
        self._plan_bench_for = (name, tab)
        if tab == "tab-plan" and self.found.plan:
            loaded = self.profiles.get(name)
            snapshot = getattr(self, "gpu_snapshot", None)
            self.run_worker(
                lambda: self._make_plan(name, loaded, snapshot), thread=True, exclusive=True, group="plan"
            )
        elif tab == "tab-bench" and self.found.bench:
            self.run_worker(lambda: self._read_reports(name), thread=True, exclusive=True, group="bench-read")

    # ------------------------------------------------------------ plan

    def _make_plan(self: VllmtuiApp, name: str, loaded: Any, snapshot: Any) -> None:  # type: ignore[misc]
        from vllmtui.planner import fitcheck, memory
        from vllmtui.servers.figures import logged_figures
        from vllmtui.ui.widgets.plan_view import PlanMade

        if loaded is None:
            self.post_message(PlanMade(name, None, error=f"no profile file for {name} here"))
            return
        try:
            target = fitcheck.make_target(snapshot=snapshot)
            plan = memory.plan_profile(loaded.profile, self.settings, target)
            logged, run_dir = logged_figures(self.settings, name)
            self.post_message(PlanMade(name, plan, logged, run_dir))
        except VllmtuiError as exc:
            self.post_message(PlanMade(name, None, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - a plan that fails says so, never raises
            self.post_message(PlanMade(name, None, error=f"planning failed: {exc}"))

    def on_plan_made(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if not self._on_screen() or message.name != self.selected:
            return
        self.query_one("#plan-view").show(message)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ bench

    def _read_reports(self: VllmtuiApp, name: str) -> None:  # type: ignore[misc]
        from vllmtui.bench.report import reports_of
        from vllmtui.ui.messages import FeatureRead

        try:
            reports = reports_of(self.settings, name)
        except Exception:  # noqa: BLE001 - unreadable reports: show none
            reports = []
        self.post_message(FeatureRead("bench-reports", {"name": name, "reports": reports}))

    def bench_reports_read(self: VllmtuiApp, data: dict[str, Any]) -> None:  # type: ignore[misc]
        if data["name"] == self.selected:
            self.query_one("#bench-view").show_server(data["name"], data["reports"])  # type: ignore[attr-defined]

    def on_bench_requested(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if self._bench_cancel is not None:
            self.notify("a benchmark is running already", severity="warning")
            return
        self._bench_cancel = threading.Event()
        cancel, name, options = self._bench_cancel, message.name, message.options
        self.run_worker(lambda: self._run_bench(name, options, cancel), thread=True, group="bench")

    def _run_bench(self: VllmtuiApp, name: str, options: Any, cancel: threading.Event) -> None:  # type: ignore[misc]
        from vllmtui.bench.run import bench_server
        from vllmtui.ui.widgets.bench_view import BenchFinished, BenchProgressed

        def progress(p: Any) -> None:
            self.post_message(BenchProgressed(p))

        outcome = bench_server(self.settings, name, options, progress=progress, cancel=cancel)
        self.post_message(BenchFinished(outcome))

    def on_bench_cancel_requested(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if self._bench_cancel is not None:
            self._bench_cancel.set()

    def on_bench_progressed(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if self._on_screen():
            self.query_one("#bench-view").show_progress(message.progress)  # type: ignore[attr-defined]

    def on_bench_finished(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        self._bench_cancel = None
        if not self._on_screen():
            return
        self.query_one("#bench-view").show_outcome(message.outcome)  # type: ignore[attr-defined]
        self._plan_bench_for = None
        self.plan_bench_follow()  # the saved comparison now includes this run
