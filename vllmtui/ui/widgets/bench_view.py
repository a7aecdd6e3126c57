"""The Bench tab: a small form, a progress bar, the result table, and the saved benchmarks
of the profile compared (table + throughput-vs-concurrency plot).

Rendering only: the view never does I/O. Interface for the app:

- The view posts `BenchRequested(name, options)` when the user presses Run (options is a
  `vllmtui.bench_run.BenchOptions`, already checked), and `BenchCancelRequested(name)`.
- The app runs, in a thread worker (`@work(thread=True, exclusive=True, group="bench")`):
  `vllmtui.bench_run.bench_server(settings, name, options, progress=cb, cancel=event)`, where
  `cb(p)` does `app.call_from_thread(view.show_progress, p)` (or posts `BenchProgressed(p)`
  and the handler calls `view.show_progress`); at the end `view.show_outcome(outcome)`.
  Set `event` to cancel: the run stops within ~0.2 s.
- `view.show_server(name, reports)`: the selected server changed; `reports` is
  `vllmtui.bench_report.reports_of(settings, name)` read in a worker (the comparison).
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, ProgressBar, Static

from vllmtui.bench.load import BenchProgress, BenchReport
from vllmtui.bench.report import compare_table, level_table, plot_throughput
from vllmtui.bench.run import BenchOptions, BenchOutcome
from vllmtui.core.errors import UsageError


class BenchRequested(Message):
    """The user asked to benchmark server `name` with `options`."""

    def __init__(self, name: str, options: BenchOptions) -> None:
        super().__init__()
        self.name = name
        self.options = options


class BenchCancelRequested(Message):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class BenchProgressed(Message):
    """A running benchmark advanced (posted from the bench worker's progress callback)."""

    def __init__(self, progress: BenchProgress) -> None:
        super().__init__()
        self.progress = progress


class BenchFinished(Message):
    def __init__(self, outcome: BenchOutcome) -> None:
        super().__init__()
        self.outcome = outcome


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

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.server: str | None = None
        self.running = False

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
            self.post_message(BenchCancelRequested(self.server))
            return
        values = {key: self.query_one(f"#bench-{key}", Input).value for key, _, _ in FIELDS}
        try:
            options = parse_options(values)
        except UsageError as exc:
            self.query_one("#bench-error", Static).update(str(exc))
            return
        self.query_one("#bench-error", Static).update("")
        self.set_running(True)
        self.post_message(BenchRequested(self.server, options))

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
