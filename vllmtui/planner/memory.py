"""Memory planner: does a profile fit, and what to change when it does not.

From a model's config.json and a profile's settings, per GPU: the weights, the KV cache
bytes per token, the KV budget, the tokens that fit and the maximum concurrency at
max_model_len, computed the way vLLM computes the two figures it logs at start
(`KV cache size: N tokens`, `Maximum concurrency for L tokens per request: Cx`):

    num_blocks   = kv_budget // (block_size x KV bytes per token of one layer group)
    blocks/req   = sum over layer groups of the blocks one request at max_model_len needs
    concurrency  = num_blocks / blocks/req
    tokens       = int(concurrency x max_model_len)

The budget is exact when the profile fixes it (`VLLM_CPU_KVCACHE_SPACE` on CPU,
`--kv-cache-memory-bytes`), so the figures then equal vLLM's exactly; on a GPU vLLM
measures the activation peak by running the model, so the overhead here is an estimate
and the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models.config import ModelFiles, find_model_files
from vllmtui.planner.shapes import ModelShape, ParamCount, count_params, shape_from_config
from vllmtui.profiles.model import Profile

GiB = 1 << 30
DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2}
FP8_KV = ("fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "int8")
# bits per weight of quantized linear layers, when the config does not say
QUANT_BITS = {
    "fp8": 8.0,
    "fbgemm_fp8": 8.0,
    "modelopt": 8.0,
    "ptpc_fp8": 8.0,
    "experts_int8": 8.0,
    "awq": 4.0,
    "awq_marlin": 4.0,
    "gptq": 4.0,
    "gptq_marlin": 4.0,
    "bitsandbytes": 4.0,
    "gguf": 4.5,
    "mxfp4": 4.25,
    "modelopt_fp4": 4.5,
    "compressed-tensors": 8.0,
}
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


def _arg(profile: Profile, *names: str) -> Any:
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
    kv_bytes = _arg(profile, "kv-cache-memory-bytes")
    if cpu and profile.env.get("VLLM_CPU_KVCACHE_SPACE", "").strip():
        try:
            kv_bytes = int(profile.env["VLLM_CPU_KVCACHE_SPACE"]) * GiB
        except ValueError:
            raise UsageError("env.VLLM_CPU_KVCACHE_SPACE: must be a whole number of GiB") from None
    block = _arg(profile, "block-size")
    offload = _arg(profile, "cpu-offload-gb")
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
class Target:
    """The machine a plan is for: GPU memory of one GPU and how many; or the CPU."""

    gpu_memory: int | None  # bytes of one GPU (total)
    gpu_count: int = 0  # 0: not said (a given target has as many as the profile needs)
    name: str = ""
    source: str = "given"  # given | live | none
    free: tuple[int, ...] = ()  # live: free bytes per GPU index


@dataclass(frozen=True)
class Suggestion:
    change: str  # what to change, in profile terms
    result: str  # what it gives, with numbers
    fits: bool


@dataclass(frozen=True)
class Plan:
    """A memory plan for one profile (per GPU figures; a snapshot, renderable anywhere)."""

    profile: str
    model: str
    config_source: str
    shape: ModelShape
    params: ParamCount
    inputs: Settings4Plan
    target: Target
    model_dtype: str
    kv_dtype: str
    weights_bytes: int  # per GPU
    weights_exact: bool  # from the checkpoint's index.json
    kv_bytes_per_token: int  # per GPU, all layers
    block_size: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    overhead_bytes: int | None  # activations + non-torch + CUDA graphs (GPU estimate)
    budget_bytes: int | None  # KV cache budget per GPU
    budget_exact: bool
    num_blocks: int | None
    tokens: int | None
    concurrency: float | None
    max_len_that_fits: int | None
    fits: bool | None  # None: no target to judge against
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    layer_groups: tuple[tuple[str, int, int], ...] = field(default=())  # (kind, groups, blocks/req)

    @property
    def exact(self) -> bool:
        """True when tokens/concurrency are computed exactly as vLLM does."""
        return self.budget_exact and not self.shape.sliding_layers and not self.shape.state_layers

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "model": self.model,
            "config": self.config_source,
            "architecture": self.shape.architecture,
            "attention": self.shape.kind,
            "params": self.params.total,
            "active_params": self.params.active,
            "device": self.inputs.device,
            "target": {
                "gpu_memory": self.target.gpu_memory,
                "gpus": self.target.gpu_count,
                "name": self.target.name,
                "source": self.target.source,
            },
            "tensor_parallel": self.inputs.tensor_parallel,
            "pipeline_parallel": self.inputs.pipeline_parallel,
            "dtype": self.model_dtype,
            "kv_cache_dtype": self.kv_dtype,
            "weights_bytes_per_gpu": self.weights_bytes,
            "weights_exact": self.weights_exact,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "block_size": self.block_size,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "overhead_bytes": self.overhead_bytes,
            "kv_budget_bytes": self.budget_bytes,
            "kv_budget_exact": self.budget_exact,
            "num_blocks": self.num_blocks,
            "kv_cache_tokens": self.tokens,
            "max_concurrency": None if self.concurrency is None else round(self.concurrency, 2),
            "max_len_that_fits": self.max_len_that_fits,
            "exact": self.exact,
            "fits": self.fits,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "suggestions": [
                {"change": s.change, "result": s.result, "fits": s.fits} for s in self.suggestions
            ],
        }


# ---------------------------------------------------------------- pieces


def model_dtype(shape: ModelShape, dtype: str) -> str:
    """vLLM's `--dtype auto`: the config's dtype, float32 served as bfloat16."""
    if dtype and dtype != "auto":
        return {"half": "float16", "float": "float32"}.get(dtype, dtype)
    found = str(shape.dtype or "bfloat16").replace("torch.", "")
    return "bfloat16" if found in ("float32", "float") else found


def kv_dtype_bytes(kv_cache_dtype: str, dtype: str) -> tuple[str, int]:
    if kv_cache_dtype in ("auto", "", None):
        return dtype, DTYPE_BYTES.get(dtype, 2)
    if kv_cache_dtype.startswith(FP8_KV) or kv_cache_dtype.endswith("per_token_head"):
        return kv_cache_dtype, 1
    return kv_cache_dtype, DTYPE_BYTES.get(kv_cache_dtype, 2)


def kv_bytes_per_layer_token(shape: ModelShape, tp: int, kv_bytes: int) -> int:
    """KV bytes one token takes in one layer on one GPU. MLA caches one latent vector
    (kv_lora_rank + rope dims), replicated on every GPU; others cache K and V per KV head,
    the heads split over tensor-parallel GPUs (replicated when there are fewer than GPUs)."""
    if shape.mla:
        return (shape.kv_lora_rank + shape.qk_rope_head_dim) * kv_bytes
    heads = max(1, shape.kv_heads // tp)
    return 2 * heads * shape.head_dim * kv_bytes


def weight_bytes(shape: ModelShape, params: ParamCount, dtype: str, quantization: str | None) -> int:
    """Whole-model weight bytes from the architecture (quantization shrinks linear layers)."""
    wide = DTYPE_BYTES.get(dtype, 2)
    method = (quantization or shape.quant_method or "").lower()
    if not method:
        return params.total * wide
    bits = shape.quant_bits if (shape.quant_bits and not quantization) else QUANT_BITS.get(method, 8.0)
    per = bits / 8
    if bits < 8:
        per += 2.5 / (shape.quant_group or 128)  # fp16 scale + packed zero per group
    return int(params.linear * per + (params.total - params.linear) * wide)


def _blocks_for(kind: str, length: int, block: int, window: int | None, batched: int) -> int:
    if kind == "sliding" and window:
        return math.ceil(min(window - 1 + batched, length) / block) + 1
    return math.ceil(length / block)


def _layer_groups(shape: ModelShape, pp: int) -> list[tuple[str, int]]:
    """vLLM's KV cache groups, as (kind, layers per group) x count: one group of all layers
    for a uniform model; for a hybrid one, groups the size of the smallest layer type."""
    full = math.ceil(shape.full_layers / pp) if shape.full_layers else 0
    sliding = math.ceil(shape.sliding_layers / pp) if shape.sliding_layers else 0
    kinds = [(k, n) for k, n in (("full", full), ("sliding", sliding)) if n]
    if len(kinds) == 1:
        return [(kinds[0][0], kinds[0][1])]
    size = min(n for _, n in kinds)
    groups: list[tuple[str, int]] = []
    for kind, n in kinds:
        groups += [(kind, size)] * math.ceil(n / size)
    return groups


# CUDA keeps part of each card: torch, and so vLLM, sees less than NVML's total (H100 80GB:
# NVML 81,559 MiB, torch 81,079 MiB on the 2026-11-22 run); gpu_memory_utilization applies to
# what torch sees
CUDA_RESERVED = 480 * 1024 * 1024


def gpu_overhead(shape: ModelShape, s: Settings4Plan, batched: int, seqs: int, dtype_bytes: int) -> int:
    """Estimated non-weight, non-KV memory of one GPU: the profiling forward pass's activation
    peak, the sampler's fp32 logits, CUDA context/NCCL buffers, CUDA graphs. vLLM measures
    this at start; its log line `Available KV cache memory` shows the real budget."""
    tp = s.tensor_parallel
    width = (
        shape.intermediate if not shape.experts else shape.moe_intermediate * max(1, shape.experts_per_token)
    )
    activations = batched * (8 * shape.hidden + 3 * width // tp) * dtype_bytes
    sampler = seqs * shape.vocab * 4 * 2 // tp
    # calibrated on a real H100 run (vLLM 0.26, Qwen2.5-7B, 2026-11-22): the profile run's peak
    # is the larger of the forward pass and the sampler pass (1.13 GiB logged), non-torch memory
    # 0.22 GiB, and CUDA graph memory is NOT taken from the KV budget (it comes out of the rest)
    non_torch = GiB // 4 + (GiB // 2 if tp * s.pipeline_parallel > 1 else 0)
    return max(activations, sampler) + non_torch


# ---------------------------------------------------------------- the plan


def estimate(
    files: ModelFiles, s: Settings4Plan, target: Target, profile_name: str = "", suggest: bool = True
) -> Plan:
    """The plan for one model and settings on one target (pure: no I/O); when it does not
    fit, with suggestions (each tried with real numbers)."""
    shape = shape_from_config(files.config, files.source)
    params = count_params(shape)
    dtype = model_dtype(shape, s.dtype)
    kv_name, kv_b = kv_dtype_bytes(s.kv_cache_dtype, dtype)
    tp, pp = s.tensor_parallel, s.pipeline_parallel
    problems: list[str] = []
    notes: list[str] = []
    if files.checkpoint_bytes and not s.quantization:
        total_weights, weights_exact = files.checkpoint_bytes, True
    else:
        total_weights, weights_exact = weight_bytes(shape, params, dtype, s.quantization), False
    weights = total_weights // (tp * pp) - int(s.cpu_offload_gb * GiB)
    weights = max(0, weights)
    per_layer = kv_bytes_per_layer_token(shape, tp, kv_b)
    kv_layers = math.ceil((shape.full_layers + shape.sliding_layers) / pp)
    per_token = per_layer * kv_layers
    cpu = s.device == "cpu"
    big_gpu = (target.gpu_memory or 0) >= 70 * GiB
    block = s.block_size or (128 if cpu and not shape.mla else 16)
    batched = s.max_num_batched_tokens or (2048 * tp if cpu else (8192 if big_gpu else 2048))
    seqs = s.max_num_seqs or (128 * tp if cpu else (1024 if big_gpu else 256))
    max_len = s.max_model_len or shape.max_position or 4096
    if shape.max_position and s.max_model_len and s.max_model_len > shape.max_position:
        problems.append(
            f"max_model_len {s.max_model_len:,} is longer than the model's {shape.max_position:,}:"
            f" vLLM refuses it; set max_model_len to {shape.max_position:,} or less"
        )
    if not shape.mla and shape.kv_heads % tp and tp % shape.kv_heads:
        problems.append(f"{shape.kv_heads} KV heads cannot be split over tensor_parallel_size {tp}")
    if target.gpu_count and target.gpu_count < tp * pp:
        problems.append(
            f"tensor_parallel_size x pipeline_parallel_size = {tp * pp} GPUs, but the target has"
            f" {target.gpu_count}"
        )
    groups = _layer_groups(shape, pp)
    group_layers = max(n for _, n in groups) if groups else 0
    bytes_per_block = block * per_layer * group_layers

    def blocks_per_request(length: int) -> int:
        return sum(_blocks_for(k, length, block, shape.sliding_window, batched) for k, _ in groups)

    overhead: int | None = None
    budget: int | None = None
    budget_exact = s.kv_cache_memory_bytes is not None
    if budget_exact:
        budget = s.kv_cache_memory_bytes
    elif not cpu and target.gpu_memory:
        overhead = gpu_overhead(shape, s, batched, seqs, DTYPE_BYTES.get(dtype, 2))
        usable = target.gpu_memory - CUDA_RESERVED
        budget = int(usable * s.gpu_memory_utilization) - weights - overhead
    elif cpu:
        notes.append(
            "CPU without VLLM_CPU_KVCACHE_SPACE: vLLM sizes the KV cache from free RAM;"
            " set env VLLM_CPU_KVCACHE_SPACE (GiB) for a fixed budget"
        )
    else:
        notes.append("no GPU to plan for: give the target with --gpu-memory 80GiB or --gpu H100-80GB")
    num_blocks = tokens = concurrency = max_fit = None
    fits: bool | None = None
    if budget is not None and bytes_per_block:
        if budget <= 0:
            fits = False
            need = weights + (overhead or 0)
            problems.append(
                f"the weights ({gib(weights)} per GPU) and overhead ({gib(overhead or 0)}) leave no room"
                f" for the KV cache in {gib(int((target.gpu_memory or 0) * s.gpu_memory_utilization))}"
                f" ({s.gpu_memory_utilization:g} of {gib(target.gpu_memory or 0)}); needs {gib(need)}+"
            )
            budget = 0
        num_blocks = budget // bytes_per_block
        per_req = blocks_per_request(max_len)
        concurrency = num_blocks / per_req
        tokens = int(concurrency * max_len)
        lo, hi = 0, max(max_len, shape.max_position or max_len)
        while lo < hi:  # longest max_model_len whose one request fits
            mid = (lo + hi + 1) // 2
            if blocks_per_request(mid) <= num_blocks:
                lo = mid
            else:
                hi = mid - 1
        max_fit = lo
        if fits is None:
            fits = per_req <= num_blocks
        if budget > 0 and not fits:
            problems.append(
                f"one request of max_model_len {max_len:,} needs {gib(per_req * bytes_per_block)} of KV"
                f" cache but {gib(budget)} is left: vLLM will refuse to start"
                f" (the longest that fits is {max_fit:,} tokens)"
            )
        elif fits and concurrency < min(seqs, 4):
            notes.append(f"only {concurrency:.2f} requests of {max_len:,} tokens fit at once")
    if fits and target.gpu_count and target.gpu_count < tp * pp:
        fits, suggest = False, False  # memory is not the problem: the machine is too small
    if shape.sliding_layers or shape.state_layers:
        notes.append(
            "sliding-window / hybrid layers: tokens and concurrency follow vLLM's grouping"
            " approximately; vLLM's logged figures are the truth"
        )
    if not cpu and budget is not None and not budget_exact:
        notes.append(
            "the overhead (activations, sampler, CUDA graphs) is an estimate: vLLM measures it"
            " at start and logs `Available KV cache memory`"
        )
    plan = Plan(
        profile=profile_name,
        model=files.model,
        config_source=files.source,
        shape=shape,
        params=params,
        inputs=s,
        target=target,
        model_dtype=dtype,
        kv_dtype=kv_name,
        weights_bytes=weights,
        weights_exact=weights_exact,
        kv_bytes_per_token=per_token,
        block_size=block,
        max_model_len=max_len,
        max_num_seqs=seqs,
        max_num_batched_tokens=batched,
        overhead_bytes=overhead,
        budget_bytes=budget,
        budget_exact=budget_exact,
        num_blocks=num_blocks,
        tokens=tokens,
        concurrency=concurrency,
        max_len_that_fits=max_fit,
        fits=fits,
        problems=tuple(problems),
        notes=tuple(notes),
        layer_groups=tuple(
            (k, n, _blocks_for(k, max_len, block, shape.sliding_window, batched)) for k, n in groups
        ),
    )
    if fits is False and suggest:
        plan = replace(plan, suggestions=tuple(_suggest(files, s, target, plan, profile_name)))
    return plan


def _suggest(files: ModelFiles, s: Settings4Plan, target: Target, plan: Plan, name: str) -> list[Suggestion]:
    """What would make it fit, each tried with real numbers."""
    out: list[Suggestion] = []

    def attempt(change: str, **fields: Any) -> bool:
        trial = estimate(files, replace(s, **fields), target, name, suggest=False)
        if trial.tokens is None:
            return False
        if trial.fits:
            result = f"{trial.tokens:,} tokens, {trial.concurrency:.2f}x at {trial.max_model_len:,}"
        elif trial.max_len_that_fits:
            result = f"not alone: one request of up to {trial.max_len_that_fits:,} tokens"
        else:
            result = "not alone: the weights still leave no room"
        out.append(Suggestion(change, result, bool(trial.fits)))
        return bool(trial.fits)

    if plan.max_len_that_fits and plan.max_len_that_fits >= 256:
        n = plan.max_len_that_fits
        n = n - n % 1024 if n >= 2048 else n
        attempt(f"max_model_len: {n}", max_model_len=n)
    if plan.kv_dtype not in FP8_KV:
        attempt("kv_cache_dtype: fp8", kv_cache_dtype="fp8")
    if s.device != "cpu" and not s.kv_cache_memory_bytes:
        limit = target.gpu_count or 8
        tp = s.tensor_parallel * 2
        while tp * s.pipeline_parallel <= limit:
            extra = "" if target.gpu_count else f" (needs {tp * s.pipeline_parallel} GPUs)"
            if attempt(f"tensor_parallel_size: {tp}{extra}", tensor_parallel=tp):
                break
            tp *= 2
        if s.gpu_memory_utilization < 0.95:
            attempt("gpu_memory_utilization: 0.95", gpu_memory_utilization=0.95)
        if not (s.quantization or plan.shape.quant_method):
            attempt(
                "a quantized model (FP8 weights: an -FP8 checkpoint, or quantization: fp8)",
                quantization="fp8",
            )
            attempt("a 4-bit model (AWQ/GPTQ checkpoint)", quantization="awq")
    return out


def gib(n: int | float | None) -> str:
    if n is None:
        return "-"
    return f"{n / GiB:.2f} GiB"


# ---------------------------------------------------------------- profiles


def plan_profile(
    profile: Profile,
    settings: Settings,
    target: Target,
    config_file: str | None = None,
) -> Plan:
    """Find the profile's model config on disk and plan it for `target`."""
    from pathlib import Path

    revision = _arg(profile, "revision")
    files = find_model_files(
        profile.model,
        settings.models_dir,
        str(revision) if revision else None,
        Path(config_file) if config_file else None,
    )
    return estimate(files, plan_settings(profile), target, profile.name)
