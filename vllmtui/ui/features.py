"""Where the feature issues (GPU, metrics, probes, tunnels) plug into the main screen:
their detail tabs (stable ids), their server-table columns, the header's GPU summary, their
pollers (thread workers) and their keys (c, t, T). The panels render; this module reads
(in workers) and routes what was read to them. A panel that is not installed gets a tab
that says plainly that the feature is not available yet."""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import TabbedContent
from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.servers.fleet import ServerStatus
from vllmtui.ui.messages import FeatureRead
from vllmtui.ui.widgets.placeholder import FeatureMissing
from vllmtui.ui.widgets.server_table import BASE_COLUMNS, Column

if TYPE_CHECKING:
    from vllmtui.ui.app import VllmtuiApp

# tab id, title, panel module, what the placeholder says
TABS: tuple[tuple[str, str, str, str], ...] = (
    ("tab-gpu", "GPU", "vllmtui.ui.widgets.gpu_panel", "GPU readings come with the GPU issue"),
    (
        "tab-metrics",
        "Metrics",
        "vllmtui.ui.widgets.metrics_panel",
        "request and token rates come with the metrics issue",
    ),
    (
        "tab-probe",
        "Probe",
        "vllmtui.ui.widgets.probe_panel",
        "chat and tool-call probes (c, t) come with the probes issue",
    ),
    (
        "tab-tunnels",
        "Tunnels",
        "vllmtui.ui.widgets.tunnels_panel",
        "SSH tunnels (T) come with the tunnels issue",
    ),
    (
        "tab-plan",
        "Plan",
        "vllmtui.ui.widgets.plan_view",
        "the memory plan comes with the GPU planner",
    ),
    (
        "tab-bench",
        "Bench",
        "vllmtui.ui.widgets.bench_view",
        "benchmarks come with the metrics and bench issue",
    ),
)
GPU_POLL = 2.0  # while the GPU tab is shown
GPU_POLL_HIDDEN = 5.0  # otherwise (header and table cells); a reading walks every process
METRICS_OTHERS = 10.0  # servers not selected are scraped this often
METRICS_SELECTED = 2.0  # the selected server (a real /metrics parse costs ~5 ms of CPU)
SIDE_POLL = 5.0  # tunnels and last probes


@dataclass(frozen=True)
class Features:
    """Which feature panels are installed in this checkout."""

    gpu: bool = False
    metrics: bool = False
    probes: bool = False
    tunnels: bool = False
    plan: bool = False
    bench: bool = False


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def available() -> Features:
    return Features(*(_has(module) for _tab, _title, module, _what in TABS))


def table_columns(found: Features) -> tuple[Column, ...]:
    cols = list(BASE_COLUMNS[:4])  # name, status, port, uptime
    cols.append(Column("gpus", "GPUS"))
    if found.gpu:
        cols.append(Column("gpumem", "GPU MEM"))
    if found.metrics:
        cols.append(Column("load", "REQ R/W TOK/S"))
    if found.probes:
        cols.append(Column("probe", "LAST PROBE"))
    if found.tunnels:
        cols.append(Column("tunnel", "TUNNEL"))
    cols.append(Column("model", "MODEL"))
    return tuple(cols)


def panels(found: Features) -> Iterator[tuple[str, str, Widget]]:
    flags = (found.gpu, found.metrics, found.probes, found.tunnels, found.plan, found.bench)
    for (tab_id, title, _module, what), on in zip(TABS, flags, strict=True):
        yield tab_id, title, (_panel(tab_id) if on else FeatureMissing(title, what, id=f"{tab_id}-missing"))


def _panel(tab_id: str) -> Widget:
    if tab_id == "tab-gpu":
        from vllmtui.ui.widgets.gpu_panel import GpuPanel

        return GpuPanel(id="gpu-panel")
    if tab_id == "tab-metrics":
        from textual.containers import VerticalScroll

        from vllmtui.ui.widgets.metrics_panel import MetricsPanel

        return VerticalScroll(MetricsPanel(id="metrics-panel"))
    if tab_id == "tab-probe":
        from vllmtui.ui.widgets.probe_panel import ProbePanel

        return ProbePanel(id="probe-panel")
    if tab_id == "tab-tunnels":
        from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel

        return TunnelsPanel(id="tunnels-panel")
    if tab_id == "tab-plan":
        from vllmtui.ui.widgets.plan_view import PlanView

        return PlanView(id="plan-view")
    from vllmtui.ui.widgets.bench_view import BenchView

    return BenchView(id="bench-view")


def _base_url(status: ServerStatus) -> str | None:
    if not status.port:
        return None
    host = "127.0.0.1" if status.host in (None, "", "0.0.0.0", "::") else status.host
    return f"http://{host}:{status.port}"


class FeatureMixin:
    """The app's side of the feature panels. Mixed into VllmtuiApp."""

    found: Features
    gpu_snapshot: Any = None
    gpu_history: Any = None

    def _feature_init(self) -> None:
        self.metrics: dict[str, Any] = {}
        self.last_probes: dict[str, Any] = {}
        self.tunnel_statuses: list[Any] = []
        self._probe_cancel: threading.Event | None = None
        self._gpu_poke = threading.Event()
        self._gpu_tab_shown = False

    def _feature_start(self: VllmtuiApp) -> None:  # type: ignore[misc]
        if self.found.gpu:
            self.run_worker(self._poll_gpus, thread=True, exclusive=True, group="gpu")
        if self.found.metrics:
            self.run_worker(self._poll_metrics, thread=True, exclusive=True, group="metrics")
        if self.found.probes or self.found.tunnels:
            self.run_worker(self._poll_side, thread=True, exclusive=True, group="side")

    # ------------------------------------------------------------ pollers (threads)

    def _poll_gpus(self: VllmtuiApp) -> None:  # type: ignore[misc]
        from vllmtui.planner.gpu import GpuHistory, read_gpus
        from vllmtui.ui.widgets.gpu_panel import GpuSnapshotTaken

        worker = get_current_worker()
        history = GpuHistory()
        while not worker.is_cancelled:
            snapshot = read_gpus(self.fleet)
            history = history.add(snapshot)
            self.post_message(GpuSnapshotTaken(snapshot, history))
            self._gpu_poke.wait(GPU_POLL if self._gpu_tab_shown else GPU_POLL_HIDDEN)
            self._gpu_poke.clear()

    def _poll_metrics(self: VllmtuiApp) -> None:  # type: ignore[misc]
        from vllmtui.servers.metrics import MetricsPoller
        from vllmtui.ui.widgets.metrics_panel import MetricsSnapshotTaken

        worker = get_current_worker()
        pollers: dict[str, tuple[str, Any]] = {}
        last: dict[str, float] = {}
        try:
            while not worker.is_cancelled:
                selected = self._selected_for_workers
                live = {
                    s.name: s
                    for s in list(self.statuses.values())
                    if s.state in ("ready", "unhealthy") and _base_url(s)
                }
                for name in [n for n in pollers if n not in live]:
                    pollers.pop(name)[1].close()
                for name, status in live.items():
                    key = str(status.run_dir)
                    if name not in pollers or pollers[name][0] != key:
                        if name in pollers:
                            pollers[name][1].close()
                        pollers[name] = (key, MetricsPoller(_base_url(status) or "", timeout=1.0))
                    due = METRICS_SELECTED if name == selected else METRICS_OTHERS
                    if time.monotonic() - last.get(name, 0.0) >= due:
                        last[name] = time.monotonic()
                        self.post_message(MetricsSnapshotTaken(name, pollers[name][1].poll()))
                time.sleep(self.settings.poll_interval)
        finally:
            for _key, poller in pollers.values():
                poller.close()

    def _poll_side(self: VllmtuiApp) -> None:  # type: ignore[misc]
        worker = get_current_worker()
        while not worker.is_cancelled:
            data: dict[str, Any] = {}
            if self.found.probes:
                from vllmtui.probes.results import last_probe

                data["last_probes"] = {
                    s.name: last_probe(s.run_dir) for s in list(self.statuses.values()) if s.run_dir
                }
            if self.found.tunnels:
                from vllmtui.tunnels.manager import Tunnels

                try:
                    data["tunnels"] = Tunnels(self.settings).statuses(list(self.profiles.values()))
                except Exception as exc:  # noqa: BLE001 - a reading, never an exception
                    data["tunnels_error"] = str(exc)
            self.post_message(FeatureRead("side", data))
            self._side_poke.wait(SIDE_POLL)
            self._side_poke.clear()

    # ------------------------------------------------------------ readings in

    def on_gpu_snapshot_taken(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if not self._on_screen():
            return
        self.gpu_snapshot, self.gpu_history = message.snapshot, message.history
        self._show_gpus()
        self._render_table()
        self._render_topbar()

    def _widget(self: VllmtuiApp, widget_id: str) -> Any:  # type: ignore[misc]
        """A feature panel by id (typed Any: its module is imported only when installed)."""
        return self.query_one(f"#{widget_id}")

    def _tab_shown(self: VllmtuiApp, tab_id: str) -> bool:  # type: ignore[misc]
        """Hidden panels are not re-rendered (cheaper idle); they catch up when shown."""
        try:
            return self.query_one(TabbedContent).active == tab_id
        except NoMatches:
            return False

    def _show_gpus(self: VllmtuiApp) -> None:  # type: ignore[misc]
        if self.gpu_snapshot is None or not self._tab_shown("tab-gpu"):
            return
        with contextlib.suppress(NoMatches):
            self._widget("gpu-panel").show(self.gpu_snapshot, self.gpu_history)

    def on_tabbed_content_tab_activated(self: VllmtuiApp, event: Any) -> None:  # type: ignore[misc]
        self._gpu_tab_shown = self._tab_shown("tab-gpu")
        if self._gpu_tab_shown:
            self._gpu_poke.set()  # a fresh reading now
        self._show_gpus()
        self._show_metrics()
        self._show_tunnels()
        self.plan_bench_follow()

    def on_metrics_snapshot_taken(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if not self._on_screen():
            return
        before = self.metrics.get(message.name)
        self.metrics[message.name] = message.snapshot
        if message.name == self.selected:
            self._show_metrics()
        if before is None or before.stale != message.snapshot.stale or not message.snapshot.stale:
            self._render_table()  # a stale reading after a stale one changes no cell

    def _show_metrics(self: VllmtuiApp) -> None:  # type: ignore[misc]
        if not self.found.metrics or not self._tab_shown("tab-metrics"):
            return
        name = self.selected
        status = self.status_of(name)
        try:
            panel = self._widget("metrics-panel")
        except NoMatches:
            return
        if name is None or status is None:
            panel.show("-", None, note="no server selected")
        elif not status.running:
            panel.show(name, None, note=status.state)
        else:
            panel.show(name, self.metrics.get(name))

    def on_feature_read(self: VllmtuiApp, message: FeatureRead) -> None:  # type: ignore[misc]
        if not self._on_screen():
            return
        data = message.data
        if message.kind == "side":
            if "last_probes" in data:
                self.last_probes = data["last_probes"]
            if "tunnels" in data:
                self.tunnel_statuses = data["tunnels"]
                self._show_tunnels()
            self._render_table()
        elif message.kind == "probes-latest" and data.get("name") == self.selected:
            try:
                self._widget("probe-panel").show_server(data["name"], data["latest"])
                if data.get("snippets") is not None:
                    self._widget("probe-panel").show_snippets(data["snippets"])
            except NoMatches:
                pass
        elif message.kind == "bench-reports":
            self.bench_reports_read(data)
        elif message.kind == "tunnel-toggled":
            if data.get("error"):
                self.notify(data["error"], severity="error")
            else:
                self.tunnel_statuses = data["statuses"]
                self.notify(data["summary"])
                self._show_tunnels()
                self._render_table()
            self._side_poke.set()

    def _show_tunnels(self: VllmtuiApp) -> None:  # type: ignore[misc]
        if not self.found.tunnels or not self._tab_shown("tab-tunnels"):
            return
        from vllmtui.tunnels.laptop import laptop_command

        loaded = self.profiles.get(self.selected or "")
        laptop = None
        if loaded is not None:
            try:
                laptop = laptop_command(loaded.profile.host, loaded.profile.port)
            except Exception:  # noqa: BLE001 - the panel shows the tunnels without it
                laptop = None
        with contextlib.suppress(NoMatches):
            self._widget("tunnels-panel").show(self.tunnel_statuses, laptop)

    # ------------------------------------------------------------ hooks from the app

    def feature_cells(self: VllmtuiApp, status: ServerStatus) -> dict[str, str | Text]:  # type: ignore[misc]
        cells: dict[str, str | Text] = {}
        if self.found.gpu and self.gpu_snapshot is not None:
            from vllmtui.ui.widgets.gpu_panel import gpu_cells

            gpus, mem = gpu_cells(self.gpu_snapshot, status.name)
            if gpus != "-":
                cells["gpus"] = gpus
            cells["gpumem"] = mem
        if self.found.metrics:
            from vllmtui.ui.widgets.metrics_panel import metrics_cell

            snap = self.metrics.get(status.name) if status.running else None
            cells["load"] = metrics_cell(snap) if status.running else "-"
        if self.found.probes:
            from vllmtui.ui.widgets.probe_panel import last_probe_cell

            result = self.last_probes.get(status.name)
            cells["probe"] = _ascii(last_probe_cell(result)) if result else "-"
        if self.found.tunnels:
            from vllmtui.ui.widgets.tunnels_panel import tunnel_marks

            mark = tunnel_marks(self.tunnel_statuses).get(status.name)
            cells["tunnel"] = mark.replace("\u21c4", "").strip() if mark else "-"
        return cells

    def gpu_summary(self: VllmtuiApp) -> str:  # type: ignore[misc]
        if self.view.gpu_summary is not None:
            return self.view.gpu_summary
        if not self.found.gpu:
            return "GPU n/a"
        if self.gpu_snapshot is None:
            return "GPU: reading..."
        return str(self.gpu_snapshot.summary())

    def feature_selection_changed(self: VllmtuiApp, name: str | None) -> None:  # type: ignore[misc]
        self._show_metrics()
        self._show_tunnels()
        self.plan_bench_follow()
        if self.found.probes:
            status = self.status_of(name)
            self.run_worker(
                lambda: self._read_probes(name, status), thread=True, exclusive=True, group="probe-read"
            )

    def _read_probes(self: VllmtuiApp, name: str | None, status: ServerStatus | None) -> None:  # type: ignore[misc]
        from vllmtui.probes.results import latest_probes
        from vllmtui.probes.target import server_snippets

        latest = latest_probes(status.run_dir) if status and status.run_dir else {}
        snippets = None
        if name and status is not None and status.running:
            found = server_snippets(self.settings, name)
            snippets = None if isinstance(found, str) else found
        self.post_message(
            FeatureRead("probes-latest", {"name": name, "latest": latest, "snippets": snippets})
        )

    # ------------------------------------------------------------ keys

    def feature_probe(self: VllmtuiApp, kind: str) -> None:  # type: ignore[misc]
        what = "chat probe" if kind == "chat" else "tool-call probe"
        if not self.found.probes:
            self.notify(
                f"The {what} is not available yet (it comes with the probes issue).", severity="warning"
            )
            return
        name = self.selected
        status = self.status_of(name)
        if name is None or status is None or status.state not in ("ready", "unhealthy"):
            self.notify(f"{name or 'nothing'} is not ready: start it first (s)", severity="warning")
            return
        if self._probe_cancel is not None:
            self.notify("a probe is running already", severity="warning")
            return
        self.query_one(TabbedContent).active = "tab-probe"
        panel = self._widget("probe-panel")
        panel.show_server(name, panel.latest if panel.server == name else {})
        panel.probe_started(kind)
        self._probe_cancel = threading.Event()
        cancel = self._probe_cancel
        self.run_worker(lambda: self._run_probe(name, kind, cancel), thread=True, group="probe")

    def _run_probe(self: VllmtuiApp, name: str, kind: str, cancel: threading.Event) -> None:  # type: ignore[misc]
        from vllmtui.probes.target import probe_server
        from vllmtui.ui.widgets.probe_panel import ProbeFinished, ProbeTextReceived

        def on_text(piece: str) -> None:
            self.post_message(ProbeTextReceived(name, kind, piece))

        result = probe_server(self.settings, name, kind, on_text=on_text, cancel=cancel)
        self.post_message(ProbeFinished(result))

    def on_probe_text_received(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if not self._on_screen():
            return
        try:
            panel = self._widget("probe-panel")
        except NoMatches:
            return
        if panel.server == message.server:
            panel.append_text(message.text)

    def on_probe_finished(self: VllmtuiApp, message: Any) -> None:  # type: ignore[misc]
        if not self._on_screen():
            return
        self._probe_cancel = None
        result = message.result
        try:
            self._widget("probe-panel").show(result)
        except NoMatches:
            return
        ok = getattr(result, "ok", None)
        self.notify(
            f"{result.server}: {result.kind} probe {'passed' if ok else 'FAILED'}",
            severity="information" if ok else "error",
        )
        self.last_probes[result.server] = result
        self._render_table()

    def feature_tunnel(self: VllmtuiApp) -> None:  # type: ignore[misc]
        if not self.found.tunnels:
            self.notify(
                "Tunnels are not available yet (they come with the tunnels issue).", severity="warning"
            )
            return
        name = self.selected
        if name is None:
            return
        self.run_worker(lambda: self._toggle_tunnel(name), thread=True, group="tunnel")

    def _toggle_tunnel(self: VllmtuiApp, name: str) -> None:  # type: ignore[misc]
        from vllmtui.tunnels.manager import Tunnels

        try:
            statuses = Tunnels(self.settings).toggle(name)
        except VllmtuiError as exc:
            self.post_message(FeatureRead("tunnel-toggled", {"error": str(exc)}))
            return
        mine = [s for s in statuses if s.tunnel and s.tunnel.profile == name]
        states = ", ".join(sorted({s.state for s in mine})) or "none"
        self.post_message(
            FeatureRead(
                "tunnel-toggled", {"statuses": statuses, "summary": f"{name}: tunnel(s) now {states}"}
            )
        )


def _ascii(text: Text) -> Text:
    """Keep cells ASCII for plain SSH clients: the panels' marks become letters."""
    plain = text.plain.replace("\u2713", "ok").replace("\u2717", "FAIL")
    out = Text(plain, style=text.style)
    for span in text.spans:
        out.stylize(span.style, span.start, min(span.end, len(plain)))
    return out
