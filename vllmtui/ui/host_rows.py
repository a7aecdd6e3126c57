"""The table's rows of other hosts' servers, the host column, grouping and the filter (pure:
no I/O, no widgets).

A remote server's row key is `NAME@HOST` (`@` is never in a profile or host name); this
machine's rows keep their plain NAME. A host that does not answer (or answers with another
vllmtui version) has a row of its own, keyed `@HOST`, that says why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from vllmtui.hosts.config import LOCAL
from vllmtui.servers.status import ServerStatus
from vllmtui.ui.format import fmt_uptime, state_cell
from vllmtui.ui.widgets.server_table import Row

if TYPE_CHECKING:
    from vllmtui.hosts.fleet import HostReading


def row_key(name: str, host: str | None) -> str:
    return name if host in (None, LOCAL) else f"{name}@{host}"


def split_key(key: str) -> tuple[str, str | None]:
    """(server name, remote host or None for this machine)."""
    name, at, host = key.partition("@")
    return (name, host) if at and host else (name, None)


def host_problem_key(host: str) -> str:
    return f"@{host}"


@dataclass(frozen=True)
class HostView:
    """How the table shows hosts: `grouped` by host (this machine first, then hosts.yaml's
    order) or every server by name; `filter`: only rows whose name, host or state holds it."""

    grouped: bool = True
    filter: str = ""

    def keeps(self, row: Row) -> bool:
        words = self.filter.strip().lower()
        if not words:
            return True
        text = " ".join(str(row.cells.get(col, "")) for col in ("name", "host", "status"))
        return all(word in text.lower() for word in words.split())

    def arrange(self, rows: Sequence[Row], hosts: Sequence[str]) -> list[Row]:
        kept = [r for r in rows if self.keeps(r)]
        if self.grouped:
            rank = {h: i for i, h in enumerate([LOCAL, *hosts])}
            return sorted(kept, key=lambda r: rank.get(str(r.cells.get("host") or LOCAL), len(rank)))
        return sorted(kept, key=lambda r: (split_key(r.name)[0], str(r.cells.get("host") or "")))


def host_problem_row(reading: HostReading, width: int) -> Row:
    """A host that did not answer (or answered with another version): why, and the fix."""
    state = reading.state
    if state == "skew":  # short enough for the cell: the version there and the fix
        words = f"skew: {reading.version} there; vllmtui hosts install {reading.name}"
    else:
        words = f"{state}: {reading.problem or ''}".strip().rstrip(":")
    style = "bold red" if state == "unreachable" else "bold yellow"
    cells: dict[str, str | Text] = {
        "name": f"({reading.name})", "host": reading.name, "status": Text(words[:width], style=style),
    }
    return Row(host_problem_key(reading.name), cells)


def remote_rows(readings: dict[str, HostReading], width: int,
                uptime: Callable[[ServerStatus], str] | None = None,
                stop_progress: dict[str, str] | None = None) -> list[Row]:
    """Every other host's servers (and a row for each host with a problem)."""
    rows: list[Row] = []
    for host, reading in readings.items():
        if reading.state != "ok":
            rows.append(host_problem_row(reading, width))
        usage = _gpu_usage(reading)
        sent = {p.name for p in reading.profiles if p.sent}
        for status in reading.statuses:
            key = row_key(status.name, host)
            shown_uptime = "-"
            if status.running:
                shown_uptime = uptime(status) if uptime else fmt_uptime(status.uptime)
            cell = state_cell(status, (stop_progress or {}).get(key), width)
            rows.append(Row(key, {
                "name": (f"{status.name} (sent)" if status.name in sent else status.name)
                if status.has_profile else f"{status.name} (no profile)",
                "host": host, "status": cell, "port": str(status.port or ""),
                "uptime": shown_uptime, "model": "", "load": "-", "probe": "-", "tunnel": "-",
                **usage.get(status.name, {"gpus": "-", "gpumem": "-"}),
            }))
    return rows


def _gpu_usage(reading: HostReading) -> dict[str, dict[str, str | Text]]:
    """Each of the host's servers' GPUS and GPU MEM cells, from the host's GPU reading."""
    if not reading.gpus:
        return {}
    from vllmtui.planner.gpu import GpuSnapshot
    from vllmtui.ui.widgets.gpu_panel import gpu_cells

    try:
        snapshot = GpuSnapshot.from_json(reading.gpus)
    except ValueError:
        return {}
    out: dict[str, dict[str, str | Text]] = {}
    for name in snapshot.usage_by_server():
        gpus, mem = gpu_cells(snapshot, name)
        out[name] = {"gpus": gpus, "gpumem": mem}
    return out


def remote_statuses(readings: dict[str, HostReading]) -> dict[str, tuple[str, ServerStatus]]:
    """Row key -> (host, status) for every other host's server."""
    return {row_key(s.name, host): (host, s) for host, r in readings.items() for s in r.statuses}


def hosts_segment(readings: dict[str, HostReading]) -> Text:
    """The header's `hosts 3/4 up` (the unreachable ones named)."""
    down = [name for name, r in readings.items() if not r.reachable]
    out = Text(f"hosts {len(readings) - len(down) + 1}/{len(readings) + 1} up")
    if down:
        out.append(f" ({', '.join(down)} unreachable)", style="bold red")
    return out
