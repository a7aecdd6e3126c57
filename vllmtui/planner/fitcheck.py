"""The machine a plan is for, and the fit check that runs before every start.

A target is the live GPUs (read through `gpu.read_gpus`), or what the user names:
`--gpu-memory 80GiB` or a GPU model (`H100-80GB`), with `--gpus N`, so a plan can be made
on a laptop for the box it will run on. Before a start the plan is made once for the GPUs as
they are (`plan_for_start`) and judged once (`judge`).
"""

from __future__ import annotations

import re

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import GpuSnapshot, ServerSessions, read_gpus
from vllmtui.planner.inputs import GpuTarget, plan_settings
from vllmtui.planner.memory import Plan, plan_profile
from vllmtui.planner.sizing import GiB, gib
from vllmtui.profiles.model import LoadedProfile

MiB = 1 << 20
# Total memory NVML reports for common data-centre and workstation GPUs (MiB).
GPU_MODELS: dict[str, int] = {
    "T4": 15360,
    "L4": 23034,
    "A10": 23028,
    "A10G": 23028,
    "L40": 46068,
    "L40S": 46068,
    "A40": 46068,
    "A6000": 49140,
    "RTX-4090": 24564,
    "RTX-3090": 24576,
    "RTX-6000-ADA": 49140,
    "V100-16GB": 16384,
    "V100-32GB": 32768,
    "A100-40GB": 40960,
    "A100-80GB": 81920,
    "H100-80GB": 81559,
    "H100-94GB": 95830,
    "H100-NVL": 95830,
    "H800": 81559,
    "GH200": 97871,
    "H200": 143771,
    "H200-141GB": 143771,
    "H20": 97871,
    "B200": 183359,
    "MI300X": 196592,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(GiB|GB|G|MiB|MB|M|TiB|TB|T)?\s*$", re.IGNORECASE)


def parse_memory(text: str) -> int:
    """`80GiB`, `80GB` (read as GiB, as GPU makers mean it), `81559MiB` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"--gpu-memory {text!r}: write a size such as 80GiB, 24GB or 81559MiB")
    number, unit = float(match.group(1)), (match.group(2) or "GiB").upper()
    scale = {
        "G": GiB,
        "GB": GiB,
        "GIB": GiB,
        "M": MiB,
        "MB": MiB,
        "MIB": MiB,
        "T": GiB << 10,
        "TB": GiB << 10,
        "TIB": GiB << 10,
    }[unit]
    return int(number * scale)


def gpu_model_memory(name: str) -> int:
    """A GPU model's memory in bytes; UsageError listing the known names."""
    key = name.strip().upper().replace(" ", "-").replace("_", "-").removeprefix("NVIDIA-")
    for known, mib in GPU_MODELS.items():
        if key == known or key == known.replace("-", ""):
            return mib * MiB
    raise UsageError(
        f"--gpu {name!r}: unknown GPU model; known: {', '.join(GPU_MODELS)}."
        " Or give the size: --gpu-memory 80GiB"
    )


def live_target(snapshot: GpuSnapshot, gpus: tuple[int, ...] | None = None) -> GpuTarget:
    """The live GPUs as a target (the ones `gpus` lists, or all); none: no memory."""
    if not snapshot.ok or not snapshot.gpus:
        return GpuTarget(None, 0, snapshot.error or "no GPU", "none")
    chosen = [g for g in snapshot.gpus if gpus is None or g.index in gpus] or list(snapshot.gpus)
    smallest = min((g.memory_total or 0) for g in chosen)
    names = sorted({g.name for g in chosen})
    return GpuTarget(
        smallest,
        len(snapshot.gpus),
        ", ".join(names),
        "live",
        tuple(g.memory_free or 0 for g in snapshot.gpus),
    )


def make_target(
    gpu_memory: str | None = None,
    gpu_model: str | None = None,
    gpu_count: int | None = None,
    snapshot: GpuSnapshot | None = None,
    gpus: tuple[int, ...] | None = None,
) -> GpuTarget:
    """The target from CLI options; else the live GPUs (read now unless given)."""
    if gpu_memory and gpu_model:
        raise UsageError("give either --gpu-memory or --gpu, not both")
    if gpu_memory:
        return GpuTarget(parse_memory(gpu_memory), gpu_count or 0, gpu_memory, "given")
    if gpu_model:
        return GpuTarget(gpu_model_memory(gpu_model), gpu_count or 0, gpu_model, "given")
    target = live_target(snapshot if snapshot is not None else read_gpus(), gpus)
    if gpu_count:
        target = GpuTarget(target.gpu_memory, gpu_count, target.name, target.source, target.free)
    return target


def used_gpus(plan: Plan) -> list[int]:
    """The GPU indices a profile will use: its `gpus`, else the first TP x PP."""
    if plan.inputs.gpus:
        return list(plan.inputs.gpus)
    return list(range(plan.inputs.tensor_parallel * plan.inputs.pipeline_parallel))


def live_warnings(plan: Plan, snapshot: GpuSnapshot, own_server: str | None = None) -> list[str]:
    """Compare the live GPUs with what the profile asks for. vLLM refuses to start when a
    GPU's free memory is below gpu_memory_utilization x its total; name who holds it.
    `own_server`: the profile's own running server, whose memory counts as free (the GPU run
    showed `plan` of a running server blaming the server itself)."""
    out: list[str] = []
    if plan.inputs.device == "cpu" or not snapshot.ok:
        return out
    by_index = {g.index: g for g in snapshot.gpus}
    need_count = plan.inputs.tensor_parallel * plan.inputs.pipeline_parallel
    if len(snapshot.gpus) < need_count:
        out.append(
            f"needs {need_count} GPUs (tensor x pipeline parallel) but this machine has {len(snapshot.gpus)}"
        )
    for index in used_gpus(plan):
        gpu = by_index.get(index)
        if gpu is None:
            out.append(f"GPU {index} does not exist here (GPUs: {', '.join(str(i) for i in by_index)})")
            continue
        if gpu.memory_total is None or gpu.memory_free is None:
            continue
        wanted = int(gpu.memory_total * plan.inputs.gpu_memory_utilization)
        own = sum(p.memory or 0 for p in gpu.processes if own_server and p.server == own_server)
        if gpu.memory_free + own >= wanted:
            continue
        holders = sorted(
            (p for p in gpu.processes if not (own_server and p.server == own_server)),
            key=lambda p: -(p.memory or 0),
        )
        named = (
            "; ".join(
                f"pid {p.pid} {p.command.split(' ')[0]} ({gib(p.memory)}"
                + (f", server {p.server}" if p.server else ", ORPHAN: `vllmtui reap`" if p.orphan else "")
                + ")"
                for p in holders[:3]
            )
            or "no process is listed (another container or user?)"
        )
        out.append(
            f"GPU {index} has {gib(gpu.memory_free)} free but gpu_memory_utilization"
            f" {plan.inputs.gpu_memory_utilization:g} asks for {gib(wanted)}: held by {named}"
        )
    return out


def plan_for_start(
    loaded: LoadedProfile,
    settings: Settings,
    snapshot: GpuSnapshot | None = None,
    fleet: ServerSessions | None = None,
) -> tuple[Plan, GpuSnapshot]:
    """The memory plan a start is checked against, made once: for the GPUs the profile uses as
    they are now (read now unless `snapshot` is given; none for a CPU profile), with the
    reading it was made for. `fleet` lets the reading name the server that holds a GPU.
    VllmtuiError when the model's config is not on disk."""
    if snapshot is None:
        cpu = plan_settings(loaded.profile).device == "cpu"
        snapshot = GpuSnapshot(error="cpu") if cpu else read_gpus(fleet)
    target = live_target(snapshot, tuple(loaded.profile.gpus) if loaded.profile.gpus else None)
    return plan_profile(loaded.profile, settings, target), snapshot


def judge(plan: Plan, snapshot: GpuSnapshot) -> list[str]:
    """Warnings before a start from a plan already made for the live GPUs (`plan_for_start`):
    the plan's problems, what would make it fit, and the GPUs' free memory."""
    out = [f"memory: {p}" for p in plan.problems]
    if plan.fits is False and plan.suggestions:
        fixes = [s.change for s in plan.suggestions if s.fits]
        if fixes:
            out.append(
                "memory: would fit with " + " or ".join(fixes) + " (`vllmtui plan "
                f"{plan.profile}` shows the numbers)"
            )
    out += [f"gpu: {w}" for w in live_warnings(plan, snapshot)]
    return out
