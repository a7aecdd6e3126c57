"""GPU readings (gpustat's NVML query) as frozen snapshots, each GPU process mapped to the
vllmtui server whose process tree holds it.

vLLM's GPU memory belongs to its `VLLM::EngineCore` / `VLLM::Worker_TP*` children, not to
the API server in the pane, so a process is matched against each server's whole tree
(`procs.tree_of`: descendants plus the pane's session and process group, which keeps
reparented children; a container's processes, which are not in it, through its engine:
`core.containers`). A process that holds GPU memory and belongs to no live server is
flagged; `VLLM::` orphans first, with the command that reaps them.

A reading never raises: no driver, no GPU, an NVML error all give a snapshot whose
`error` says so plainly. Call `read_gpus` from a worker thread about once a second.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from vllmtui.core import containers, procs
from vllmtui.core.tmux import SessionInfo

MiB = 1 << 20
REAP_HINT = "`vllmtui reap` (key R in the TUI) kills orphaned vLLM processes"


@dataclass(frozen=True)
class GpuProcess:
    """One process holding GPU memory."""

    pid: int
    gpu: int
    user: str
    command: str
    memory: int | None  # bytes; None when the driver does not say (WDDM, some containers)
    server: str | None = None  # the vllmtui server whose tree holds it
    orphan: bool = False  # a vLLM process whose server is gone (reapable)

    @property
    def is_vllm(self) -> bool:
        return procs.is_vllm_command(self.command)

    @property
    def owner(self) -> str:
        """Who it belongs to, in a word: the server, 'orphan', or 'other'."""
        if self.server:
            return self.server
        return "orphan" if self.orphan else "other"

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "gpu": self.gpu,
            "user": self.user,
            "command": self.command,
            "memory": self.memory,
            "server": self.server,
            "orphan": self.orphan,
        }


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one moment."""

    index: int
    name: str
    uuid: str = ""
    utilization: int | None = None  # percent
    memory_used: int | None = None  # bytes
    memory_total: int | None = None  # bytes
    temperature: int | None = None  # Celsius
    power_draw: int | None = None  # W
    power_limit: int | None = None  # W
    processes: tuple[GpuProcess, ...] = ()
    error: str | None = None  # this GPU could not be read (lost, unknown error)

    @property
    def memory_free(self) -> int | None:
        if self.memory_total is None or self.memory_used is None:
            return None
        return max(0, self.memory_total - self.memory_used)

    @property
    def memory_fraction(self) -> float | None:
        if not self.memory_total or self.memory_used is None:
            return None
        return self.memory_used / self.memory_total

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "utilization": self.utilization,
            "memory_used": self.memory_used,
            "memory_total": self.memory_total,
            "memory_free": self.memory_free,
            "temperature": self.temperature,
            "power_draw": self.power_draw,
            "power_limit": self.power_limit,
            "error": self.error,
            "processes": [p.to_json() for p in self.processes],
        }


@dataclass(frozen=True)
class ServerGpuUsage:
    """What one server holds: its GPUs and the GPU memory of its processes."""

    server: str
    gpus: tuple[int, ...]
    memory: int
    pids: tuple[int, ...]


@dataclass(frozen=True)
class GpuSnapshot:
    """Every GPU of this machine at one moment, or why there is no reading."""

    gpus: tuple[GpuReading, ...] = ()
    error: str | None = None
    driver: str | None = None
    hostname: str = field(default_factory=socket.gethostname)
    taken_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def processes(self) -> tuple[GpuProcess, ...]:
        return tuple(p for g in self.gpus for p in g.processes)

    @property
    def unowned(self) -> tuple[GpuProcess, ...]:
        """Processes holding GPU memory that belong to no live server: orphans first."""
        rest = [p for p in self.processes if not p.server]
        return tuple(sorted(rest, key=lambda p: (not p.orphan, not p.is_vllm, -(p.memory or 0))))

    def usage_by_server(self) -> dict[str, ServerGpuUsage]:
        """For the server table: each server's GPUs and memory."""
        found: dict[str, list[GpuProcess]] = {}
        for proc in self.processes:
            if proc.server:
                found.setdefault(proc.server, []).append(proc)
        return {
            name: ServerGpuUsage(
                name,
                tuple(sorted({p.gpu for p in plist})),
                sum(p.memory or 0 for p in plist),
                tuple(sorted({p.pid for p in plist})),
            )
            for name, plist in found.items()
        }

    def summary(self) -> str:
        """One line for a header: GPUs, memory, utilisation, orphans."""
        if self.error:
            return f"GPU: {self.error}"
        if not self.gpus:
            return "GPU: none found"
        used = sum(g.memory_used or 0 for g in self.gpus)
        total = sum(g.memory_total or 0 for g in self.gpus)
        utils = [g.utilization for g in self.gpus if g.utilization is not None]
        names = {g.name for g in self.gpus}
        kind = names.pop() if len(names) == 1 else "mixed"
        text = f"{len(self.gpus)}x {kind}  mem {used / (1 << 30):.1f}/{total / (1 << 30):.1f} GiB"
        if utils:
            text += f"  util {sum(utils) / len(utils):.0f}%"
        orphans = [p for p in self.processes if p.orphan]
        if orphans:
            text += f"  {len(orphans)} ORPHAN(S) holding GPU memory"
        return text

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GpuSnapshot:
        """A reading another host's vllmtui sent (`to_json`); what it lacks stays unknown.
        ValueError when it is not a reading at all."""
        try:
            gpus = tuple(
                GpuReading(
                    int(g["index"]), str(g.get("name") or "?"), str(g.get("uuid") or ""),
                    utilization=_int_or_none(g.get("utilization")),
                    memory_used=_int_or_none(g.get("memory_used")),
                    memory_total=_int_or_none(g.get("memory_total")),
                    temperature=_int_or_none(g.get("temperature")),
                    power_draw=_int_or_none(g.get("power_draw")),
                    power_limit=_int_or_none(g.get("power_limit")),
                    processes=tuple(
                        GpuProcess(int(p["pid"]), int(p.get("gpu", g["index"])), str(p.get("user") or ""),
                                   str(p.get("command") or ""), _int_or_none(p.get("memory")),
                                   p.get("server") or None, bool(p.get("orphan")))
                        for p in g.get("processes") or []),
                    error=g.get("error") or None,
                )
                for g in data.get("gpus") or []
            )
            return cls(gpus, data.get("error") or None, data.get("driver") or None,
                       str(data.get("hostname") or ""), float(data.get("taken_at") or time.time()))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a GPU reading: {type(exc).__name__}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "driver": self.driver,
            "hostname": self.hostname,
            "taken_at": self.taken_at,
            "summary": self.summary(),
            "gpus": [g.to_json() for g in self.gpus],
            "servers": {
                k: {"gpus": list(v.gpus), "memory": v.memory, "pids": list(v.pids)}
                for k, v in self.usage_by_server().items()
            },
            "unowned": [p.to_json() for p in self.unowned],
            "hint": REAP_HINT if any(p.orphan for p in self.processes) else None,
        }


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


# ---------------------------------------------------------------- reading


def explain_nvml_error(exc: BaseException) -> str:
    """Plain words for why there is no GPU reading."""
    name = type(exc).__name__
    if isinstance(exc, ImportError):
        return "gpustat is not installed (pip install gpustat): no GPU readings"
    if "LibraryNotFound" in name:
        return "no NVIDIA driver / no GPU (libnvidia-ml.so not found)"
    if "DriverNotLoaded" in name:
        return "no NVIDIA driver loaded / no GPU"
    if "NoPermission" in name:
        return "NVML error: no permission to read the GPUs"
    if "NotFound" in name or "NoDevice" in name:
        return "no NVIDIA GPU found"
    return f"NVML error: {exc or name}"


def query_nvml() -> tuple[list[dict[str, Any]], str | None]:
    """gpustat's raw query: one dict per GPU (its nvidia-smi-like keys) and the driver."""
    import gpustat

    collection = gpustat.new_query()
    gpus = []
    for gpu in collection.gpus:
        entry = dict(getattr(gpu, "entry", {}) or {})
        if not entry:  # gpustat's InvalidGPU
            entry = {
                "index": getattr(gpu, "index", -1),
                "name": "?",
                "error": str(getattr(gpu, "exception", "?")),
            }
        gpus.append(entry)
    return gpus, collection.driver_version


def build_snapshot(
    raw: Iterable[dict[str, Any]],
    trees: dict[str, set[int]],
    orphan_pids: set[int],
    processes: dict[int, procs.ProcInfo] | None = None,
    driver: str | None = None,
) -> GpuSnapshot:
    """A snapshot from raw gpustat entries: each process tagged with the server whose tree
    holds it, or as an orphan. The full command line comes from `processes` (vLLM sets its
    process titles there: `VLLM::EngineCore`)."""
    owner = {pid: name for name, pids in trees.items() for pid in pids}
    readings = []
    for entry in raw:
        plist = []
        for p in entry.get("processes") or []:
            pid = int(p["pid"])
            info = (processes or {}).get(pid)
            full = p.get("full_command")
            command = (
                info.command
                if info
                else (" ".join(full) if isinstance(full, list) else str(p.get("command", "?")))
            )
            command = " ".join(command.split())  # `python -c` scripts carry newlines
            mem = p.get("gpu_memory_usage")
            plist.append(
                GpuProcess(
                    pid=pid,
                    gpu=int(entry.get("index", -1)),
                    user=str(p.get("username") or (info.user if info else "?")),
                    command=command,
                    memory=int(mem) * MiB if mem is not None else None,
                    server=owner.get(pid),
                    orphan=pid in orphan_pids and pid not in owner,
                )
            )

        def mib(key: str, e: dict[str, Any] = entry) -> int | None:
            value = e.get(key)
            return int(value) * MiB if value is not None else None

        readings.append(
            GpuReading(
                index=int(entry.get("index", -1)),
                name=str(entry.get("name", "?")),
                uuid=str(entry.get("uuid", "")),
                utilization=entry.get("utilization.gpu"),
                memory_used=mib("memory.used"),
                memory_total=mib("memory.total"),
                temperature=entry.get("temperature.gpu"),
                power_draw=entry.get("power.draw"),
                power_limit=entry.get("enforced.power.limit"),
                processes=tuple(sorted(plist, key=lambda x: -(x.memory or 0))),
                error=entry.get("error"),
            )
        )
    return GpuSnapshot(gpus=tuple(sorted(readings, key=lambda g: g.index)), driver=driver)


class ServerSessions(Protocol):
    """What GPU processes are mapped to: the live server sessions, and the node sessions of
    multi-node servers (option `profile` names their server), which a `Fleet` has."""

    def gpu_sessions(self) -> list[SessionInfo]: ...


def server_trees(sessions: Iterable[SessionInfo], everything: list[procs.ProcInfo]) -> dict[str, set[int]]:
    """Each live server's process trees (its own session's and its nodes'), by profile name,
    from `Fleet.gpu_sessions()`."""
    trees: dict[str, set[int]] = {}
    for sess in sessions:
        pid = sess.pane_pid or int(sess.option("pid") or 0)
        if not pid:
            continue
        name = sess.option("profile") or sess.name.removeprefix("vllmtui-")
        trees.setdefault(name, set()).update(p.pid for p in procs.tree_of(pid, everything))
        trees[name] |= containers.session_pids(sess, everything)  # not in the pane's tree
    return trees


def read_gpus(
    fleet: ServerSessions | None = None,
    query: Callable[[], tuple[list[dict[str, Any]], str | None]] | None = None,
) -> GpuSnapshot:
    """Read every GPU now; map processes to `fleet`'s servers (a `Fleet`, optional).
    Never raises: a failed reading is a snapshot with `error` set. `query` replaces the
    NVML query (gpustat's entries) where there is no GPU to read."""
    try:
        raw, driver = (query or query_nvml)()
    except Exception as exc:  # noqa: BLE001 - any failure becomes a reading that says so
        return GpuSnapshot(error=explain_nvml_error(exc))
    try:
        everything = procs.all_processes()
        by_pid = {p.pid: p for p in everything}
        trees: dict[str, set[int]] = {}
        if fleet is not None:
            trees = server_trees(fleet.gpu_sessions(), everything)
        owned = set().union(*trees.values()) if trees else set()
        orphan_pids = {p.pid for p in procs.orphans(owned, everything)}
        return build_snapshot(raw, trees, orphan_pids, by_pid, driver)
    except Exception as exc:  # noqa: BLE001 - tmux or /proc trouble must not lose the reading
        snap = build_snapshot(raw, {}, set(), None, driver)
        return replace(snap, error=None, driver=f"{driver} (processes not mapped: {exc})")


# ---------------------------------------------------------------- history


@dataclass(frozen=True)
class GpuHistory:
    """The last `keep` seconds of utilisation and memory per GPU, for sparklines.
    Immutable: `add` returns a new history."""

    keep: float = 300.0
    points: dict[int, tuple[tuple[float, float, float], ...]] = field(default_factory=dict)

    def add(self, snapshot: GpuSnapshot) -> GpuHistory:
        """(time, utilisation %, memory %) per GPU appended; older points dropped."""
        if not snapshot.ok:
            return self
        cutoff = snapshot.taken_at - self.keep
        points = {}
        for gpu in snapshot.gpus:
            old = tuple(p for p in self.points.get(gpu.index, ()) if p[0] >= cutoff)
            frac = gpu.memory_fraction
            point = (
                snapshot.taken_at,
                float(gpu.utilization or 0),
                100.0 * frac if frac is not None else 0.0,
            )
            points[gpu.index] = (*old, point)
        return replace(self, points=points)

    def utilization(self, index: int) -> list[float]:
        return [p[1] for p in self.points.get(index, ())]

    def memory(self, index: int) -> list[float]:
        return [p[2] for p in self.points.get(index, ())]
