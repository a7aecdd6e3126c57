"""Where the feature issues (GPU, metrics, probes, tunnels) plug into the main screen:
their detail tabs (stable ids), their server-table columns, the header's GPU summary and
their keys. A feature whose panel has not landed gets a tab that says so plainly."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from vllmtui.fleet import ServerStatus
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
)


@dataclass(frozen=True)
class Features:
    """Which feature panels are installed in this checkout."""

    gpu: bool = False
    metrics: bool = False
    probes: bool = False
    tunnels: bool = False


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def available() -> Features:
    return Features(gpu=False, metrics=False, probes=False, tunnels=False)


def table_columns(found: Features) -> tuple[Column, ...]:
    return BASE_COLUMNS


def panels(found: Features) -> Iterator[tuple[str, str, Widget]]:
    for tab_id, title, _module, what in TABS:
        yield tab_id, title, FeatureMissing(title, what, id=f"{tab_id}-missing")


def row_cells(found: Features, app: VllmtuiApp, status: ServerStatus) -> dict[str, str | Text]:
    return {}


def gpu_summary(found: Features, app: VllmtuiApp) -> str:
    return "GPU n/a"


def statuses_read(found: Features, app: VllmtuiApp) -> None:
    """After each status poll (feature panels refresh what depends on it)."""


def selection_changed(found: Features, app: VllmtuiApp, name: str | None) -> None:
    """The selected server changed (feature panels follow it)."""


def probe(found: Features, app: VllmtuiApp, kind: str) -> None:
    what = "chat probe" if kind == "chat" else "tool-call probe"
    app.notify(
        f"The {what} is not available yet (it comes with the probes issue).", severity="warning"
    )


def tunnel_toggle(found: Features, app: VllmtuiApp) -> None:
    app.notify(
        "Tunnels are not available yet (they come with the tunnels issue).", severity="warning"
    )
