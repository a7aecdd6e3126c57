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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vllmtui.core.settings import Settings
from vllmtui.models.config import ModelFiles, find_model_files
from vllmtui.planner.inputs import GpuTarget, Settings4Plan, plan_settings, profile_arg
from vllmtui.planner.kv_cache import Budget, kv_budget, kv_fit, scheduler_limits, weights_per_gpu
from vllmtui.planner.shapes import ModelShape, ParamCount, count_params, shape_from_config
from vllmtui.planner.sizing import (
    DTYPE_BYTES,
    FP8_KV,
    KvLayout,
    kv_bytes_per_layer_token,
    kv_dtype_bytes,
    kv_layers,
    model_dtype,
)
from vllmtui.profiles.model import Profile


@dataclass(frozen=True)
class Suggestion:
    """One change that would make a plan fit (or fit better), tried with real numbers."""

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
    target: GpuTarget
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


# ---------------------------------------------------------------- the plan


def estimate(
    files: ModelFiles, s: Settings4Plan, target: GpuTarget, profile_name: str = "", suggest: bool = True
) -> Plan:
    """The plan for one model and settings on one target (pure: no I/O); when it does not
    fit, with suggestions (each tried with real numbers)."""
    shape = shape_from_config(files.config, files.source)
    params = count_params(shape)
    dtype = model_dtype(shape, s.dtype)
    kv_name, kv_bytes = kv_dtype_bytes(s.kv_cache_dtype, dtype)
    weights, weights_exact = weights_per_gpu(files, shape, params, dtype, s)
    limits = scheduler_limits(shape, s, target)
    per_layer = kv_bytes_per_layer_token(shape, s.tensor_parallel, kv_bytes)
    layout = KvLayout.of(shape, s.pipeline_parallel, per_layer, limits.block, limits.batched)
    budget = kv_budget(shape, s, target, weights, limits, DTYPE_BYTES.get(dtype, 2))
    fit = kv_fit(budget, layout, limits, shape, s, target)
    fits = fit.fits
    if fits and target.gpu_count and target.gpu_count < s.tensor_parallel * s.pipeline_parallel:
        fits, suggest = False, False  # memory is not the problem: the machine is too small
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
        kv_bytes_per_token=per_layer * kv_layers(shape, s.pipeline_parallel),
        block_size=limits.block,
        max_model_len=limits.max_len,
        max_num_seqs=limits.seqs,
        max_num_batched_tokens=limits.batched,
        overhead_bytes=budget.overhead,
        budget_bytes=fit.budget,
        budget_exact=budget.exact,
        num_blocks=fit.num_blocks,
        tokens=fit.tokens,
        concurrency=fit.concurrency,
        max_len_that_fits=fit.max_len_that_fits,
        fits=fits,
        problems=(*_setting_problems(shape, s, target), *fit.problems),
        notes=(*budget.notes, *fit.notes, *_accuracy_notes(shape, s, budget)),
        layer_groups=tuple((k, n, layout.blocks_for(k, limits.max_len)) for k, n in layout.groups),
    )
    if fits is False and suggest:
        plan = replace(plan, suggestions=tuple(_suggest(files, s, target, plan, profile_name)))
    return plan


def _setting_problems(shape: ModelShape, s: Settings4Plan, target: GpuTarget) -> list[str]:
    """What vLLM refuses whatever the memory: too long a context, heads that do not split,
    fewer GPUs than the parallelism needs."""
    tp, pp = s.tensor_parallel, s.pipeline_parallel
    problems: list[str] = []
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
    return problems


def _accuracy_notes(shape: ModelShape, s: Settings4Plan, budget: Budget) -> list[str]:
    """Where the figures are approximate, and why."""
    notes: list[str] = []
    if shape.sliding_layers or shape.state_layers:
        notes.append(
            "sliding-window / hybrid layers: tokens and concurrency follow vLLM's grouping"
            " approximately; vLLM's logged figures are the truth"
        )
    if s.device != "cpu" and budget.kv is not None and not budget.exact:
        notes.append(
            "the overhead (activations, sampler, CUDA graphs) is an estimate: vLLM measures it"
            " at start and logs `Available KV cache memory`"
        )
    return notes


def _suggest(
    files: ModelFiles, s: Settings4Plan, target: GpuTarget, plan: Plan, name: str
) -> list[Suggestion]:
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


# ---------------------------------------------------------------- profiles


def plan_profile(
    profile: Profile,
    settings: Settings,
    target: GpuTarget,
    config_file: str | None = None,
) -> Plan:
    """Find the profile's model config on disk and plan it for `target`."""
    revision = profile_arg(profile, "revision")
    files = find_model_files(
        profile.model,
        settings.models_dir,
        str(revision) if revision else None,
        Path(config_file) if config_file else None,
    )
    return estimate(files, plan_settings(profile), target, profile.name)
