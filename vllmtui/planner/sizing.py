"""What each part of one GPU's memory takes, by vLLM's rules: weight bytes, KV cache bytes per
token, the blocks one request needs, and the overhead estimate. Pure arithmetic over a
`ModelShape`; the tables it needs (bytes per dtype, bits per quantization method) are here."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vllmtui.planner.shapes import ModelShape, ParamCount

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
MiB = 1 << 20


def cuda_reserved(nvml_total: int) -> int:
    """What CUDA keeps of a card: torch, and so vLLM, sees less than NVML's total, and
    gpu_memory_utilization applies to what torch sees. Two real cards fix the line: H100 80GB,
    NVML 81,559 MiB, torch 81,079 MiB (2026-11-22); H200, NVML 143,771 MiB, torch 139.80 GiB
    (2026-12-04): 300 MiB + 2.24 MiB per GiB of the card."""
    return int(300 * MiB + 2.24 * MiB * nvml_total / GiB)


# Architectures vLLM 0.26 runs on its V2 model runner though they are mixtures of experts
# (vllm/config/vllm.py DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES); other MoE, hybrid and
# attention-free models run on the V1 runner
V2_MOE_ARCHITECTURES = frozenset({"DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "Qwen2MoeForCausalLM",
                                  "LongcatFlashNgramForCausalLM"})


def gib(n: int | float | None) -> str:
    """Bytes as `12.34 GiB`; '-' when unknown."""
    if n is None:
        return "-"
    return f"{n / GiB:.2f} GiB"


def model_dtype(shape: ModelShape, dtype: str) -> str:
    """vLLM's `--dtype auto`: the config's dtype, float32 served as bfloat16."""
    if dtype and dtype != "auto":
        return {"half": "float16", "float": "float32"}.get(dtype, dtype)
    found = str(shape.dtype or "bfloat16").replace("torch.", "")
    return "bfloat16" if found in ("float32", "float") else found


def kv_dtype_bytes(kv_cache_dtype: str, dtype: str) -> tuple[str, int]:
    """The KV cache's dtype (`auto`: the model's) and its bytes per element."""
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


def v1_runner(shape: ModelShape) -> bool:
    """Whether vLLM (0.26) serves this model with its V1 model runner: mixtures of experts
    outside V2_MOE_ARCHITECTURES and hybrid (state layer) models; dense models run on V2."""
    if shape.state_layers:
        return True
    return bool(shape.experts) and shape.architecture not in V2_MOE_ARCHITECTURES


def gpu_overhead(
    shape: ModelShape, tp: int, pp: int, batched: int, seqs: int, dtype_bytes: int, eager: bool = False
) -> int:
    """Estimated non-weight, non-KV memory of one GPU that vLLM takes from the KV budget: the
    profile run's peak (the larger of the forward pass and the sampler pass), CUDA context /
    NCCL buffers, and, on the V1 runner, its CUDA graph estimate. vLLM measures this at start;
    its log line `Available KV cache memory` shows the real budget.

    Calibrated on real runs of vLLM 0.26 (`Actual usage is ... GiB for peak activation`):
    - V2 runner (dense; H100 Qwen2.5-7B, H200 Qwen2.5-7B and Llama-3.1-8B): the sampler pass
      peaks at ~8 bytes per logit (1.12-1.13 GiB at 1,024 x 152k); CUDA graph memory is not
      taken from the budget (0.89 GiB, from the other 10 %).
    - V1 runner (Qwen3-30B-A3B on an H200): its dummy sampler runs top-k/top-p, which sorts the
      logits: fp32 logits, sorted fp32 values and int64 indices, the bf16 logits, 18 bytes per
      logit (2.68 GiB logged at 1,024 x 151,936); and it takes its CUDA graph estimate
      (`Estimated CUDA graph memory: 0.64 GiB`, 48 layers, 102 graphs up to 512 tokens) from
      the budget, unless enforce_eager."""
    width = (
        shape.intermediate if not shape.experts else shape.moe_intermediate * max(1, shape.experts_per_token)
    )
    activations = batched * (8 * shape.hidden + 3 * width // tp) * dtype_bytes
    v1 = v1_runner(shape)
    sampler = seqs * shape.vocab * (18 if v1 else 8) // tp
    non_torch = GiB // 4 + (GiB // 2 if tp * pp > 1 else 0)
    graphs = 0
    if v1 and not eager:
        graphs = math.ceil(shape.layers / pp) * int(13.6 * MiB) * min(512, 2 * seqs) // 512
    return max(activations, sampler) + non_torch + graphs


def layer_groups(shape: ModelShape, pp: int) -> list[tuple[str, int]]:
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


@dataclass(frozen=True)
class KvLayout:
    """One GPU's KV cache as vLLM lays it out: layer groups of blocks of `block` tokens."""

    groups: tuple[tuple[str, int], ...]  # (kind, layers) of each group
    block: int  # tokens per block
    window: int | None  # the sliding window of sliding layers
    batched: int  # max_num_batched_tokens (a sliding layer keeps window - 1 + these)
    bytes_per_block: int  # one block of one group, all its layers

    @classmethod
    def of(cls, shape: ModelShape, pp: int, per_layer_token: int, block: int, batched: int) -> KvLayout:
        """The layout of a model split over `pp` pipeline stages."""
        groups = tuple(layer_groups(shape, pp))
        group_layers = max(n for _, n in groups) if groups else 0
        return cls(groups, block, shape.sliding_window, batched, block * per_layer_token * group_layers)

    def blocks_for(self, kind: str, length: int) -> int:
        """Blocks one request of `length` tokens needs in one group of this kind."""
        if kind == "sliding" and self.window:
            return math.ceil(min(self.window - 1 + self.batched, length) / self.block) + 1
        return math.ceil(length / self.block)

    def blocks_per_request(self, length: int) -> int:
        """Blocks one request of `length` tokens needs, over all groups."""
        return sum(self.blocks_for(kind, length) for kind, _ in self.groups)

    def longest_request(self, num_blocks: int, upper: int) -> int:
        """The longest request (at most `upper` tokens) that `num_blocks` blocks hold."""
        lo, hi = 0, upper
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.blocks_per_request(mid) <= num_blocks:
                lo = mid
            else:
                hi = mid - 1
        return lo


def kv_layers(shape: ModelShape, pp: int) -> int:
    """Layers with a per-token KV cache on one pipeline stage."""
    return -(-(shape.full_layers + shape.sliding_layers) // pp)
