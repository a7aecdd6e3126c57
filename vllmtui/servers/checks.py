"""Everything checked before a server starts, in one place: `vllmtui check` prints exactly
what `vllmtui start` (and the TUI's start) would refuse or warn about.

The profile's own checks (`profiles.launch.preflight`: runtime, model, key, host, port, the
flags its vLLM accepts), the model files an offline start needs (`models.offline`: said at
once, not after vLLM's imports), then the GPUs it names (present on a box with GPUs), then
the memory plan for the GPUs as they are now (`planner.fitcheck`).
"""

from __future__ import annotations

from collections.abc import Callable

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.models.offline import offline_problems
from vllmtui.planner import fitcheck
from vllmtui.planner.gpu import GpuSnapshot, ServerSessions, read_gpus
from vllmtui.planner.inputs import plan_settings
from vllmtui.profiles.launch import Problem, preflight
from vllmtui.profiles.model import LoadedProfile


def start_problems(
    loaded: LoadedProfile,
    settings: Settings,
    others: list[LoadedProfile] | None = None,
    sessions: ServerSessions | None = None,
    check_port: bool = True,
    say: Callable[[str], None] | None = None,
    snapshot: GpuSnapshot | None = None,
) -> list[Problem]:
    """Errors (a start refuses) and warnings (it goes on) for starting `loaded` now; changes
    nothing. `sessions` (a Fleet) lets the GPU reading name the servers that hold memory;
    `snapshot` replaces reading the GPUs (tests, or a reading just taken)."""
    problems = preflight(loaded, settings, others, check_port=check_port, say=say)
    problems += offline_problems(loaded, settings)
    if snapshot is None:
        try:
            snapshot = gpu_snapshot(loaded, sessions)
        except UsageError as exc:
            field, _, message = str(exc).partition(": ")
            return [*problems, Problem("error", field, message, loaded.where(tuple(field.split("."))))]
    missing = missing_gpus(loaded, snapshot)
    if missing:
        return [*problems, missing]
    return problems + [Problem("warning", w.partition(": ")[0], w.partition(": ")[2])
                       for w in fit_warnings(loaded, settings, snapshot)]


def gpu_snapshot(loaded: LoadedProfile, sessions: ServerSessions | None = None) -> GpuSnapshot:
    """The GPUs as they are now (none read for a CPU profile); UsageError when the profile's
    plan settings are wrong (e.g. VLLM_CPU_KVCACHE_SPACE not a number)."""
    if plan_settings(loaded.profile).device == "cpu":
        return GpuSnapshot(error="cpu")
    return read_gpus(sessions)


def missing_gpus(loaded: LoadedProfile, snapshot: GpuSnapshot) -> Problem | None:
    """`gpus:` naming a GPU this machine does not have (checked only where GPUs were read)."""
    wanted = loaded.profile.gpus
    if not wanted or not snapshot.ok or not snapshot.gpus:
        return None
    present = sorted(g.index for g in snapshot.gpus)
    absent = [g for g in wanted if g not in present]
    if not absent:
        return None
    listed = ", ".join(str(i) for i in present)
    return Problem(
        "error", "gpus",
        f"GPU {absent[0]} does not exist here: this machine has GPU{'s' if len(present) > 1 else ''}"
        f" {listed} (`vllmtui gpu` lists them)",
        loaded.where(("gpus",)),
    )


def fit_warnings(loaded: LoadedProfile, settings: Settings, snapshot: GpuSnapshot) -> list[str]:
    """The memory plan's warnings (`memory: ...`, `gpu: ...`) for starting `loaded` on the GPUs
    of `snapshot`. Never raises: a fit check never stops a start, and a model whose config is
    not on disk is skipped quietly (vLLM will fetch it)."""
    try:
        plan, snapshot = fitcheck.plan_for_start(loaded, settings, snapshot=snapshot)
    except VllmtuiError:
        return []
    except Exception as exc:  # noqa: BLE001 - a fit check must never stop a start
        return [f"memory: plan failed ({type(exc).__name__}: {exc}); starting anyway"]
    return fitcheck.judge(plan, snapshot)
