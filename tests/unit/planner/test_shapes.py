"""Model shapes from published configs (tests/data/configs): parameter counts within 1% of
the published sizes, active experts, MLA, sliding-window and hybrid layouts."""

from __future__ import annotations

import json

import pytest

from tests.support.helpers import CONFIGS
from vllmtui.models.config import ModelFiles
from vllmtui.planner import fitcheck
from vllmtui.planner.inputs import GpuTarget, Settings4Plan
from vllmtui.planner.memory import estimate
from vllmtui.planner.shapes import count_params, shape_from_config
from vllmtui.planner.sizing import GiB

PUBLISHED = {  # parameters as published on the model cards
    "Llama-3.1-8B": 8.03e9,
    "Llama-3.1-70B": 70.6e9,
    "Qwen2.5-7B": 7.61e9,
    "Mixtral-8x7B-v0.1": 46.7e9,
    "DeepSeek-V2-Lite": 15.7e9,
}
H100 = GpuTarget(fitcheck.gpu_model_memory("H100-80GB"), 0, "H100-80GB")  # GPU count not said


def files(name: str) -> ModelFiles:
    return ModelFiles(name, json.loads((CONFIGS / f"{name}.json").read_text()), name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_within_one_percent(name: str) -> None:
    total = count_params(shape_from_config(files(name).config)).total
    assert abs(total / PUBLISHED[name] - 1) < 0.01, f"{name}: {total:,}"


def test_exact_counts_and_active_experts() -> None:
    assert count_params(shape_from_config(files("Llama-3.1-8B").config)).total == 8_030_261_248
    mixtral = count_params(shape_from_config(files("Mixtral-8x7B-v0.1").config))
    assert abs(mixtral.active / 12.9e9 - 1) < 0.01  # "12.9B active parameters"
    lite = shape_from_config(files("DeepSeek-V2-Lite").config)
    assert lite.mla and lite.moe_layers == 26 and lite.kind == "MLA"


def test_sliding_window_and_hybrid_layouts_are_read() -> None:
    mistral = shape_from_config(
        {
            "model_type": "mistral",
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 32000,
            "sliding_window": 4096,
            "intermediate_size": 14336,
        }
    )
    assert mistral.sliding_layers == 32 and mistral.sliding_window == 4096
    hybrid = shape_from_config(
        {
            "model_type": "qwen3_next",
            "hidden_size": 2048,
            "num_hidden_layers": 8,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "vocab_size": 1000,
            "head_dim": 256,
            "layer_types": ["linear_attention"] * 3
            + ["full_attention"]
            + ["linear_attention"] * 3
            + ["full_attention"],
        }
    )
    assert (hybrid.full_layers, hybrid.state_layers) == (2, 6)
    swa = estimate(
        ModelFiles(
            "m",
            {
                "model_type": "mistral",
                "hidden_size": 4096,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 32000,
                "sliding_window": 4096,
                "max_position_embeddings": 32768,
            },
            "x",
        ),
        Settings4Plan(max_model_len=32768, kv_cache_memory_bytes=8 * GiB),
        H100,
    )
    full_len = 32768 // 16
    assert swa.layer_groups[0][2] < full_len  # a window's worth of blocks per request, not the whole length
    assert not swa.exact
