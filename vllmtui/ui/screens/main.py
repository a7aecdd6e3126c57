"""The main screen: the header, the server table, the detail tabs and the footer.

It reads every server's status in its own worker, owns the selection and hands it down to
the panels as an attribute (`panel.selection`, `panel.shown`); the panels do their own work
and post their readings up, which the screen folds into the table and the header."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import ProfileCache
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
from vllmtui.ui.screens.host_poll import HostPoll
from vllmtui.ui.screens.tabs import FIRST, TABS, first_panel, hand_down, mark_shown, panel_of, tab_panel
from vllmtui.ui.selection import Display, Selection
from vllmtui.ui.widgets.remote_actions import RemoteActions
from vllmtui.ui.widgets.server_actions import ServerActions
from vllmtui.ui.widgets.server_table import ServerTable
from vllmtui.ui.work import worker

if TYPE_CHECKING:  # the panels' modules load after the first frame (screens/tabs.py)
    from vllmtui.ui.widgets.gateway_panel import GatewayPanel
    from vllmtui.ui.widgets.gpu_panel import GpuPanel
    from vllmtui.ui.widgets.info_panel import InfoPanel
    from vllmtui.ui.widgets.metrics_panel import MetricsTab
    from vllmtui.ui.widgets.plan_view import PlanView
    from vllmtui.ui.widgets.probe_panel import ProbePanel
    from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel


MOUNT_GAP = 0.01
"""Seconds between two panels mounted after the first frame (the event loop's turn)."""


class MainScreen(HostPoll):
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
        self._mounting = self._panels_mounted = self._hand_down_due = False
        self._handed: str | None = None  # the row the panels were last given
        self._profile_cache = ProfileCache()

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        yield ServerTable(columns=COLUMNS, id="servers")
        with TabbedContent(id="detail", initial=FIRST):
            for tab_id, title in TABS:
                with TabPane(title, id=tab_id):
                    if tab_id == FIRST:
                        yield first_panel(self.settings, self.look)
        yield ServerActions(self.settings, self.fleet)
        yield RemoteActions()
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._render_topbar()
        self.query_one(ServerTable).focus()
        self.poll_statuses()
        self.poll_hosts()

    def on_unmount(self) -> None:
        self._poke.set()
        self.refresh_hosts()

    def _start_mounting(self) -> None:
        if not self._mounting and self._on_screen():
            self._mounting = True
            self.run_worker(self._mount_panels(), group="mount", exit_on_error=False)

    async def _mount_panels(self) -> None:
        """The other tabs' panels, once the first frame is on screen (their modules and
        widgets would have cost the first frame ~0.3 s), one by one: a frame, a key or the
        log's first lines can come in between (a worker: the screen's messages flow)."""
        for tab_id, _title in TABS:
            if tab_id == FIRST:
                continue
            await asyncio.sleep(MOUNT_GAP)
            if not self._on_screen():
                return
            panel = tab_panel(tab_id, self.settings, self.fleet, self.look)
            await self.query_one(f"#{tab_id}", TabPane).mount(panel)
        self._panels_mounted = True
        self.polls += 1  # the first reading counts once every panel has it
        self._hand_down()
        mark_shown(self, self.query_one(TabbedContent).active)
        self._run_pending()

    # ---------------------------------------------------------------- what tests and the app read

    @property
    def statuses(self) -> dict[str, ServerStatus]:
        return self.readings.statuses

    def state_of(self, name: str) -> str | None:
        """The state the table shows for `name` once every panel is there (tests and
        benchmarks read it); None before."""
        r = self.readings
        if not self._panels_mounted:
            return None
        if name in r.broken and name not in r.statuses:
            return "invalid"
        status = r.statuses.get(name) or (r.remote[name][1] if name in r.remote else None)
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
                profiles, broken, error = readings.read_profiles(self.settings, self._profile_cache)
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
        if self._panels_mounted:
            self.polls += 1
        else:
            self.call_after_refresh(self._start_mounting)
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
        # the panels follow once the cursor's frame is on screen (a new log to read, a run
        # history...), and once for keys pressed faster than frames (a held arrow key)
        if self._on_screen() and not self._hand_down_due:
            self._hand_down_due = True
            self.call_after_refresh(self._hand_down)

    def _flush_hand_down(self) -> None:
        """A key acts on the row under the cursor: hand it down now if the cursor moved since
        (the hand-down waits for the cursor's frame; a key can come first)."""
        if self._hand_down_due or self.selected != self._handed:
            self._hand_down()

    def _hand_down(self) -> None:
        """Give every panel the current selection (each decides what changed for it)."""
        self._hand_down_due = False
        if not self._on_screen():
            return
        r = self.readings
        name = self.selected
        selection = Selection(
            name, r.statuses.get(name) if name else None, r.profiles.get(name) if name else None,
            tuple(r.statuses[n] for n in r.order), tuple(r.profiles.values()), tuple(r.broken.values()),
        )
        selection = self.with_endpoints(self.remote_selection(selection))
        hand_down(self, selection)
        self.query_one(ServerActions).selection = selection
        self.query_one(RemoteActions).selection = selection
        self._handed = name

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        mark_shown(self, self.query_one(TabbedContent).active)
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
        bar = header_text(self.readings, self._hostname, self.look.gpu_summary,
                          self.poll_error or self.hosts_error)
        if bar.plain != self._topbar_text:  # an unchanged bar costs no repaint
            self._topbar_text = bar.plain
            self.query_one("#topbar", Static).update(bar)

    # ---------------------------------------------------------------- readings from the panels

    def on_gpu_panel_snapshot_taken(self, message: GpuPanel.SnapshotTaken) -> None:
        self.readings.gpu = message.snapshot
        plan = cast("PlanView | None", panel_of(self, "tab-plan"))
        if plan is not None:
            plan.gpu_snapshot = message.snapshot
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
        info = cast("InfoPanel | None", panel_of(self, "tab-info"))
        if info is not None:
            info.reread()
        self.refresh_now(reload_profiles=True)

    def on_profile_duplicated(self, message: ProfileDuplicated) -> None:
        if message.ok:
            self._select_after_reload = message.name
            self.refresh_now(reload_profiles=True)

    # ---------------------------------------------------------------- keys

    @property
    def _actions(self) -> ServerActions:
        self._flush_hand_down()
        return self.query_one(ServerActions)

    def action_start(self) -> None:
        if not self.on_remote("start"):
            self._actions.start()

    def action_stop(self) -> None:
        if not self.on_remote("stop"):
            self._actions.stop()

    def action_force_stop(self) -> None:
        if not self.on_remote("force_stop"):
            self._actions.force_stop()

    def action_restart(self) -> None:
        if not self.on_remote("restart"):
            self._actions.restart()

    def action_attach(self) -> None:
        if not self.on_remote("attach"):
            self._actions.attach()

    def action_edit(self) -> None:
        if not self.on_remote("edit"):
            self._actions.edit()

    def action_duplicate(self) -> None:
        if not self.on_remote("duplicate"):
            self._actions.duplicate()

    def action_reap(self) -> None:
        if not self.on_remote("reap"):
            self._actions.reap()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A tab's own keys (g, G: the Gateway tab's) work on that tab only, where they win."""
        return not self._on_screen() or key_allowed(action, self.query_one(TabbedContent).active)

    def action_help(self) -> None:
        self.app.push_screen(MessageDialog("vllmtui keys", help_text(), error=False))
