"""The Probe tab: the latest result of each probe kind (chat, tools, round trip) of the
selected server, a live view of a running probe's streamed text, and the client snippets.

Rendering only: the panel never does I/O. The app reads and runs probes in thread workers
and hands the panel data. Interface (all calls on the UI thread):

- `show_server(name, latest)`: a server was selected; `latest` is
  `vllmtui.probes.latest_probes(status.run_dir)` (kind -> ProbeResult), read in a worker.
- `probe_started(kind)`: a probe began (clears the live text; says how to cancel).
- `append_text(piece)`: a streamed chat piece; a worker's `on_text` callback runs on the
  probe's thread, so post `ProbeTextReceived` (or `app.call_from_thread(panel.append_text, p)`).
- `show(result)`: a probe finished (or was cancelled): it becomes the latest of its kind.
- `show_snippets(snippets)`: `vllmtui.snippets.client_snippets(...)` for the server.

Running a probe from a worker, in one call: `vllmtui.probe_target.probe_server(settings,
name, kind, on_text=..., cancel=event)`; set `event` to cancel (it returns within ~0.1 s).
The server table's "last probe" column: `last_probe_cell(vllmtui.probes.last_probe(run_dir))`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from vllmtui.probes.runner import KINDS, ProbeResult
from vllmtui.probes.snippets import Snippets
from vllmtui.probes.toolcheck import printable

TITLES = {"chat": "chat", "tools": "tool calls", "roundtrip": "tool round trip"}
MARKS = {"pass": ("✓", "green"), "fail": ("✗", "bold red"), "warn": ("!", "yellow")}
LIVE_LIMIT = 4000  # characters of streamed text kept on screen


class ProbeTextReceived(Message):
    """A piece of streamed chat text arrived (posted from a probe worker's `on_text`)."""

    def __init__(self, server: str, kind: str, text: str) -> None:
        super().__init__()
        self.server = server
        self.kind = kind
        self.text = text


class ProbeFinished(Message):
    """A probe finished, failed or was cancelled; `result` says which."""

    def __init__(self, result: ProbeResult) -> None:
        super().__init__()
        self.result = result


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

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
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
