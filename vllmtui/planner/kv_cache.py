"""One GPU's KV cache: vLLM's scheduler limits, the budget that gpu_memory_utilization leaves
after the weights and the overhead, and what that budget holds (the two figures vLLM logs at
start: `KV cache size: N tokens`, `Maximum concurrency for L tokens per request: Cx`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vllmtui.models.config import ModelFiles
from vllmtui.planner.inputs import GpuTarget, Settings4Plan
from vllmtui.planner.shapes import ModelShape, ParamCount
from vllmtui.planner.sizing import GiB, KvLayout, cuda_reserved, gib, gpu_overhead, weight_bytes


def weights_per_gpu(
    files: ModelFiles, shape: ModelShape, params: ParamCount, dtype: str, s: Settings4Plan
) -> tuple[int, bool]:
    """(weight bytes on one GPU, exact): the checkpoint's size when known (and not re-quantized),
    else from the architecture; split over TP x PP, less what is offloaded to the CPU."""
    if files.checkpoint_bytes and not s.quantization:
        total, exact = files.checkpoint_bytes, True
    else:
        total, exact = weight_bytes(shape, params, dtype, s.quantization), False
    per_gpu = total // (s.tensor_parallel * s.pipeline_parallel) - int(s.cpu_offload_gb * GiB)
    return max(0, per_gpu), exact


@dataclass(frozen=True)
class Limits:
    """vLLM's scheduler limits: given, or its defaults for this device."""

    block: int  # block_size
    batched: int  # max_num_batched_tokens
    seqs: int  # max_num_seqs
    max_len: int  # max_model_len


def scheduler_limits(shape: ModelShape, s: Settings4Plan, target: GpuTarget) -> Limits:
    """The limits a server runs with: the profile's, else vLLM's defaults for the device."""
    cpu = s.device == "cpu"
    big_gpu = (target.gpu_memory or 0) >= 70 * GiB
    tp = s.tensor_parallel
    return Limits(
        block=s.block_size or (128 if cpu and not shape.mla else 16),
        batched=s.max_num_batched_tokens or (2048 * tp if cpu else (8192 if big_gpu else 2048)),
        seqs=s.max_num_seqs or (128 * tp if cpu else (1024 if big_gpu else 256)),
        max_len=s.max_model_len or shape.max_position or 4096,
    )


@dataclass(frozen=True)
class Budget:
    """One GPU's KV cache budget, and what it is made of."""

    weights: int  # weight bytes on the GPU
    overhead: int | None = None  # the estimated overhead (GPU, budget not fixed)
    kv: int | None = None  # None: no budget to judge against
    exact: bool = False  # fixed by the profile: vLLM uses exactly this
    notes: tuple[str, ...] = ()


def kv_budget(
    shape: ModelShape, s: Settings4Plan, target: GpuTarget, weights: int, limits: Limits, dtype_bytes: int
) -> Budget:
    """The KV budget: fixed by the profile, else what gpu_memory_utilization leaves on the
    target after the weights and the overhead; none for a CPU sized from free RAM."""
    if s.kv_cache_memory_bytes is not None:
        return Budget(weights, kv=s.kv_cache_memory_bytes, exact=True)
    if s.device != "cpu" and target.gpu_memory:
        overhead = gpu_overhead(
            shape, s.tensor_parallel, s.pipeline_parallel, limits.batched, limits.seqs, dtype_bytes,
            eager=s.enforce_eager,
        )
        usable = target.gpu_memory - cuda_reserved(target.gpu_memory)
        return Budget(weights, overhead, int(usable * s.gpu_memory_utilization) - weights - overhead)
    if s.device == "cpu":
        note = (
            "CPU without VLLM_CPU_KVCACHE_SPACE: vLLM sizes the KV cache from free RAM;"
            " set env VLLM_CPU_KVCACHE_SPACE (GiB) for a fixed budget"
        )
    else:
        note = "no GPU to plan for: give the target with --gpu-memory 80GiB or --gpu H100-80GB"
    return Budget(weights, notes=(note,))


@dataclass(frozen=True)
class KvFit:
    """What the budget holds: blocks, tokens, requests at max_model_len, the longest request."""

    budget: int | None = None  # the budget, 0 when the weights leave none
    num_blocks: int | None = None
    tokens: int | None = None
    concurrency: float | None = None
    max_len_that_fits: int | None = None
    fits: bool | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def kv_fit(
    budget: Budget, layout: KvLayout, limits: Limits, shape: ModelShape, s: Settings4Plan, target: GpuTarget
) -> KvFit:
    """vLLM's two start figures (KV cache tokens, maximum concurrency) from the budget, and
    whether one request of max_model_len fits (vLLM refuses to start when not)."""
    if budget.kv is None or not layout.bytes_per_block:
        return KvFit(budget=budget.kv)
    if budget.kv <= 0:
        return _kv_numbers(0, layout, limits, shape, False, (_no_room(budget, s, target),))
    fit = _kv_numbers(budget.kv, layout, limits, shape, None, ())
    per_req = layout.blocks_per_request(limits.max_len)
    if not fit.fits:
        problem = (
            f"one request of max_model_len {limits.max_len:,} needs {gib(per_req * layout.bytes_per_block)}"
            f" of KV cache but {gib(budget.kv)} is left: vLLM will refuse to start"
            f" (the longest that fits is {fit.max_len_that_fits:,} tokens)"
        )
        return replace(fit, problems=(problem,))
    if fit.concurrency is not None and fit.concurrency < min(limits.seqs, 4):
        note = f"only {fit.concurrency:.2f} requests of {limits.max_len:,} tokens fit at once"
        return replace(fit, notes=(note,))
    return fit


def _kv_numbers(
    kv: int, layout: KvLayout, limits: Limits, shape: ModelShape, fits: bool | None, problems: tuple[str, ...]
) -> KvFit:
    num_blocks = kv // layout.bytes_per_block
    per_req = layout.blocks_per_request(limits.max_len)
    concurrency = num_blocks / per_req
    return KvFit(
        budget=kv,
        num_blocks=num_blocks,
        tokens=int(concurrency * limits.max_len),
        concurrency=concurrency,
        max_len_that_fits=layout.longest_request(
            num_blocks, max(limits.max_len, shape.max_position or limits.max_len)
        ),
        fits=per_req <= num_blocks if fits is None else fits,
        problems=problems,
    )


def _no_room(budget: Budget, s: Settings4Plan, target: GpuTarget) -> str:
    overhead = budget.overhead or 0
    return (
        f"the weights ({gib(budget.weights)} per GPU) and overhead ({gib(overhead)}) leave no room"
        f" for the KV cache in {gib(int((target.gpu_memory or 0) * s.gpu_memory_utilization))}"
        f" ({s.gpu_memory_utilization:g} of {gib(target.gpu_memory or 0)}); needs"
        f" {gib(budget.weights + overhead)}+"
    )
