"""The Bench tab: a small form, a progress bar, the result table, and the saved benchmarks
of the profile compared (table + throughput-vs-concurrency plot).

The view does its own work in thread workers: Run posts `BenchView.Requested` (to itself, and
up, for whoever listens) and runs `bench_server` with progress and a cancel event (Cancel
stops it within ~0.2 s); the saved reports are read whenever the tab is shown or the
selection changes while it is shown, and again after a run. `show_*` render what they get.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Button, Input, Label, ProgressBar, Static

from vllmtui.bench.load import BenchOptions, BenchProgress
from vllmtui.bench.report import compare_table, level_table, plot_throughput, reports_of
from vllmtui.bench.run import BenchOutcome, bench_server
from vllmtui.bench.stats import BenchReport
from vllmtui.core.errors import UsageError
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.ui.selection import Selection
from vllmtui.ui.work import worker

FIELDS = (  # (id, label, default)
    ("input-len", "input tokens", "128"),
    ("output-len", "output tokens", "64"),
    ("num-prompts", "prompts", "50"),
    ("concurrency", "concurrency", "1,4,16"),
    ("rate", "req/s (empty: all at once)", ""),
)


def parse_options(values: dict[str, str]) -> BenchOptions:
    """The form's text values as options; UsageError names the field to fix."""
    def integer(key: str, label: str) -> int:
        try:
            value = int(values.get(key, "").strip())
        except ValueError:
            raise UsageError(f"{label}: give a whole number") from None
        if value < 1:
            raise UsageError(f"{label}: must be at least 1")
        return value

    conc_text = values.get("concurrency", "").strip() or "1"
    try:
        conc = tuple(int(v) for v in conc_text.split(","))
    except ValueError:
        raise UsageError("concurrency: numbers separated by commas, e.g. 1,4,16") from None
    if any(c < 1 for c in conc):
        raise UsageError("concurrency: every level must be at least 1")
    rate_text = values.get("rate", "").strip()
    try:
        rate = float(rate_text) if rate_text else math.inf
    except ValueError:
        raise UsageError("req/s: a number, or empty for all at once") from None
    if rate <= 0:
        raise UsageError("req/s: must be more than 0")
    return BenchOptions(input_len=integer("input-len", "input tokens"),
                        output_len=integer("output-len", "output tokens"),
                        num_prompts=integer("num-prompts", "prompts"),
                        concurrency=conc, request_rate=rate)


def progress_words(p: BenchProgress) -> str:
    conc = "unlimited" if p.concurrency is None else str(p.concurrency)
    what = {"prompts": "making prompts", "warmup": "warming up", "run": "measuring",
            "done": "done"}.get(p.phase, p.phase)
    return f"level {p.level + 1}/{p.levels} (concurrency {conc}): {what} {p.done}/{p.total}"


class BenchView(VerticalScroll):
    """Form + progress + results for the selected server."""

    DEFAULT_CSS = """
    BenchView { padding: 0 1; }
    BenchView .bench-form { height: auto; }
    BenchView .bench-form Input { width: 14; }
    BenchView .bench-form Label { padding: 1 0 0 1; }
    BenchView #bench-progress-text { height: 1; }
    BenchView #bench-error { color: $error; height: auto; }
    """

    @dataclass
    class Requested(Message):
        """The user asked to benchmark server `name` with `options`."""

        name: str
        options: BenchOptions

    @dataclass
    class Progressed(Message):
        """A running benchmark advanced (posted from its progress callback)."""

        progress: BenchProgress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, BenchView.Progressed)

    @dataclass
    class Finished(Message):
        outcome: BenchOutcome

    @dataclass
    class ReportsRead(Message):
        """The saved benchmarks of server `name`."""

        name: str
        reports: list[BenchReport]

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.server: str | None = None
        self.running = False
        self._cancel: threading.Event | None = None
        self._read_for: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="bench-form"):
            for key, label, default in FIELDS:
                yield Label(label)
                yield Input(default, id=f"bench-{key}")
        with Horizontal(classes="bench-form"):
            yield Button("Run", id="bench-run", variant="primary")
            yield Button("Cancel", id="bench-cancel", disabled=True)
        yield Static("", id="bench-error")
        # determinate (total=1) while no benchmark runs: an indeterminate bar animates at
        # 15 frames/s even on a hidden tab, which woke the idle app 15 times a second
        yield ProgressBar(id="bench-progress", show_eta=False, total=1)
        yield Static("", id="bench-progress-text")
        yield Static("", id="bench-result")
        yield Static("", id="bench-history")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.server is None:
            return
        if event.button.id == "bench-cancel":
            if self._cancel is not None:
                self._cancel.set()
            return
        values = {key: self.query_one(f"#bench-{key}", Input).value for key, _, _ in FIELDS}
        try:
            options = parse_options(values)
        except UsageError as exc:
            self.query_one("#bench-error", Static).update(str(exc))
            return
        self.query_one("#bench-error", Static).update("")
        self.set_running(True)
        self.post_message(self.Requested(self.server, options))

    # ---------------------------------------------------------------- work

    def on_bench_view_requested(self, message: BenchView.Requested) -> None:
        # not stopped: a parent may want to know a benchmark was asked for
        if self.settings is None:
            return
        if self._cancel is not None:
            self.notify("a benchmark is running already", severity="warning")
            return
        url = None
        if self.selection.remote:  # another host's server: through the forward to it
            endpoint = self.selection.endpoint_of(message.name)
            if endpoint is None or not endpoint.port:
                self.notify(f"{message.name}: not reachable from here yet (it is not ready, or the"
                            " forward over ssh failed); try again in a few seconds", severity="warning")
                self.set_running(False)
                return
            url = base_url(endpoint.host, endpoint.port)
        self._cancel = threading.Event()
        self.run_bench(self.settings, message.name, message.options, self._cancel, url)

    @worker("running a benchmark", group="bench")
    def run_bench(
        self, settings: Settings, name: str, options: BenchOptions, cancel: threading.Event,
        url: str | None = None,
    ) -> None:
        def progress(p: BenchProgress) -> None:
            self.post_message(self.Progressed(p))

        outcome = bench_server(settings, name, options, progress=progress, cancel=cancel, url=url)
        self.post_message(self.Finished(outcome))

    def on_bench_view_progressed(self, message: BenchView.Progressed) -> None:
        message.stop()
        self.show_progress(message.progress)

    def on_bench_view_finished(self, message: BenchView.Finished) -> None:
        message.stop()
        self._cancel = None
        self.show_outcome(message.outcome)
        self._read_for = None
        self._read()  # the saved comparison now includes this run

    def watch_selection(self, selection: Selection) -> None:
        if self.shown and selection.name != self._read_for:
            self._read()

    def watch_shown(self, shown: bool) -> None:
        if shown:
            self._read()
        else:
            self._read_for = None

    def _read(self) -> None:
        name = self.selection.name
        self._read_for = name
        if name is not None and self.settings is not None and self.shown:
            self.read_reports(self.settings, name)

    @worker("reading the saved benchmarks", group="bench-read", exclusive=True)
    def read_reports(self, settings: Settings, name: str) -> None:
        try:
            reports = reports_of(settings, name)
        except Exception:  # noqa: BLE001 - unreadable reports: show none
            reports = []
        self.post_message(self.ReportsRead(name, reports))

    def on_bench_view_reports_read(self, message: BenchView.ReportsRead) -> None:
        message.stop()
        if message.name == self.selection.name:
            self.show_server(message.name, message.reports)

    # ---------------------------------------------------------------- rendering

    def set_running(self, running: bool) -> None:
        self.running = running
        bar = self.query_one("#bench-progress", ProgressBar)
        if running:
            bar.update(total=None, progress=0)  # making prompts: the bar moves, no figure yet
        elif bar.total is None:
            bar.update(total=1, progress=0)
        self.query_one("#bench-run", Button).disabled = running
        self.query_one("#bench-cancel", Button).disabled = not running

    def show_server(self, name: str, reports: list[BenchReport]) -> None:
        """The selected server changed: show its saved benchmarks compared."""
        self.server = name
        history = self.query_one("#bench-history", Static)
        if not reports:
            history.update(Text(f"no saved benchmarks of {name} yet", style="dim"))
            return
        lines = ["saved benchmarks (newest first)", *compare_table(reports), "",
                 *plot_throughput(reports)]
        history.update(Text("\n".join(lines)))

    def show_progress(self, p: BenchProgress) -> None:
        """A step of the running benchmark: the bar covers all levels' measured requests."""
        bar = self.query_one("#bench-progress", ProgressBar)
        per_level = max(1, p.total) if p.phase == "run" else 1
        if p.phase == "run":
            bar.update(total=p.levels * per_level, progress=p.level * per_level + p.done)
        elif p.phase == "done":
            bar.update(total=1, progress=1)
        self.query_one("#bench-progress-text", Static).update(progress_words(p))

    def show_outcome(self, outcome: BenchOutcome) -> None:
        """The benchmark ended: its table, or what went wrong."""
        self.set_running(False)
        error = self.query_one("#bench-error", Static)
        if outcome.error:
            error.update(f"benchmark failed: {outcome.error}")
            return
        lines = level_table(list(outcome.levels))
        head = "cancelled; measured so far:" if outcome.cancelled else "result"
        if outcome.path:
            head += f"  (saved {outcome.path})"
        self.query_one("#bench-result", Static).update(Text("\n".join([head, *lines])))
