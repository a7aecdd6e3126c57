"""The Probe tab: the latest result of each probe kind (chat, tools, round trip) of the
selected server, a live view of a running probe's streamed text, and the client snippets.

The panel runs its own work in thread workers: it reads the selected server's latest
results and snippets when the selection changes, runs a probe (`run_probe`, keys c and t)
streaming its text into the live view, and reads every server's last probe for the table's
LAST PROBE column (posted up as `ProbePanel.LastProbesRead`). A finished probe is posted up
as `ProbePanel.Finished`. The `show*` methods render what they are given (tests call them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core.settings import Settings
from vllmtui.probes.results import last_probe, latest_probes
from vllmtui.probes.runner import ProbeResult
from vllmtui.probes.snippets import Snippets
from vllmtui.probes.spec import KINDS
from vllmtui.probes.target import probe_server, server_snippets
from vllmtui.probes.toolcheck import printable
from vllmtui.ui.selection import Selection
from vllmtui.ui.work import worker

TITLES = {"chat": "chat", "tools": "tool calls", "roundtrip": "tool round trip"}
MARKS = {"pass": ("✓", "green"), "fail": ("✗", "bold red"), "warn": ("!", "yellow")}
LIVE_LIMIT = 4000  # characters of streamed text kept on screen


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def last_probe_cell(result: ProbeResult | None, now: float | None = None) -> Text:
    """The server table's "last probe" cell: `chat ok 2m` (green) / `tools FAIL 5s` (red)."""
    if result is None:
        return Text("-", style="dim")
    age = _age(max(0.0, (now if now is not None else time.time()) - result.started_at))
    style = "yellow" if result.cancelled else "green" if result.ok else "bold red"
    return Text(f"{result.short_label()} {age}", style=style)


def result_text(result: ProbeResult) -> Text:
    """One probe result as Rich Text (pure; server text is never read as markup)."""
    out = Text()
    verdict = "cancelled" if result.cancelled else "ok" if result.ok else "FAILED"
    style = "yellow" if result.cancelled else "bold green" if result.ok else "bold red"
    out.append(f"{TITLES.get(result.kind, result.kind)}  ", style="bold")
    out.append(verdict, style=style)
    out.append(f"  {_when(result.started_at)}, {result.seconds:.2f} s, {result.model} at {result.base_url}\n",
               style="dim")
    if result.chat is not None:
        c = result.chat
        ttft = f"{c.time_to_first_token:.3f} s" if c.time_to_first_token is not None else "-"
        tps = f"{c.tokens_per_second:.1f}" if c.tokens_per_second is not None else "-"
        out.append(f"  time to first token {ttft} · {tps} tokens/s · total {c.total_seconds:.3f} s"
                   f" · tokens {c.prompt_tokens} in / {c.completion_tokens} out"
                   f" · finish {c.finish_reason}\n")
    for step in result.steps:
        code = f" HTTP {step.status_code}" if step.status_code else ""
        took = f" {step.seconds:.2f} s" if step.seconds is not None else ""
        out.append(f"  {step.label}", style="bold")
        out.append(f"{code}{took}\n", style="dim")
        for check in step.checks:
            mark, mark_style = MARKS[check.outcome]
            out.append(f"    {mark} ", style=mark_style)
            out.append(f"{check.name}: ", style="bold" if check.outcome != "pass" else "")
            out.append(f"{printable(check.detail)}\n")
        if step.error:
            out.append("    ✗ ", style="bold red")
            out.append(f"{printable(step.error)}\n")
            if step.hint:
                out.append("    fix: ", style="bold yellow")
                out.append(f"{printable(step.hint)}\n", style="yellow")
    if result.text and result.kind in ("chat", "roundtrip"):
        label = "answer" if result.kind == "roundtrip" else "text"
        out.append(f"  {label}: ", style="bold")
        out.append(printable(result.text[:LIVE_LIMIT]) + "\n")
    return out


def panel_text(
    server: str | None,
    latest: Mapping[str, ProbeResult],
    running: str | None = None,
    live: str = "",
    snippets: Snippets | None = None,
) -> Text:
    """Everything the Probe tab shows (pure, so it is tested without a screen)."""
    out = Text()
    if server is None:
        out.append("no server selected\n", style="dim")
        return out
    out.append(f"{server}", style="bold")
    out.append("  c: chat probe · t: tool-call probes · results are saved in the run directory\n\n",
               style="dim")
    if running is not None:
        out.append(f"running {TITLES.get(running, running)} probe… (Esc cancels)\n", style="bold cyan")
        if live:
            out.append(printable(live[-LIVE_LIMIT:]) + "\n")
        out.append("\n")
    for kind in KINDS:
        result = latest.get(kind)
        if result is None:
            out.append(f"{TITLES[kind]}  ", style="bold")
            out.append("not run in this run yet\n\n", style="dim")
            continue
        out.append_text(result_text(result))
        out.append("\n")
    if snippets is not None:
        out.append(f"client snippets ({snippets.base_url}, model {snippets.model})\n", style="bold")
        out.append(snippets.curl + "\n", style="cyan")
        out.append(snippets.python, style="cyan")
    return out


class ProbePanel(VerticalScroll):
    """The Probe tab. Feed it data; it renders. See the module docstring for the calls."""

    DEFAULT_CSS = """
    ProbePanel { height: 1fr; }
    ProbePanel > Static { width: 1fr; }
    """

    @dataclass
    class TextReceived(Message):
        """A piece of streamed chat text arrived (posted from the probe's `on_text`)."""

        server: str
        kind: str
        text: str

    @dataclass
    class Finished(Message):
        """A probe finished, failed or was cancelled; `result` says which."""

        result: ProbeResult

    @dataclass
    class LatestRead(Message):
        """The latest result per kind (and the client snippets) of server `name`."""

        name: str | None
        latest: dict[str, ProbeResult]
        snippets: Snippets | None

    @dataclass
    class LastProbesRead(Message):
        """Every server's newest probe result, for the table."""

        last: dict[str, ProbeResult | None]

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ProbePanel.LastProbesRead)

    selection: var[Selection] = var(Selection(), init=False, always_update=True)

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self._cancel: threading.Event | None = None
        self._stop = threading.Event()
        self.server: str | None = None
        self.latest: dict[str, ProbeResult] = {}
        self.running: str | None = None
        self.live: str = ""
        self.snippets: Snippets | None = None
        self._body = Static(Text(""), id="probe-body")

    def compose(self) -> ComposeResult:
        yield self._body

    def on_mount(self) -> None:
        self._render_now()
        if self.settings is not None:
            self.poll_last_probes(self.settings)

    def on_unmount(self) -> None:
        self._stop.set()
        if self._cancel is not None:
            self._cancel.set()

    # ---------------------------------------------------------------- work

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if old.key != new.key and self.settings is not None:
            self.read_latest(self.settings, new)

    @worker("reading the probe results", group="probe-read", exclusive=True)
    def read_latest(self, settings: Settings, selection: Selection) -> None:
        status = selection.status
        latest = latest_probes(status.run_dir) if status and status.run_dir else {}
        snippets = None
        if selection.name and status is not None and status.running:
            found = server_snippets(settings, selection.name, loaded=selection.loaded)
            snippets = None if isinstance(found, str) else found
        self.post_message(self.LatestRead(selection.name, latest, snippets))

    def on_probe_panel_latest_read(self, message: ProbePanel.LatestRead) -> None:
        message.stop()
        if message.name == self.selection.name:
            self.show_server(message.name, message.latest)
            if message.snippets is not None:
                self.show_snippets(message.snippets)

    @worker("reading the last probes", group="probe-last", exclusive=True)
    def poll_last_probes(self, settings: Settings) -> None:
        this = get_current_worker()
        while not this.is_cancelled and not self._stop.is_set():
            last = {s.name: last_probe(s.run_dir) for s in self.selection.statuses if s.run_dir}
            self.post_message(self.LastProbesRead(last))
            self._stop.wait(settings.probes_poll)

    @property
    def busy(self) -> bool:
        """A probe is running."""
        return self._cancel is not None

    def run_probe(self, kind: str) -> bool:
        """Start a probe of `kind` on the selected server; False (and a notification) when
        it cannot run now."""
        name, status = self.selection.name, self.selection.status
        if self.settings is None or name is None or status is None or not self.selection.live:
            self.notify(f"{name or 'nothing'} is not ready: start it first (s)", severity="warning")
            return False
        if self._cancel is not None:
            self.notify("a probe is running already", severity="warning")
            return False
        self.show_server(name, self.latest if self.server == name else {})
        self.probe_started(kind)
        self._cancel = threading.Event()
        self.probe(self.settings, name, kind, self._cancel)
        return True

    @worker("running a probe", group="probe")
    def probe(self, settings: Settings, name: str, kind: str, cancel: threading.Event) -> None:
        def on_text(piece: str) -> None:
            self.post_message(self.TextReceived(name, kind, piece))

        self.post_message(self.Finished(probe_server(settings, name, kind, on_text=on_text, cancel=cancel)))

    def on_probe_panel_text_received(self, message: ProbePanel.TextReceived) -> None:
        message.stop()
        if self.server == message.server:
            self.append_text(message.text)

    def on_probe_panel_finished(self, message: ProbePanel.Finished) -> None:
        # not stopped: the screen's table shows the newest probe too
        self._cancel = None
        result = message.result
        self.show(result)
        ok = result.ok
        self.notify(
            f"{result.server}: {result.kind} probe {'passed' if ok else 'FAILED'}",
            severity="information" if ok else "error",
        )

    # ---------------------------------------------------------------- rendering

    def _render_now(self) -> None:
        self._body.update(panel_text(self.server, self.latest, self.running, self.live, self.snippets))

    def show_server(self, name: str | None, latest: Mapping[str, ProbeResult]) -> None:
        """Show `name`'s latest result per kind (a new selection drops the live view)."""
        if name != self.server:
            self.running, self.live, self.snippets = None, "", None
        self.server = name
        self.latest = dict(latest)
        self._render_now()

    def probe_started(self, kind: str) -> None:
        """A probe of `kind` began on the shown server."""
        self.running, self.live = kind, ""
        self._render_now()

    def append_text(self, piece: str) -> None:
        """A streamed piece of the running chat probe."""
        self.live = (self.live + piece)[-LIVE_LIMIT:]
        self._render_now()
        self.scroll_end(animate=False)

    def show(self, result: ProbeResult) -> None:
        """A finished (or cancelled) probe: it becomes the latest of its kind."""
        if self.server is None or result.server == self.server:
            self.server = result.server
            self.latest[result.kind] = result
            if self.running == result.kind:
                self.running, self.live = None, ""
            self._render_now()

    def show_snippets(self, snippets: Snippets | None) -> None:
        """The curl and Python client code for the shown server (None hides them)."""
        self.snippets = snippets
        self._render_now()
