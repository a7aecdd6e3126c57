"""The main screen: the header, the server table, the detail tabs and the footer.

It reads every server's status in its own worker, owns the selection and hands it down to
the panels as an attribute (`panel.selection`, `panel.shown`); the panels do their own work
and post their readings up, which the screen folds into the table and the header."""

from __future__ import annotations

import os
import threading
import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from vllmtui.core.settings import Settings
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus
from vllmtui.ui import readings
from vllmtui.ui.keys import KEYS, help_text, key_allowed
from vllmtui.ui.messages import (
    OrphansReaped,
    ProfileDuplicated,
    ProfileEdited,
    ServerStarted,
    ServerStopped,
    StartRefused,
    StatusesRead,
    StopProgressed,
)
from vllmtui.ui.rows import COLUMNS, Readings, header_text, table_rows
from vllmtui.ui.screens.dialogs import MessageDialog
from vllmtui.ui.screens.tabs import TABS, tab_panels
from vllmtui.ui.selection import Display, Selection
from vllmtui.ui.widgets.bench_view import BenchView
from vllmtui.ui.widgets.chat_panel import ChatPanel
from vllmtui.ui.widgets.gateway_panel import GatewayPanel
from vllmtui.ui.widgets.gpu_panel import GpuPanel
from vllmtui.ui.widgets.info_panel import InfoPanel
from vllmtui.ui.widgets.log_panel import LogPanel
from vllmtui.ui.widgets.metrics_panel import MetricsTab
from vllmtui.ui.widgets.models_panel import ModelsPanel
from vllmtui.ui.widgets.plan_view import PlanView
from vllmtui.ui.widgets.probe_panel import ProbePanel
from vllmtui.ui.widgets.server_actions import ServerActions
from vllmtui.ui.widgets.server_table import ServerTable
from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel
from vllmtui.ui.work import worker


class MainScreen(Screen[None]):
    """Server table, detail tabs (Log, Info, GPU, Metrics, Probe, Tunnels, Plan, Bench, Gateway,
    Chat, Models), keys."""

    # a tab's own keys first: on their tab the footer shows them before the server keys
    BINDINGS = [Binding(k.key, "app.quit" if k.action == "quit" else k.action, k.label, show=k.footer)
                for k in sorted(KEYS, key=lambda k: k.tab is None)]

    def __init__(self, settings: Settings, fleet: Fleet, look: Display) -> None:
        super().__init__()
        self.settings = settings
        self.fleet = fleet
        self.look = look
        self.readings = Readings()
        self.poll_error: str | None = None
        self.polls = 0
        self._poke = threading.Event()
        self._reload = threading.Event()
        self._select_after_reload: str | None = None
        self._topbar_text = ""
        self._hostname = look.hostname or os.uname().nodename

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        panels = tab_panels(self.settings, self.fleet, self.look)
        yield Static(id="topbar")
        yield ServerTable(columns=COLUMNS, id="servers")
        with TabbedContent(id="detail", initial="tab-log"):
            for tab_id, title in TABS:
                with TabPane(title, id=tab_id):
                    yield panels[tab_id]
        yield ServerActions(self.settings, self.fleet)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._render_topbar()
        self.query_one(ServerTable).focus()
        self.poll_statuses()

    def on_unmount(self) -> None:
        self._poke.set()

    # ---------------------------------------------------------------- what tests and the app read

    @property
    def statuses(self) -> dict[str, ServerStatus]:
        return self.readings.statuses

    @property
    def selected(self) -> str | None:
        try:
            return self.query_one(ServerTable).selected_name
        except NoMatches:  # shutting down
            return None

    def state_of(self, name: str) -> str | None:
        """The state the table shows for `name` (tests and benchmarks read it)."""
        r = self.readings
        if name in r.broken and name not in r.statuses:
            return "invalid"
        status = r.statuses.get(name)
        return None if status is None else status.state

    def running_names(self) -> list[str]:
        return self.readings.running_names()

    def refresh_now(self, reload_profiles: bool = False) -> None:
        if reload_profiles:
            self._reload.set()
        self._poke.set()

    # ---------------------------------------------------------------- the status poller

    @worker("reading the servers", group="poll", exclusive=True)
    def poll_statuses(self) -> None:
        this = get_current_worker()
        profiles: list[LoadedProfile] = []
        broken: list[BrokenProfile] = []
        last_load = 0.0
        while not this.is_cancelled:
            error = None
            if self._reload.is_set() or time.monotonic() - last_load > self.settings.profile_reload:
                self._reload.clear()
                profiles, broken, error = readings.read_profiles(self.settings)
                last_load = time.monotonic()
            statuses, status_error = readings.read_statuses(self.fleet, profiles)
            if this.is_cancelled:
                return
            self.post_message(StatusesRead(statuses, profiles, broken, error or status_error))
            self._poke.wait(self.settings.poll_interval)
            self._poke.clear()

    def _on_screen(self) -> bool:
        """False while the app shuts down (a late reading has nowhere to go)."""
        try:  # widgets go away one by one during shutdown
            self.query_one(ServerTable)
            self.query_one(TabbedContent)
        except NoMatches:
            return False
        return self.app.is_running

    def on_statuses_read(self, message: StatusesRead) -> None:
        if not self._on_screen():
            return
        r = self.readings
        self.polls += 1
        self.poll_error = message.error
        if message.profiles or not message.error:
            r.profiles = {p.profile.name: p for p in message.profiles}
            r.broken = {b.name: b for b in message.broken}
        if message.statuses or not message.error:
            r.statuses = {s.name: s for s in message.statuses}
            r.order = [s.name for s in message.statuses]
        for name in list(r.stop_progress):
            status = r.statuses.get(name)
            if status is None or status.session is None:
                r.stop_progress.pop(name, None)
        self._render_table()
        if self._select_after_reload and self.query_one(ServerTable).select(self._select_after_reload):
            self._select_after_reload = None
        self._render_topbar()
        self._hand_down()

    @on(DataTable.RowHighlighted, "#servers")
    def _row_highlighted(self) -> None:
        if self._on_screen():  # a highlight can arrive while the app shuts down
            self._hand_down()

    def _hand_down(self) -> None:
        """Give every panel the current selection (each decides what changed for it)."""
        if not self._on_screen():
            return
        r = self.readings
        name = self.selected
        selection = Selection(
            name, r.statuses.get(name) if name else None, r.profiles.get(name) if name else None,
            tuple(r.statuses[n] for n in r.order), tuple(r.profiles.values()), tuple(r.broken.values()),
        )
        self.query_one(LogPanel).selection = selection
        self.query_one(InfoPanel).selection = selection
        self.query_one(MetricsTab).selection = selection
        self.query_one(ProbePanel).selection = selection
        self.query_one(TunnelsPanel).selection = selection
        self.query_one(PlanView).selection = selection
        self.query_one(BenchView).selection = selection
        self.query_one(ChatPanel).selection = selection
        self.query_one(ModelsPanel).selection = selection
        self.query_one(ServerActions).selection = selection

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        active = self.query_one(TabbedContent).active
        self.query_one(GpuPanel).shown = active == "tab-gpu"
        self.query_one(MetricsTab).shown = active == "tab-metrics"
        self.query_one(TunnelsPanel).shown = active == "tab-tunnels"
        self.query_one(PlanView).shown = active == "tab-plan"
        self.query_one(BenchView).shown = active == "tab-bench"
        self.query_one(GatewayPanel).shown = active == "tab-gateway"
        self.query_one(ChatPanel).shown = active == "tab-chat"
        self.query_one(ModelsPanel).shown = active == "tab-models"
        self.refresh_bindings()  # a tab's own keys (g, G on the Gateway tab) show in its footer only

    # ---------------------------------------------------------------- rendering

    def _render_table(self) -> None:
        if not self._on_screen():
            return
        # the status column gets what the other columns leave, within reason
        width = max(24, min(60, self.size.width // 3))
        self.query_one(ServerTable).show(table_rows(self.readings, width, self.look.uptime))

    def _render_topbar(self) -> None:
        if not self._on_screen():
            return
        bar = header_text(self.readings, self._hostname, self.look.gpu_summary, self.poll_error)
        if bar.plain != self._topbar_text:  # an unchanged bar costs no repaint
            self._topbar_text = bar.plain
            self.query_one("#topbar", Static).update(bar)

    # ---------------------------------------------------------------- readings from the panels

    def on_gpu_panel_snapshot_taken(self, message: GpuPanel.SnapshotTaken) -> None:
        self.readings.gpu = message.snapshot
        self.query_one(PlanView).gpu_snapshot = message.snapshot
        self._render_table()
        self._render_topbar()

    def on_metrics_tab_snapshot_taken(self, message: MetricsTab.SnapshotTaken) -> None:
        before = self.readings.metrics.get(message.name)
        self.readings.metrics[message.name] = message.snapshot
        if before is None or before.stale != message.snapshot.stale or not message.snapshot.stale:
            self._render_table()  # a stale reading after a stale one changes no cell

    def on_probe_panel_last_probes_read(self, message: ProbePanel.LastProbesRead) -> None:
        self.readings.last_probes = message.last
        self._render_table()

    def on_probe_panel_finished(self, message: ProbePanel.Finished) -> None:
        self.readings.last_probes = {**self.readings.last_probes, message.result.server: message.result}
        self._render_table()

    def on_tunnels_panel_statuses_read(self, message: TunnelsPanel.StatusesRead) -> None:
        self.readings.tunnels = message.statuses
        self._render_table()

    def on_gateway_panel_status_read(self, message: GatewayPanel.StatusRead) -> None:
        self.readings.gateway = message.reading
        self._render_topbar()

    # ---------------------------------------------------------------- results of the server keys

    @on(ServerStarted)
    @on(StartRefused)
    @on(ServerActions.Detached)
    @on(OrphansReaped)
    def _read_again(self) -> None:
        self.refresh_now()

    def on_stop_progressed(self, message: StopProgressed) -> None:
        self.readings.stop_progress[message.name] = message.text
        self._render_table()

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.readings.stop_progress.pop(message.name, None)
        self.refresh_now()
        self._render_table()

    def on_profile_edited(self, message: ProfileEdited) -> None:
        self.query_one(InfoPanel).reread()
        self.refresh_now(reload_profiles=True)

    def on_profile_duplicated(self, message: ProfileDuplicated) -> None:
        if message.ok:
            self._select_after_reload = message.name
            self.refresh_now(reload_profiles=True)

    # ---------------------------------------------------------------- keys

    @property
    def _actions(self) -> ServerActions:
        return self.query_one(ServerActions)

    @property
    def _log(self) -> LogPanel:
        return self.query_one(LogPanel)

    def action_start(self) -> None:
        self._actions.start()

    def action_stop(self) -> None:
        self._actions.stop()

    def action_force_stop(self) -> None:
        self._actions.force_stop()

    def action_restart(self) -> None:
        self._actions.restart()

    def action_attach(self) -> None:
        self._actions.attach()

    def action_edit(self) -> None:
        self._actions.edit()

    def action_duplicate(self) -> None:
        self._actions.duplicate()

    def action_reap(self) -> None:
        self._actions.reap()

    def show_tab(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A tab's own keys (g, G: the Gateway tab's) work on that tab only, where they win."""
        return not self._on_screen() or key_allowed(action, self.query_one(TabbedContent).active)

    def action_gateway_up(self) -> None:
        self.query_one(GatewayPanel).up()

    def action_gateway_down(self) -> None:
        self.query_one(GatewayPanel).down()

    def action_log_tab(self) -> None:
        self.show_tab("tab-log")
        self._log.view.focus()

    def action_info_tab(self) -> None:
        self.show_tab("tab-info")

    def action_search(self) -> None:
        self.action_log_tab()
        self._log.open_search()

    def action_next_match(self) -> None:
        self._log.next_match(forward=True)

    def action_prev_match(self) -> None:
        self._log.next_match(forward=False)

    def action_problems(self) -> None:
        self._log.toggle_problems()

    def action_first_error(self) -> None:
        self.action_log_tab()
        self._log.first_error()

    def action_follow(self) -> None:
        self._log.view.follow_end()

    def _probe(self, kind: str) -> None:
        panel = self.query_one(ProbePanel)
        if panel.selection.live and not panel.busy:
            self.show_tab("tab-probe")
        panel.run_probe(kind)

    def action_probe_chat(self) -> None:
        self._probe("chat")

    def action_probe_tool(self) -> None:
        self._probe("tools")

    def action_tunnel(self) -> None:
        if self.selected is not None:
            self.query_one(TunnelsPanel).toggle(self.selected)

    def action_chat_tab(self) -> None:
        self.show_tab("tab-chat")
        self.query_one(ChatPanel).focus_input()

    def action_chat(self, what: str) -> None:
        """The Chat tab's keys: new, open, export, gateway, stop."""
        self.query_one(ChatPanel).key_pressed(what)

    def action_remove_model(self) -> None:
        self.query_one(ModelsPanel).remove_model()

    def action_help(self) -> None:
        self.app.push_screen(MessageDialog("vllmtui keys", help_text(), error=False))
