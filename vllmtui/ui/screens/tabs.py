"""The main screen's detail tabs: their ids and titles, and the panel each one shows."""

from __future__ import annotations

from textual.widget import Widget

from vllmtui.core.settings import Settings
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.selection import Display
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
from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel

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


def tab_panels(settings: Settings, fleet: Fleet, look: Display) -> dict[str, Widget]:
    """The panel of each tab, by tab id."""
    s = settings
    return {
        "tab-log": LogPanel(s, look),
        "tab-info": InfoPanel(s, look, id="info"),
        "tab-gpu": GpuPanel(fleet, s, id="gpu-panel"),
        "tab-metrics": MetricsTab(s),
        "tab-probe": ProbePanel(s, id="probe-panel"),
        "tab-tunnels": TunnelsPanel(s, id="tunnels-panel"),
        "tab-plan": PlanView(s, id="plan-view"),
        "tab-bench": BenchView(s, id="bench-view"),
        "tab-gateway": GatewayPanel(s, id="gateway-panel"),
        "tab-chat": ChatPanel(s, id="chat-panel"),
        "tab-models": ModelsPanel(s, id="models-panel"),
    }
