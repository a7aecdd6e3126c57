"""The server table's rows and the header from what the main screen last read (pure: no I/O,
no widgets).

The panels' cells (GPU, load, last probe, tunnel, gateway) are imported when there is a
reading of theirs: the first frame (no readings yet) does not load the panels' modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text

from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers.status import ServerStatus
from vllmtui.ui.format import fmt_uptime, state_cell
from vllmtui.ui.widgets.server_table import Column, Row

if TYPE_CHECKING:
    from vllmtui.hosts.fleet import HostReading
    from vllmtui.planner.gpu import GpuSnapshot
    from vllmtui.probes.runner import ProbeResult
    from vllmtui.servers.metrics import MetricsSnapshot
    from vllmtui.tunnels.manager import TunnelStatus
    from vllmtui.ui.host_rows import HostView
    from vllmtui.ui.widgets.gateway_panel import GatewayReading

COLUMNS: tuple[Column, ...] = (
    Column("name", "NAME"),
    Column("status", "STATUS"),
    Column("port", "PORT"),
    Column("uptime", "UPTIME"),
    Column("gpus", "GPUS"),
    Column("gpumem", "GPU MEM"),
    Column("load", "REQ R/W TOK/S"),
    Column("probe", "LAST PROBE"),
    Column("tunnel", "TUNNEL"),
    Column("model", "MODEL"),
)
HOST_COLUMNS: tuple[Column, ...] = (COLUMNS[0], Column("host", "HOST"), *COLUMNS[1:])
"""The columns when hosts.yaml names other hosts."""


@dataclass
class Readings:
    """The latest of everything the table shows, as the screen received it."""

    statuses: dict[str, ServerStatus] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    profiles: dict[str, LoadedProfile] = field(default_factory=dict)
    broken: dict[str, BrokenProfile] = field(default_factory=dict)
    stop_progress: dict[str, str] = field(default_factory=dict)
    gpu: GpuSnapshot | None = None
    metrics: dict[str, MetricsSnapshot] = field(default_factory=dict)
    last_probes: Mapping[str, ProbeResult | None] = field(default_factory=dict)
    tunnels: Sequence[TunnelStatus] = ()
    gateway: GatewayReading | None = None
    host_names: tuple[str, ...] = ()
    """The other hosts of hosts.yaml (none: no host column)."""
    hosts: dict[str, HostReading] = field(default_factory=dict)
    remote: dict[str, tuple[str, ServerStatus]] = field(default_factory=dict)
    """Row key (`NAME@HOST`) -> (host, status) of every other host's server."""
    endpoints: tuple[ServerStatus, ...] = ()
    """The other hosts' live servers through their forwards (`Selection.endpoints`)."""
    hosts_stamp: int = 0
    """Counts the hosts' readings (the remote rows are built once per reading)."""
    remote_cache: tuple[object, list[Row]] | None = None
    view: HostView | None = None
    """Grouping and filter (None: grouped, no filter)."""

    def running_names(self) -> list[str]:
        return [s.name for s in self.statuses.values() if s.running]


def _ascii(text: Text) -> Text:
    """Keep cells ASCII for plain SSH clients: the panels' marks become letters."""
    plain = text.plain.replace("\u2713", "ok").replace("\u2717", "FAIL")
    out = Text(plain, style=text.style)
    for span in text.spans:
        out.stylize(span.style, span.start, min(span.end, len(plain)))
    return out


def feature_cells(r: Readings, status: ServerStatus, marks: Mapping[str, str]) -> dict[str, str | Text]:
    """The GPU, load, last-probe and tunnel cells of one server's row."""
    cells: dict[str, str | Text] = {}
    if r.gpu is not None:
        from vllmtui.ui.widgets.gpu_panel import gpu_cells

        gpus, mem = gpu_cells(r.gpu, status.name)
        if gpus != "-":
            cells["gpus"] = gpus
        cells["gpumem"] = mem
    if status.running:
        from vllmtui.ui.widgets.metrics_panel import metrics_cell

        cells["load"] = metrics_cell(r.metrics.get(status.name))
    else:
        cells["load"] = "-"
    result = r.last_probes.get(status.name)
    if result:
        from vllmtui.ui.widgets.probe_panel import last_probe_cell

        cells["probe"] = _ascii(last_probe_cell(result))
    else:
        cells["probe"] = "-"
    mark = marks.get(status.name)
    cells["tunnel"] = mark.replace("\u21c4", "").strip() if mark else "-"
    return cells


def _with_load(r: Readings, rows: list[Row]) -> list[Row]:
    """The other hosts' rows with their load cell from the metrics scraped through forwards."""
    if not r.metrics:
        return rows
    from vllmtui.ui.widgets.metrics_panel import metrics_cell

    out = []
    for row in rows:
        found = r.remote.get(row.name)
        if found is not None and found[1].running and row.name in r.metrics:
            row = Row(row.name, {**row.cells, "load": metrics_cell(r.metrics[row.name])})
        out.append(row)
    return out


def table_rows(r: Readings, width: int, uptime: Callable[[ServerStatus], str] | None = None) -> list[Row]:
    """One row per server (in the fleet's order), then one per profile file that does not
    validate; the status column gets `width` characters at most."""
    marks: dict[str, str] = {}
    if r.tunnels:
        from vllmtui.ui.widgets.tunnels_panel import tunnel_marks

        marks = tunnel_marks(r.tunnels)
    rows = []
    for name in r.order:
        status = r.statuses[name]
        loaded = r.profiles.get(name)
        shown_uptime = "-" if not status.running else uptime(status) if uptime else fmt_uptime(status.uptime)
        cells: dict[str, str | Text] = {
            "name": name if status.has_profile else f"{name} (no profile)",
            "status": state_cell(status, r.stop_progress.get(name), width),
            "port": str(status.port or ""),
            "uptime": shown_uptime,
            "model": loaded.profile.model if loaded else "",
            "gpus": ",".join(map(str, loaded.profile.gpus)) if loaded and loaded.profile.gpus else "-",
        }
        cells.update(feature_cells(r, status, marks))
        if loaded and loaded.profile.nodes and loaded.profile.nodes[0].host != "local" and not status.running:
            head = loaded.profile.nodes[0].host  # its server runs there: that host's row shows it
            cells["status"] = Text(f"multi-node: head on {head}"[:width], style="dim")
        if r.host_names:
            cells["host"] = "local"
        rows.append(Row(name, cells))
    for name, bad in r.broken.items():
        if name in r.statuses:
            continue
        first = bad.error.problems[0] if bad.error.problems else "invalid"
        first = first.split(": ", 1)[-1]
        cells = {"name": name, "status": Text(f"invalid: {first}"[:width], style="red")}
        rows.append(Row(name, {**cells, "host": "local"} if r.host_names else cells))
    if not r.host_names:  # one machine: the filter only
        return [row for row in rows if r.view.keeps(row)] if r.view else rows
    from vllmtui.ui.host_rows import HostView, remote_rows

    # the other hosts' rows change with their reading (once a second), not with each render
    key = (r.hosts_stamp, width, tuple(sorted(r.stop_progress.items())))
    if r.remote_cache is None or r.remote_cache[0] != key:
        r.remote_cache = (key, remote_rows(r.hosts, width, uptime, r.stop_progress))
    rows += _with_load(r, r.remote_cache[1])
    return (r.view or HostView()).arrange(rows, r.host_names)


def header_text(r: Readings, hostname: str, gpu_summary: str | None, poll_error: str | None) -> Text:
    """The top bar: host, servers running, the gateway (when there is one), the GPUs (their
    reading's summary unless `gpu_summary` is given) and a failed poll."""
    if gpu_summary is None:
        gpu_summary = "GPU: reading..." if r.gpu is None else str(r.gpu.summary())
    total = len(r.order) + len([b for b in r.broken if b not in r.statuses])
    bar = Text()
    bar.append(" vllmtui ", style="bold reverse")
    bar.append(f"  host {hostname}")
    bar.append(f"  servers {len(r.running_names())}/{total} running")
    if r.host_names:
        from vllmtui.ui.host_rows import hosts_segment

        remote = [s for _, s in r.remote.values()]
        bar.append(f" (+{len([s for s in remote if s.running])}/{len(remote)} on other hosts)  ")
        bar.append_text(hosts_segment({h: r.hosts[h] for h in r.host_names if h in r.hosts}))
    if r.view and r.view.filter:
        bar.append(f"  filter: {r.view.filter} (f)", style="bold")
    gateway = None
    if r.gateway is not None:
        from vllmtui.ui.widgets.gateway_panel import gateway_segment

        gateway = gateway_segment(r.gateway)
    if gateway is not None:
        bar.append("  ")
        bar.append_text(gateway)
    bar.append(f"  {gpu_summary}")
    if poll_error:
        bar.append(f"  ! {poll_error}", style="bold red")
    return bar
