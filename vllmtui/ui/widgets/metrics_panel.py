"""The Metrics tab: live load, token rates, latency percentiles and sparklines of one server.

`MetricsTab` scrapes /metrics in its own worker: one `MetricsPoller` per live server, kept
across polls (it holds the rate and window state; a new one when the server's run changes),
the selected server more often than the others. Each reading is posted up as
`MetricsTab.SnapshotTaken` (the table's load column) and the selected server's is rendered
by `MetricsPanel` (`metrics_cell(snapshot)` gives the compact table cell: `3/1 845 tok/s`,
dim `-` without a reading, yellow `stale` when the last poll failed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core.humanize import sparkline
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.servers.metrics import Latency, MetricsPoller, MetricsSnapshot, fmt_rate, table_cell
from vllmtui.ui.selection import Selection
from vllmtui.ui.work import worker

SPARK_WIDTH = 60


def metrics_cell(snapshot: MetricsSnapshot | None) -> Text:
    """The server table's "req running/waiting, tok/s" cell."""
    text = table_cell(snapshot)
    if snapshot is None:
        return Text(text, style="dim")
    if snapshot.stale:
        return Text(text, style="yellow")
    return Text(text)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    ms = value * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def _latency_row(table: Table, label: str, lat: Latency) -> None:
    table.add_row(label, str(lat.count), _ms(lat.mean), _ms(lat.p50), _ms(lat.p90), _ms(lat.p99))


def _bar(fraction: float | None, width: int = 20) -> Text:
    if fraction is None:
        return Text("-", style="dim")
    filled = max(0, min(width, round(fraction * width)))
    style = "red" if fraction > 0.9 else "yellow" if fraction > 0.7 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {fraction * 100:.1f}%")
    return text


def render_metrics(name: str, snapshot: MetricsSnapshot | None, note: str = "") -> Group:
    """The panel's content (a pure function of the snapshot; snapshot tests use it)."""
    header = Text(f"{name}  ", style="bold")
    if snapshot is None:
        header.append(note or "no metrics reading yet", style="dim")
        return Group(header)
    when = datetime.fromtimestamp(snapshot.taken_at).strftime("%H:%M:%S")
    header.append(f"/metrics at {when}", style="dim")
    parts: list[object] = [header]
    if snapshot.stale:
        age = snapshot.stale_for
        since = f" for {age:.0f} s" if age is not None else ""
        parts.append(Text(f"STALE{since}: {snapshot.error} (numbers hidden until it answers again)",
                          style="bold yellow"))
    else:
        load = Table.grid(padding=(0, 2))
        load.add_row("requests", f"running {snapshot.running or 0:.0f}",
                     f"waiting {snapshot.waiting or 0:.0f}")
        load.add_row("tokens/s", f"prompt {fmt_rate(snapshot.prompt_tps)}",
                     f"generation {fmt_rate(snapshot.generation_tps)}")
        load.add_row("KV cache", _bar(snapshot.kv_cache_usage), "")
        per_min = snapshot.preemptions_per_min
        load.add_row("preemptions", f"{snapshot.preemptions_total or 0:.0f} total",
                     "-" if per_min is None else f"{per_min:.1f}/min")
        parts.append(load)
        lat = Table(title=f"latency over the last {snapshot.window_s:.0f} s", title_justify="left",
                    box=None, padding=(0, 1), header_style="bold")
        for col in ("", "n", "mean", "p50", "p90", "p99"):
            lat.add_column(col, justify="left" if not col else "right")
        _latency_row(lat, "TTFT", snapshot.ttft)
        _latency_row(lat, "ITL", snapshot.itl)
        _latency_row(lat, "E2E", snapshot.e2el)
        _latency_row(lat, "queue", snapshot.queue)
        parts.append(lat)
    spark = Table.grid(padding=(0, 1))
    for key, label in (("generation_tps", "gen tok/s"), ("prompt_tps", "prompt tok/s"),
                       ("running", "running"), ("waiting", "waiting"), ("kv_cache_usage", "KV cache")):
        values = snapshot.history.get(key, ())
        last = next((v for v in reversed(values) if v is not None), None)
        top = max((v for v in values[-SPARK_WIDTH:] if v is not None), default=None)
        scale = "" if top is None else (f"max {top * 100:.0f}%" if key == "kv_cache_usage"
                                        else f"max {fmt_rate(top)}")
        spark.add_row(label, Text(sparkline(values, SPARK_WIDTH), style="cyan"),
                      Text(scale if last is not None else "", style="dim"))
    parts.append(Text(f"last {len(snapshot.history.get('running', ()))} readings", style="dim"))
    parts.append(spark)
    if snapshot.cache_info.get("kv_cache_size_tokens"):
        info = snapshot.cache_info
        parts.append(Text(f"KV cache: {int(info['kv_cache_size_tokens']):,} tokens, block "
                          f"{info.get('block_size', '?')}, dtype {info.get('cache_dtype', '?')}",
                          style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


class MetricsPanel(Static):
    """Shows one server's latest metrics snapshot."""

    DEFAULT_CSS = """
    MetricsPanel { padding: 0 1; height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.server: str | None = None
        self.snapshot: MetricsSnapshot | None = None

    def show(self, name: str, snapshot: MetricsSnapshot | None, note: str = "") -> None:
        """Render `snapshot` for server `name` (the app calls this for the selected server)."""
        self.server, self.snapshot = name, snapshot
        self.update(render_metrics(name, snapshot, note))


class MetricsTab(VerticalScroll):
    """The scrolling tab around `MetricsPanel`; polls every live server's /metrics."""

    @dataclass
    class SnapshotTaken(Message):
        """A metrics poll of server `name` finished (good or stale)."""

        name: str
        snapshot: MetricsSnapshot

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, MetricsTab.SnapshotTaken) and message.name == self.name

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.metrics: dict[str, MetricsSnapshot] = {}
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield MetricsPanel(id="metrics-panel")

    def on_mount(self) -> None:
        if self.settings is not None:
            self.poll_metrics(self.settings)

    def on_unmount(self) -> None:
        self._stop.set()

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if old.key != new.key:
            self._refresh_view()

    def watch_shown(self, shown: bool) -> None:
        self._refresh_view()

    @worker("reading the servers' metrics", group="metrics", exclusive=True)
    def poll_metrics(self, settings: Settings) -> None:
        this = get_current_worker()
        pollers: dict[str, tuple[str, MetricsPoller]] = {}
        last: dict[str, float] = {}
        try:
            while not this.is_cancelled and not self._stop.is_set():
                selection = self.selection
                live = {s.name: s for s in (*selection.statuses, *selection.endpoints)
                        if s.state in ("ready", "unhealthy") and s.port}
                for name in [n for n in pollers if n not in live]:
                    pollers.pop(name)[1].close()
                for name, status in live.items():
                    key = str(status.run_dir)
                    if name not in pollers or pollers[name][0] != key:
                        if name in pollers:
                            pollers[name][1].close()
                        url = base_url(status.host, status.port or 0)
                        pollers[name] = (key, MetricsPoller(url, timeout=settings.metrics_timeout))
                    due = settings.metrics_selected if name == selection.name else settings.metrics_others
                    if time.monotonic() - last.get(name, 0.0) >= due:
                        last[name] = time.monotonic()
                        self.post_message(self.SnapshotTaken(name, pollers[name][1].poll()))
                self._stop.wait(settings.poll_interval)
        finally:
            for _key, poller in pollers.values():
                poller.close()

    def on_metrics_tab_snapshot_taken(self, message: MetricsTab.SnapshotTaken) -> None:
        # not stopped: the screen's table shows every server's load
        self.metrics[message.name] = message.snapshot
        if message.name == self.selection.name:
            self._refresh_view()

    def _refresh_view(self) -> None:
        if not self.shown:  # hidden tabs are not re-rendered; they catch up when shown
            return
        name, status = self.selection.name, self.selection.status
        panel = self.query_one(MetricsPanel)
        if name is None or status is None:
            panel.show("-", None, note="no server selected")
        elif not status.running:
            panel.show(name, None, note=status.state)
        else:
            panel.show(name, self.metrics.get(name))
