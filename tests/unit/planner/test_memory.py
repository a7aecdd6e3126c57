"""The planner on published configs (tests/data/configs): KV bytes per token for GQA/MoE/MLA,
tensor parallel, fp8, exact weights from the checkpoint index, suggestions with real numbers;
and against vLLM's own figures from real GPU runs (H100 2026-11-22, H200 2026-12-04)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import CONFIGS, DATA
from vllmtui.models.config import ModelFiles, find_model_files
from vllmtui.planner import fitcheck
from vllmtui.planner.inputs import GpuTarget, Settings4Plan
from vllmtui.planner.memory import estimate
from vllmtui.planner.sizing import GiB
from vllmtui.servers.figures import read_figures

H100 = GpuTarget(fitcheck.gpu_model_memory("H100-80GB"), 0, "H100-80GB")  # GPU count not said


def files(name: str) -> ModelFiles:
    return ModelFiles(name, json.loads((CONFIGS / f"{name}.json").read_text()), name)


@pytest.mark.parametrize(
    ("name", "tp", "per_token"),
    [
        ("Llama-3.1-8B", 1, 2 * 32 * 8 * 128 * 2),
        ("Llama-3.1-70B", 1, 2 * 80 * 8 * 128 * 2),
        ("Llama-3.1-70B", 2, 2 * 80 * 4 * 128 * 2),
        ("Llama-3.1-70B", 16, 2 * 80 * 1 * 128 * 2),  # fewer KV heads than GPUs: replicated
        ("Qwen2.5-7B", 1, 2 * 28 * 4 * 128 * 2),
        ("Mixtral-8x7B-v0.1", 1, 2 * 32 * 8 * 128 * 2),
        ("DeepSeek-V2-Lite", 1, 27 * (512 + 64) * 2),  # MLA: one latent vector per layer
        ("DeepSeek-V2-Lite", 2, 27 * (512 + 64) * 2),  # ... replicated, not split
    ],
)
def test_kv_bytes_per_token(name: str, tp: int, per_token: int) -> None:
    plan = estimate(files(name), Settings4Plan(tensor_parallel=tp, max_model_len=4096), GpuTarget(None))
    assert plan.kv_bytes_per_token == per_token


def test_fp8_kv_cache_halves_the_bytes_and_doubles_the_tokens() -> None:
    s = Settings4Plan(max_model_len=8192, kv_cache_memory_bytes=10 * GiB)
    bf16 = estimate(files("Llama-3.1-8B"), s, H100)
    fp8 = estimate(files("Llama-3.1-8B"), Settings4Plan(**{**s.__dict__, "kv_cache_dtype": "fp8"}), H100)
    assert fp8.kv_bytes_per_token * 2 == bf16.kv_bytes_per_token
    assert fp8.tokens == 2 * bf16.tokens == 2 * (10 * GiB // (16 * 4096 * 32)) * 16


def test_weights_exact_from_the_checkpoint_index(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((CONFIGS / "Llama-3.1-8B.json").read_text())
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 16_060_522_496}, "weight_map": {}})
    )
    found = find_model_files(str(tmp_path))
    plan = estimate(found, Settings4Plan(tensor_parallel=2, max_model_len=8192), GpuTarget(80 * GiB, 2))
    assert plan.weights_exact and plan.weights_bytes == 16_060_522_496 // 2


def test_too_long_for_a_24gib_gpu_says_what_to_change() -> None:
    target = GpuTarget(fitcheck.parse_memory("24GiB"), 1, "24GiB")
    plan = estimate(files("Llama-3.1-8B"), Settings4Plan(max_model_len=131072), target)
    assert plan.fits is False and plan.max_len_that_fits
    assert any("vLLM will refuse to start" in p for p in plan.problems)
    fixes = {s.change.split(":")[0]: s for s in plan.suggestions}
    n = plan.max_len_that_fits - plan.max_len_that_fits % 1024
    assert fixes["max_model_len"].change == f"max_model_len: {n}" and fixes["max_model_len"].fits
    # each suggestion was tried: applying it gives the plan it promised
    again = estimate(files("Llama-3.1-8B"), Settings4Plan(max_model_len=n), target)
    assert again.fits and f"{again.tokens:,} tokens" in fixes["max_model_len"].result


def test_70b_on_one_h100_needs_four_gpus() -> None:
    plan = estimate(files("Llama-3.1-70B"), Settings4Plan(max_model_len=131072), H100)
    assert plan.fits is False and plan.budget_bytes == 0
    tp = [s for s in plan.suggestions if s.change.startswith("tensor_parallel_size")]
    assert [s.fits for s in tp] == [False, True] and tp[-1].change.startswith("tensor_parallel_size: 4")


LOG = DATA / "vllm-gpu-0.26-h100-qwen7b-startup.log"


# The planner against vLLM's own figures from the real H100 run of 2026-11-22 (issue 8):
# Qwen2.5-7B architecture, bf16, gpu_memory_utilization 0.9, max_model_len 8192, vLLM 0.26.
# Before calibration the estimate was 3.3% low (1,007,056 tokens for vLLM's 1,040,928): it took
# NVML's total instead of what CUDA lets torch see, and counted sampler memory and CUDA graphs
# on top of the activation peak.
def test_h100_qwen7b_estimate_within_one_percent_of_vllm() -> None:
    logged = read_figures(LOG)
    assert (logged.kv_tokens, logged.concurrency, logged.kv_available_gib) == (1_040_928, 127.07, 55.59)
    config = json.loads((DATA / "configs" / "Qwen2.5-7B.json").read_text())
    plan = estimate(
        ModelFiles("Qwen2.5-7B", config, "Qwen2.5-7B"),
        Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16"),
        GpuTarget(fitcheck.gpu_model_memory("H100-80GB"), 1, "H100-80GB"),
    )
    assert plan.tokens is not None and plan.concurrency is not None and plan.budget_bytes is not None
    assert abs(plan.tokens - logged.kv_tokens) / logged.kv_tokens < 0.01
    assert abs(plan.concurrency - logged.concurrency) / logged.concurrency < 0.01
    assert abs(plan.budget_bytes / GiB - logged.kv_available_gib) / logged.kv_available_gib < 0.01
    assert abs(plan.weights_bytes / GiB - logged.model_loading_gib) / logged.model_loading_gib < 0.01  # type: ignore[operator]


H200 = GpuTarget(143_771 * 1024 * 1024, 1, "H200")  # NVML's total on the 2026-12-04 run


# The planner against vLLM's own figures from the H200 run of 2026-12-04 (issue 21): two dense
# models (V2 model runner, enforce_eager, sleep mode) and a mixture of experts (V1 runner,
# torch.compile + CUDA graphs). Before the V1 runner's sampler peak and CUDA graph estimate were
# counted, the MoE budget was 3.5 % above vLLM's (67.66 GiB for 65.38).
@pytest.mark.parametrize(
    ("log", "config", "settings"),
    [
        ("vllm-gpu-0.26-h200-qwen3-30b-a3b-startup.log", "Qwen3-30B-A3B",
         Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16")),
        ("vllm-gpu-0.26-h200-qwen7b-eager-startup.log", "Qwen2.5-7B",
         Settings4Plan(gpu_memory_utilization=0.4, max_model_len=4096, dtype="bfloat16", enforce_eager=True)),
        ("vllm-gpu-0.26-h200-llama8b-eager-startup.log", "Llama-3.1-8B",
         Settings4Plan(gpu_memory_utilization=0.7, max_model_len=4096, dtype="bfloat16", enforce_eager=True)),
    ],
    ids=["moe-qwen3-30b-a3b", "dense-qwen2.5-7b", "dense-llama-3.1-8b"],
)
def test_h200_estimates_within_one_percent_of_vllm(log: str, config: str, settings: Settings4Plan) -> None:
    logged = read_figures(DATA / log)
    assert logged.kv_available_gib and logged.kv_tokens and logged.concurrency and logged.model_loading_gib
    plan = estimate(files(config), settings, H200)
    assert plan.tokens is not None and plan.concurrency is not None and plan.budget_bytes is not None
    assert abs(plan.budget_bytes / GiB - logged.kv_available_gib) / logged.kv_available_gib < 0.01
    assert abs(plan.tokens - logged.kv_tokens) / logged.kv_tokens < 0.01
    assert abs(plan.concurrency - logged.concurrency) / logged.concurrency < 0.01
    assert abs(plan.weights_bytes / GiB - logged.model_loading_gib) / logged.model_loading_gib < 0.01  # type: ignore[operator]


def test_the_moe_estimate_counts_the_v1_runners_cuda_graphs_unless_eager() -> None:
    s = Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16")
    graphs = estimate(files("Qwen3-30B-A3B"), s, H200)
    eager = estimate(files("Qwen3-30B-A3B"), Settings4Plan(**{**s.__dict__, "enforce_eager": True}), H200)
    assert graphs.budget_bytes is not None and eager.budget_bytes is not None
    assert 0.5 * GiB < eager.budget_bytes - graphs.budget_bytes < 0.8 * GiB  # vLLM estimated 0.64 GiB
    dense = estimate(files("Qwen2.5-7B"), s, H200)
    dense_eager = estimate(files("Qwen2.5-7B"), Settings4Plan(**{**s.__dict__, "enforce_eager": True}), H200)
    assert dense.budget_bytes == dense_eager.budget_bytes  # the V2 runner takes graphs from the other 10 %
