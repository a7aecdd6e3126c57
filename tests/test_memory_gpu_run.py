"""The planner against vLLM's own figures from the real H100 run of 2026-11-22 (issue 8):
Qwen2.5-7B architecture, bf16, gpu_memory_utilization 0.9, max_model_len 8192, vLLM 0.26.
Before calibration the estimate was 3.3% low (1,007,056 tokens for vLLM's 1,040,928): it took
NVML's total instead of what CUDA lets torch see, and counted sampler memory and CUDA graphs
on top of the activation peak."""

from __future__ import annotations

import json
from pathlib import Path

from vllmtui.models.config import ModelFiles
from vllmtui.planner import fitcheck
from vllmtui.planner.memory import GiB, Settings4Plan, Target, estimate
from vllmtui.servers.figures import read_figures

DATA = Path(__file__).parent / "data"
LOG = DATA / "vllm-gpu-0.26-h100-qwen7b-startup.log"


def test_h100_qwen7b_estimate_within_one_percent_of_vllm() -> None:
    logged = read_figures(LOG)
    assert (logged.kv_tokens, logged.concurrency, logged.kv_available_gib) == (1_040_928, 127.07, 55.59)
    config = json.loads((DATA / "configs" / "Qwen2.5-7B.json").read_text())
    plan = estimate(
        ModelFiles("Qwen2.5-7B", config, "Qwen2.5-7B"),
        Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16"),
        Target(fitcheck.gpu_model_memory("H100-80GB"), 1, "H100-80GB"),
    )
    assert plan.tokens is not None and plan.concurrency is not None and plan.budget_bytes is not None
    assert abs(plan.tokens - logged.kv_tokens) / logged.kv_tokens < 0.01
    assert abs(plan.concurrency - logged.concurrency) / logged.concurrency < 0.01
    assert abs(plan.budget_bytes / GiB - logged.kv_available_gib) / logged.kv_available_gib < 0.01
    assert abs(plan.weights_bytes / GiB - logged.model_loading_gib) / logged.model_loading_gib < 0.01  # type: ignore[operator]
