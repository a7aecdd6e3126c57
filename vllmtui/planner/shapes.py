"""A model's shape from its `config.json`, and the parameter count that follows from it.

Covers the families vLLM serves most: dense decoders (Llama, Qwen2/3, Mistral, Gemma),
mixture-of-experts (Mixtral, Qwen-MoE, DeepSeek), multi-head latent attention (DeepSeek
V2/V3, MLA), sliding-window and hybrid (linear-attention / Mamba) layer layouts.
Multimodal configs are read through their `text_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllmtui.core.errors import UsageError

# layer_types values that keep a per-token KV cache; anything else (linear_attention,
# mamba, conv...) keeps a fixed state per sequence.
FULL_TYPES = ("full_attention", "attention", "global", "full")
SLIDING_TYPES = ("sliding_attention", "sliding_window", "local", "sliding")
NON_GATED = ("gpt2", "gpt_neox", "gptj", "opt", "falcon", "phi", "starcoder", "gpt_bigcode", "bloom")


def _first(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder that memory depends on."""

    architecture: str
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    intermediate: int
    tie_embeddings: bool = False
    gated_mlp: bool = True
    qkv_bias: bool = False
    experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0  # total width of the shared expert(s) of a MoE layer
    moe_layers: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    full_layers: int = 0  # layers with a full-attention KV cache
    sliding_layers: int = 0  # layers with a sliding-window KV cache
    sliding_window: int | None = None
    state_layers: int = 0  # linear-attention / Mamba layers (fixed state per sequence)
    max_position: int | None = None
    dtype: str | None = None
    quant_method: str | None = None
    quant_bits: float | None = None
    quant_group: int | None = None

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def kind(self) -> str:
        """A short description of the attention layout."""
        if self.mla:
            return "MLA"
        name = "MHA" if self.kv_heads == self.heads else ("MQA" if self.kv_heads == 1 else "GQA")
        if self.state_layers:
            return f"hybrid ({name} + {self.state_layers} state layers)"
        if self.sliding_layers:
            return f"{name} + sliding window {self.sliding_window}"
        return name


def shape_from_config(config: dict[str, Any], source: str = "config.json") -> ModelShape:
    """Read a ModelShape from a config.json mapping; UsageError naming the missing field."""
    cfg = _decoder_config(config)
    hidden, layers, heads, vocab = _required(cfg, source)
    kv_heads = _first(cfg, "num_key_value_heads", "multi_query_group_num", "n_head_kv")
    if kv_heads is None:
        kv_heads = 1 if cfg.get("multi_query") else heads
    head_dim = _first(cfg, "head_dim", "attention_head_size") or hidden // heads
    model_type = str(cfg.get("model_type") or "")
    archs = cfg.get("architectures") or [model_type or "?"]
    intermediate = int(_first(cfg, "intermediate_size", "ffn_hidden_size", "n_inner", default=4 * hidden))
    moe = _experts(cfg, layers, intermediate)
    layout = _layer_layout(cfg, layers, model_type)
    method, bits, group = _quantization(cfg.get("quantization_config") or {})
    return ModelShape(
        architecture=str(archs[0]),
        model_type=model_type,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        vocab=vocab,
        intermediate=intermediate,
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        gated_mlp=not any(model_type.startswith(n) for n in NON_GATED),
        qkv_bias=bool(
            cfg.get("attention_bias") or cfg.get("qkv_bias") or model_type in ("qwen2", "qwen2_moe")
        ),
        experts=moe.experts,
        experts_per_token=moe.per_token,
        moe_intermediate=moe.intermediate,
        shared_intermediate=moe.shared,
        moe_layers=moe.layers,
        kv_lora_rank=int(cfg.get("kv_lora_rank") or 0),
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 0),
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        v_head_dim=int(cfg.get("v_head_dim") or 0),
        full_layers=layout.full,
        sliding_layers=layout.sliding,
        sliding_window=layout.window,
        state_layers=layout.state,
        max_position=_max_position(cfg),
        dtype=_first(cfg, "torch_dtype", "dtype"),
        quant_method=method,
        quant_bits=bits,
        quant_group=group,
    )


def _decoder_config(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's part of a config: a multimodal config's `text_config` (or the like), with
    the outer config's architectures, dtype and quantization; else the config itself."""
    cfg = dict(config)
    text = cfg.get("text_config") or cfg.get("language_config") or cfg.get("llm_config")
    if not isinstance(text, dict) or "num_hidden_layers" in cfg:
        return cfg
    inner = {**text}
    inner.setdefault("architectures", cfg.get("architectures"))
    inner.setdefault("torch_dtype", cfg.get("torch_dtype") or cfg.get("dtype"))
    inner.setdefault("quantization_config", cfg.get("quantization_config"))
    return inner


def _required(cfg: dict[str, Any], source: str) -> tuple[int, int, int, int]:
    """(hidden size, layers, attention heads, vocabulary): without them nothing can be sized."""
    found = {
        "hidden_size": _first(cfg, "hidden_size", "n_embd", "d_model"),
        "num_hidden_layers": _first(cfg, "num_hidden_layers", "n_layer", "num_layers"),
        "num_attention_heads": _first(cfg, "num_attention_heads", "n_head", "num_heads"),
        "vocab_size": _first(cfg, "vocab_size", "padded_vocab_size"),
    }
    for name, value in found.items():
        if not isinstance(value, int) or value <= 0:
            raise UsageError(f"{source}: {name} is missing; cannot size this model")
    hidden, layers, heads, vocab = found.values()
    return hidden, layers, heads, vocab


@dataclass(frozen=True)
class _Experts:
    experts: int = 0
    per_token: int = 0
    intermediate: int = 0  # one expert's MLP width
    shared: int = 0  # total width of the shared expert(s)
    layers: int = 0  # layers whose MLP is a mixture of experts


def _experts(cfg: dict[str, Any], layers: int, intermediate: int) -> _Experts:
    """A mixture-of-experts layout (no experts: a dense model)."""
    experts = int(_first(cfg, "num_local_experts", "n_routed_experts", "num_experts", default=0) or 0)
    per_token = int(_first(cfg, "num_experts_per_tok", "moe_topk", "top_k", default=0) or 0)
    if not experts:
        return _Experts(per_token=per_token)  # as the config says, though nothing uses it
    moe_inter = int(_first(cfg, "moe_intermediate_size", default=intermediate) or intermediate)
    shared = 0
    if cfg.get("n_shared_experts"):
        shared = int(cfg["n_shared_experts"]) * moe_inter
    elif cfg.get("shared_expert_intermediate_size"):
        shared = int(cfg["shared_expert_intermediate_size"])
    first_dense = int(cfg.get("first_k_dense_replace") or 0)
    freq = int(cfg.get("moe_layer_freq") or cfg.get("decoder_sparse_step") or 1)
    phase = 0 if "moe_layer_freq" in cfg or freq == 1 else freq - 1
    only_dense = set(cfg.get("mlp_only_layers") or [])
    moe_layers = sum(
        1 for i in range(layers) if i >= first_dense and i % freq == phase and i not in only_dense
    )
    return _Experts(experts, per_token, moe_inter, shared, moe_layers)


@dataclass(frozen=True)
class _Layout:
    full: int  # layers with a full-attention KV cache
    sliding: int = 0  # layers with a sliding-window KV cache
    state: int = 0  # linear-attention / Mamba layers
    window: int | None = None  # the sliding window, when there are sliding layers


def _layer_layout(cfg: dict[str, Any], layers: int, model_type: str) -> _Layout:
    """How many layers of each kind, from whichever way the family writes it."""
    types = cfg.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        full = sum(1 for t in types if t in FULL_TYPES)
        sliding = sum(1 for t in types if t in SLIDING_TYPES)
        return _with_window(cfg, full, sliding, layers - full - sliding)
    if isinstance(cfg.get("layers_block_type"), list):
        full = sum(1 for t in cfg["layers_block_type"] if t == "attention")
        return _Layout(full, state=layers - full)
    if isinstance(cfg.get("hybrid_override_pattern"), str):
        pattern = cfg["hybrid_override_pattern"]
        return _Layout(pattern.count("*"), state=pattern.count("M"))
    if cfg.get("attn_layer_period"):
        period, offset = int(cfg["attn_layer_period"]), int(cfg.get("attn_layer_offset") or 0)
        full = sum(1 for i in range(layers) if i % period == offset)
        return _Layout(full, state=layers - full)
    window = cfg.get("sliding_window")
    if isinstance(window, int) and window > 0 and cfg.get("use_sliding_window", True):
        first_full = int(cfg.get("max_window_layers") or 0) if model_type.startswith("qwen") else 0
        return _with_window(cfg, first_full, layers - first_full, 0)
    return _Layout(layers)


def _with_window(cfg: dict[str, Any], full: int, sliding: int, state: int) -> _Layout:
    return _Layout(full, sliding, state, cfg.get("sliding_window") if sliding else None)


def _quantization(quant: Any) -> tuple[str | None, float | None, int | None]:
    """(method, bits per weight, group size) from a `quantization_config`, where it says."""
    if not isinstance(quant, dict):
        return None, None, None
    method = quant.get("quant_method")
    bits = _first(quant, "bits", "w_bit", "weight_bits", "num_bits")
    group = _first(quant, "group_size", "q_group_size")
    groups = quant.get("config_groups")
    if bits is None and isinstance(groups, dict):
        for value in groups.values():
            weights = value.get("weights") if isinstance(value, dict) else None
            if isinstance(weights, dict) and weights.get("num_bits"):
                bits = weights["num_bits"]
                group = weights.get("group_size") or group
                break
    return (
        str(method).lower() if method else None,
        float(bits) if bits else None,
        int(group) if isinstance(group, int) and group > 0 else None,
    )


def _max_position(cfg: dict[str, Any]) -> int | None:
    """The longest context the config allows, the way vLLM derives it."""
    values = [
        cfg.get(k)
        for k in (
            "max_position_embeddings",
            "n_positions",
            "max_seq_len",
            "seq_length",
            "max_sequence_length",
            "max_seq_length",
            "seq_len",
        )
    ]
    found = [int(v) for v in values if isinstance(v, int) and v > 0]
    if not found:
        return None
    derived = min(found)
    scaling = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if isinstance(scaling, dict):
        kind = scaling.get("rope_type") or scaling.get("type")
        factor = scaling.get("factor")
        if kind not in (None, "su", "longrope", "llama3", "default", "mrope") and factor:
            if kind == "yarn" and scaling.get("original_max_position_embeddings"):
                derived = int(scaling["original_max_position_embeddings"])
            derived = int(derived * float(factor))
    return derived


@dataclass(frozen=True)
class ParamCount:
    """Parameters by part. `linear` is what quantization shrinks; the rest stays 16-bit."""

    embedding: int
    lm_head: int
    attention: int
    mlp: int
    norms: int
    active_mlp: int  # MLP parameters one token passes through (MoE: top-k experts)

    @property
    def linear(self) -> int:
        return self.attention + self.mlp

    @property
    def total(self) -> int:
        return self.embedding + self.lm_head + self.attention + self.mlp + self.norms

    @property
    def active(self) -> int:
        return self.total - self.mlp + self.active_mlp


def count_params(s: ModelShape) -> ParamCount:
    """Parameter count from the shape (biases of q/k/v included where the family has them)."""
    h = s.hidden
    if s.mla:
        qk = s.qk_nope_head_dim + s.qk_rope_head_dim
        if s.q_lora_rank:
            q = h * s.q_lora_rank + s.q_lora_rank + s.q_lora_rank * s.heads * qk
        else:
            q = h * s.heads * qk
        kv = h * (s.kv_lora_rank + s.qk_rope_head_dim) + s.kv_lora_rank
        kv += s.kv_lora_rank * s.heads * (s.qk_nope_head_dim + s.v_head_dim)
        attn_layer = q + kv + s.heads * s.v_head_dim * h
    else:
        q_width, kv_width = s.heads * s.head_dim, s.kv_heads * s.head_dim
        attn_layer = h * q_width + 2 * h * kv_width + q_width * h
        if s.qkv_bias:
            attn_layer += q_width + 2 * kv_width
    attn_layers = s.layers - s.state_layers
    attention = attn_layer * attn_layers
    if s.state_layers:  # a rough linear-attention / Mamba block: in/out projections
        attention += s.state_layers * 4 * h * h
    mats = 3 if s.gated_mlp else 2
    dense = mats * h * s.intermediate
    if s.experts:
        expert = mats * h * s.moe_intermediate
        moe_layer = s.experts * expert + h * s.experts + mats * h * s.shared_intermediate
        active_layer = s.experts_per_token * expert + h * s.experts + mats * h * s.shared_intermediate
        dense_layers = s.layers - s.moe_layers
        mlp = s.moe_layers * moe_layer + dense_layers * dense
        active = s.moe_layers * active_layer + dense_layers * dense
    else:
        mlp = active = s.layers * dense
    norms = s.layers * 2 * h + h
    embedding = s.vocab * h
    lm_head = 0 if s.tie_embeddings else s.vocab * h
    return ParamCount(embedding, lm_head, attention, mlp, norms, active)
