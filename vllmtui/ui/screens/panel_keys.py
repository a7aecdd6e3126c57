"""The main screen's keys that act on a panel (the Log, Probe, Tunnels, Chat, Models and
Gateway tabs' keys): a base of `MainScreen`. A key for a panel that is not mounted yet (the
first frame is on screen, the other panels follow: screens/tabs.py) waits for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TabbedContent

from vllmtui.ui.screens.tabs import FIRST, panel_of
from vllmtui.ui.widgets.server_table import ServerTable

if TYPE_CHECKING:
    from vllmtui.ui.widgets.chat_panel import ChatPanel
    from vllmtui.ui.widgets.gateway_panel import GatewayPanel
    from vllmtui.ui.widgets.log_panel import LogPanel
    from vllmtui.ui.widgets.models_panel import ModelsPanel
    from vllmtui.ui.widgets.probe_panel import ProbePanel
    from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel


class PanelKeys(Screen[None]):
    """The keys of the panels, for the main screen."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[tuple[str, Callable[[Any], None]]] = []

    def _flush_hand_down(self) -> None:
        """Hand the row under the cursor to the panels now, if that is still to come."""

    def _with(self, tab_id: str, act: Callable[[Any], None]) -> None:
        """`act(panel)` now, or once the tab's panel is mounted."""
        self._flush_hand_down()
        panel = panel_of(self, tab_id)
        if panel is None:
            self._pending.append((tab_id, act))
        else:
            act(panel)

    def _run_pending(self) -> None:
        """The keys that waited for their panel (`_with`), in order."""
        pending, self._pending = self._pending, []
        for tab_id, act in pending:
            panel: Widget | None = panel_of(self, tab_id)
            if panel is not None:
                act(panel)

    @property
    def selected(self) -> str | None:
        try:
            return self.query_one(ServerTable).selected_name
        except NoMatches:  # shutting down
            return None

    @property
    def _log(self) -> LogPanel:
        return cast("LogPanel", panel_of(self, FIRST))

    def show_tab(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def action_gateway_up(self) -> None:
        self._with("tab-gateway", lambda gateway: cast("GatewayPanel", gateway).up())

    def action_gateway_down(self) -> None:
        self._with("tab-gateway", lambda gateway: cast("GatewayPanel", gateway).down())

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

    def on_remote(self, action: str) -> bool:
        """Another host's row: the key runs there (HostPoll); False on this machine's rows."""
        return False

    def _probe(self, kind: str) -> None:
        if self.on_remote("probe_chat" if kind == "chat" else "probe_tool"):
            return

        def probe(panel: ProbePanel) -> None:
            if panel.selection.live and not panel.busy:
                self.show_tab("tab-probe")
            panel.run_probe(kind)

        self._with("tab-probe", probe)

    def action_probe_chat(self) -> None:
        self._probe("chat")

    def action_probe_tool(self) -> None:
        self._probe("tools")

    def action_tunnel(self) -> None:
        if self.on_remote("tunnel"):
            return
        name = self.selected
        if name is not None:
            self._with("tab-tunnels", lambda tunnels: cast("TunnelsPanel", tunnels).toggle(name))

    def action_chat_tab(self) -> None:
        self.show_tab("tab-chat")
        self._with("tab-chat", lambda chat: cast("ChatPanel", chat).focus_input())

    def action_chat(self, what: str) -> None:
        """The Chat tab's keys: new, open, export, gateway, stop."""
        self._with("tab-chat", lambda chat: cast("ChatPanel", chat).key_pressed(what))

    def action_remove_model(self) -> None:
        self._with("tab-models", lambda models: cast("ModelsPanel", models).remove_model())

