"""The GPU panel: every GPU with sparklines of the last minutes, its processes and the server
each belongs to; orphans flagged with the key that reaps them. It reads the GPUs in its own
worker (more often while it is shown) and posts each reading up as `GpuPanel.SnapshotTaken`
(the header's summary and the table's GPU cells come from it).

`gpu_cells(snapshot, name)` gives a server table's GPUS / GPU MEM cells.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core import humanize
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import GpuHistory, GpuProcess, GpuReading, GpuSnapshot, read_gpus
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.work import worker

REAP_KEY = "R"
GiB = 1 << 30


def sparkline(values: list[float], width: int = 30, top: float = 100.0) -> str:
    """The last `width` values (0..top) as block characters; padded on the left."""
    return humanize.sparkline(values, width, top, pad=True)


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GiB:.2f}"


def _level(fraction: float | None) -> str:
    if fraction is None:
        return "dim"
    return "red" if fraction >= 0.9 else "yellow" if fraction >= 0.7 else "green"


def _process_line(out: Text, proc: GpuProcess) -> None:
    out.append(f"    pid {proc.pid:<8} {_gib(proc.memory):>7} GiB  ")
    if proc.server:
        out.append(f"{'server ' + proc.server:<26}", style="bold cyan")
    elif proc.orphan:
        out.append(f"{f'ORPHAN ({REAP_KEY} reaps)':<26}", style="bold red")
    else:
        out.append(f"{'other (' + proc.user + ')':<26}", style="yellow")
    out.append(proc.command[:80] + "\n", style="dim" if not proc.is_vllm else "")


def _gpu_block(out: Text, gpu: GpuReading, history: GpuHistory | None, width: int) -> None:
    out.append(f"GPU {gpu.index}  ", style="bold")
    out.append(f"{gpu.name}\n")
    if gpu.error:
        out.append(f"    cannot read: {gpu.error}\n", style="red")
        return
    util = gpu.utilization
    frac = gpu.memory_fraction
    out.append("    util ")
    out.append(f"{'?' if util is None else util:>3}%  ", style=_level(None if util is None else util / 100))
    if history is not None:
        out.append(sparkline(history.utilization(gpu.index), width), style="cyan")
    out.append("\n    mem  ")
    pct = "?" if frac is None else f"{frac * 100:.0f}"
    out.append(f"{pct:>3}%  ", style=_level(frac))
    if history is not None:
        out.append(sparkline(history.memory(gpu.index), width), style="magenta")
    out.append(f"  {_gib(gpu.memory_used)} / {_gib(gpu.memory_total)} GiB")
    extras = []
    if gpu.temperature is not None:
        extras.append(f"{gpu.temperature}C")
    if gpu.power_draw is not None:
        extras.append(f"{gpu.power_draw}/{gpu.power_limit or '?'} W")
    out.append(("  " + "  ".join(extras) if extras else "") + "\n")
    if not gpu.processes:
        out.append("    no processes\n", style="dim")
    for proc in sorted(gpu.processes, key=lambda p: (p.server is not None, not p.orphan, -(p.memory or 0))):
        _process_line(out, proc)


def gpu_panel_text(snapshot: GpuSnapshot | None, history: GpuHistory | None = None, width: int = 30) -> Text:
    """Everything the GPU panel says, as one Rich Text (pure)."""
    out = Text()
    if snapshot is None:
        out.append("reading the GPUs...\n", style="dim")
        return out
    if not snapshot.ok:
        out.append("No GPU readings: ", style="bold yellow")
        out.append(f"{snapshot.error}.\n")
        out.append("Everything else keeps working; plans use --gpu-memory / --gpu targets.\n", style="dim")
        return out
    out.append(snapshot.summary() + "\n", style="bold")
    if snapshot.driver:
        out.append(f"driver {snapshot.driver}\n", style="dim")
    orphans = [p for p in snapshot.processes if p.orphan]
    if orphans:
        out.append(
            f"{len(orphans)} orphaned vLLM process(es) hold GPU memory: press {REAP_KEY} to reap them\n",
            style="bold red",
        )
    for gpu in snapshot.gpus:
        out.append("\n")
        _gpu_block(out, gpu, history, width)
    return out


def hosts_gpu_text(local: Text, hostname: str, hosts: dict[str, dict[str, Any] | None]) -> Text:
    """This machine's GPUs, then every other host's, each under its name (pure)."""
    out = Text()
    out.append(f"local ({hostname})\n", style="bold reverse")
    out.append_text(local)
    for host, data in hosts.items():
        out.append(f"\n{host}\n", style="bold reverse")
        if data is None:
            out.append("no GPU reading from this host (see its row in the table)\n", style="dim")
            continue
        try:
            snapshot = GpuSnapshot.from_json(data)
        except ValueError as exc:
            out.append(f"its GPU reading is not understood here: {exc}\n", style="yellow")
            continue
        out.append_text(gpu_panel_text(snapshot))
    return out


def gpu_cells(snapshot: GpuSnapshot | None, server: str) -> tuple[str, str]:
    """(GPUS, GPU MEM) cells of a server table row: '0,1' and '38.2 GiB', or '-'."""
    if snapshot is None or not snapshot.ok:
        return "-", "-"
    usage = snapshot.usage_by_server().get(server)
    if usage is None:
        return "-", "-"
    return ",".join(str(g) for g in usage.gpus), f"{usage.memory / GiB:.1f} GiB"


class GpuPanel(VerticalScroll):
    """Shows the latest GPU reading; with a fleet, takes the readings itself."""

    DEFAULT_CSS = "GpuPanel { height: 1fr; } GpuPanel > Static { width: 1fr; }"

    @dataclass
    class SnapshotTaken(Message):
        """The GPUs were read (the reading may say why there is none)."""

        snapshot: GpuSnapshot
        history: GpuHistory | None = None

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, GpuPanel.SnapshotTaken)

    shown: var[bool] = var(False, init=False)
    host_gpus: var[dict[str, dict[str, Any] | None]] = var(dict, init=False)
    """Every other host's GPU reading (`GpuSnapshot.to_json()`; None: not read), by host."""

    def __init__(
        self, fleet: Fleet | None = None, settings: Settings | None = None, *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.fleet = fleet
        self.settings = settings or Settings()
        self.snapshot: GpuSnapshot | None = None
        self.history: GpuHistory | None = None
        self._poke = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static(gpu_panel_text(None), id="gpu-panel-body")

    def on_mount(self) -> None:
        if self.fleet is not None:
            self.poll_gpus(self.fleet)

    def on_unmount(self) -> None:
        self._poke.set()

    def watch_shown(self, shown: bool) -> None:
        if shown:
            self._poke.set()  # a fresh reading now
            self._refresh_view()

    @worker("reading the GPUs", group="gpu", exclusive=True)
    def poll_gpus(self, fleet: Fleet) -> None:
        this = get_current_worker()
        history = GpuHistory()
        while not this.is_cancelled:
            snapshot = read_gpus(fleet)
            history = history.add(snapshot)
            self.post_message(self.SnapshotTaken(snapshot, history))
            self._poke.wait(self.settings.gpu_poll if self.shown else self.settings.gpu_poll_hidden)
            self._poke.clear()

    def on_gpu_panel_snapshot_taken(self, message: GpuPanel.SnapshotTaken) -> None:
        # not stopped: the screen's header and table use the reading too
        self.snapshot, self.history = message.snapshot, message.history
        self._refresh_view()

    def watch_host_gpus(self) -> None:
        self._refresh_view()

    def _refresh_view(self) -> None:
        if self.shown and self.snapshot is not None:  # hidden: catch up when shown
            self.show(self.snapshot, self.history)

    def show(self, snapshot: GpuSnapshot, history: GpuHistory | None = None) -> None:
        """Render a reading."""
        self.snapshot = snapshot
        self.history = history
        text = gpu_panel_text(snapshot, history)
        if self.host_gpus:
            text = hosts_gpu_text(text, snapshot.hostname, self.host_gpus)
        update_body(self, "gpu-panel-body", text)
