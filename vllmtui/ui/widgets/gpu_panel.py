"""The GPU panel: every GPU with sparklines of the last minutes, its processes and the server
each belongs to; orphans flagged with the key that reaps them. Renders snapshots only.

Wiring (the app does the I/O, in a worker, about once a second):

    from vllmtui.gpu import GpuHistory, read_gpus
    from vllmtui.ui.widgets.gpu_panel import GpuPanel, GpuSnapshotTaken

    @work(thread=True, exclusive=True, group="gpu")
    def poll_gpus(self) -> None:
        history = GpuHistory()                      # keeps 300 s
        while not get_current_worker().is_cancelled:
            snapshot = read_gpus(self.fleet)        # never raises
            history = history.add(snapshot)
            self.post_message(GpuSnapshotTaken(snapshot, history))
            time.sleep(self.settings.poll_interval)

    def on_gpu_snapshot_taken(self, message: GpuSnapshotTaken) -> None:
        self.query_one(GpuPanel).show(message.snapshot, message.history)
        # header: message.snapshot.summary(); server table: message.snapshot.usage_by_server()

`gpu_cells(snapshot, name)` gives a server table's GPUS / GPU MEM cells.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from vllmtui.planner.gpu import GpuHistory, GpuProcess, GpuReading, GpuSnapshot

BARS = "▁▂▃▄▅▆▇█"
REAP_KEY = "R"
GiB = 1 << 30


class GpuSnapshotTaken(Message):
    """A worker read the GPUs (the reading may say why there is none)."""

    def __init__(self, snapshot: GpuSnapshot, history: GpuHistory | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.history = history


def sparkline(values: list[float], width: int = 30, top: float = 100.0) -> str:
    """The last `width` values (0..top) as block characters; padded on the left."""
    tail = values[-width:]
    chars = [BARS[min(len(BARS) - 1, max(0, int(v / top * (len(BARS) - 1) + 0.5)))] for v in tail]
    return " " * (width - len(chars)) + "".join(chars)


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


def gpu_cells(snapshot: GpuSnapshot | None, server: str) -> tuple[str, str]:
    """(GPUS, GPU MEM) cells of a server table row: '0,1' and '38.2 GiB', or '-'."""
    if snapshot is None or not snapshot.ok:
        return "-", "-"
    usage = snapshot.usage_by_server().get(server)
    if usage is None:
        return "-", "-"
    return ",".join(str(g) for g in usage.gpus), f"{usage.memory / GiB:.1f} GiB"


class GpuPanel(VerticalScroll):
    """Shows the latest GPU snapshot; `show` is the only way in (no I/O here)."""

    DEFAULT_CSS = "GpuPanel { height: 1fr; } GpuPanel > Static { width: 1fr; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.snapshot: GpuSnapshot | None = None
        self.history: GpuHistory | None = None

    def compose(self) -> ComposeResult:
        yield Static(gpu_panel_text(None), id="gpu-panel-body")

    def show(self, snapshot: GpuSnapshot, history: GpuHistory | None = None) -> None:
        """Render a new reading (call from the app's message handler)."""
        self.snapshot = snapshot
        self.history = history
        self.query_one("#gpu-panel-body", Static).update(gpu_panel_text(snapshot, history))
