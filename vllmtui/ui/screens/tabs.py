"""The main screen's detail tabs: their ids and titles, the panel each one shows, and how the
screen reaches them.

Only the Log tab's panel is there from the start: the others (and their modules: the planner,
the bench, chat, the gateway, probes, httpx...) are mounted one by one once the first frame is
on screen (`tab_panel`, `MainScreen._mount_panels`); until then `panel_of` answers None."""

from __future__ import annotations

from dataclasses import replace

from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import TabPane

from vllmtui.core.settings import Settings
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.selection import Display, Selection

# tab id, title: the ids are stable (tests, docs and the `l`/`i` keys use them)
TABS: tuple[tuple[str, str], ...] = (
    ("tab-log", "Log"),
    ("tab-info", "Info"),
    ("tab-gpu", "GPU"),
    ("tab-metrics", "Metrics"),
    ("tab-probe", "Probe"),
    ("tab-tunnels", "Tunnels"),
    ("tab-plan", "Plan"),
    ("tab-bench", "Bench"),
    ("tab-gateway", "Gateway"),
    ("tab-chat", "Chat"),
    ("tab-models", "Models"),
)
FIRST = "tab-log"
"""The tab shown at start: its panel is composed with the screen."""
SELECTED = ("tab-log", "tab-info", "tab-metrics", "tab-probe", "tab-tunnels", "tab-plan", "tab-bench",
            "tab-chat", "tab-models")
"""The tabs whose panel follows the selection (`panel.selection`)."""
RESTING = ("tab-gpu", "tab-metrics", "tab-tunnels", "tab-plan", "tab-bench", "tab-gateway", "tab-chat",
           "tab-models")
"""The tabs whose panel rests while hidden (`panel.shown`)."""


def first_panel(settings: Settings, look: Display) -> Widget:
    """The panel of the tab shown at start."""
    from vllmtui.ui.widgets.log_panel import LogPanel

    return LogPanel(settings, look)


def tab_panel(tab_id: str, settings: Settings, fleet: Fleet, look: Display) -> Widget:
    """The panel of a tab but the first (importing its module now)."""
    s = settings
    if tab_id == "tab-info":
        from vllmtui.ui.widgets.info_panel import InfoPanel

        return InfoPanel(s, look, id="info")
    if tab_id == "tab-gpu":
        from vllmtui.ui.widgets.gpu_panel import GpuPanel

        return GpuPanel(fleet, s, id="gpu-panel")
    if tab_id == "tab-metrics":
        from vllmtui.ui.widgets.metrics_panel import MetricsTab

        return MetricsTab(s)
    if tab_id == "tab-probe":
        from vllmtui.ui.widgets.probe_panel import ProbePanel

        return ProbePanel(s, id="probe-panel")
    if tab_id == "tab-tunnels":
        from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel

        return TunnelsPanel(s, id="tunnels-panel")
    if tab_id == "tab-plan":
        from vllmtui.ui.widgets.plan_view import PlanView

        return PlanView(s, id="plan-view")
    if tab_id == "tab-bench":
        from vllmtui.ui.widgets.bench_view import BenchView

        return BenchView(s, id="bench-view")
    if tab_id == "tab-gateway":
        from vllmtui.ui.widgets.gateway_panel import GatewayPanel

        return GatewayPanel(s, id="gateway-panel")
    if tab_id == "tab-chat":
        from vllmtui.ui.widgets.chat_panel import ChatPanel

        return ChatPanel(s, id="chat-panel")
    from vllmtui.ui.widgets.models_panel import ModelsPanel

    assert tab_id == "tab-models", tab_id
    return ModelsPanel(s, id="models-panel")


def panel_of(screen: DOMNode, tab_id: str) -> Widget | None:
    """The panel a tab shows; None until its mount is done (compose and all), or while the app
    shuts down."""
    try:
        pane = screen.query_one(f"#{tab_id}", TabPane)
    except NoMatches:
        return None
    children = pane.children
    if not children or not children[0].is_mounted:  # in the pane, but not yet composed
        return None
    return children[0]


REMOTE = ("tab-log", "tab-info", "tab-metrics", "tab-bench")
"""The tabs whose panel shows another host's row (its log read there, its status, its metrics
and benchmarks through a forward); the others act on this machine's servers and are handed no
server for such a row (they say so)."""


def hand_down(screen: DOMNode, selection: Selection) -> None:
    """Give every mounted panel that follows the selection the current one."""
    blank = replace(selection, name=None, status=None, loaded=None, host=None, hosts=None)
    for tab_id in SELECTED:
        panel = panel_of(screen, tab_id)
        if panel is not None:
            shown = selection if tab_id in REMOTE or not selection.remote else blank
            panel.selection = shown  # type: ignore[attr-defined]


def mark_shown(screen: DOMNode, active: str) -> None:
    """Tell the mounted panels that rest while hidden whether their tab is the active one."""
    for tab_id in RESTING:
        panel = panel_of(screen, tab_id)
        if panel is not None:
            panel.shown = tab_id == active  # type: ignore[attr-defined]
