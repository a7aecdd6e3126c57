"""The planner's KV cache budget beside vLLM's own logged figures from real GPU runs (the
startup logs kept in tests/data), with the goal: within 1 % for dense and MoE alike.

    .venv/bin/python scripts/planner_accuracy.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vllmtui.models.config import ModelFiles  # noqa: E402
from vllmtui.planner import fitcheck  # noqa: E402
from vllmtui.planner.inputs import GpuTarget, Settings4Plan  # noqa: E402
from vllmtui.planner.memory import estimate  # noqa: E402
from vllmtui.planner.sizing import GiB  # noqa: E402
from vllmtui.servers.figures import read_figures  # noqa: E402

DATA = ROOT / "tests" / "data"
H100 = GpuTarget(fitcheck.gpu_model_memory("H100-80GB"), 1, "H100 80GB")
H200 = GpuTarget(143_771 * 1024 * 1024, 1, "H200")  # NVML's total on the 2026-12-04 run
RUNS = [  # (log, config, settings, GPU, what)
    ("vllm-gpu-0.26-h100-qwen7b-startup.log", "Qwen2.5-7B",
     Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16"), H100, "dense, graphs"),
    ("vllm-gpu-0.26-h200-qwen7b-eager-startup.log", "Qwen2.5-7B",
     Settings4Plan(gpu_memory_utilization=0.4, max_model_len=4096, dtype="bfloat16", enforce_eager=True),
     H200, "dense, eager"),
    ("vllm-gpu-0.26-h200-llama8b-eager-startup.log", "Llama-3.1-8B",
     Settings4Plan(gpu_memory_utilization=0.7, max_model_len=4096, dtype="bfloat16", enforce_eager=True),
     H200, "dense, eager"),
    ("vllm-gpu-0.26-h200-qwen3-30b-a3b-startup.log", "Qwen3-30B-A3B",
     Settings4Plan(gpu_memory_utilization=0.9, max_model_len=8192, dtype="bfloat16"), H200, "MoE, graphs"),
]


def main() -> int:
    print(f"{'model':15} {'GPU':10} {'kind':13} {'util':>4}  {'KV budget: plan':>15} {'vLLM':>9} {'diff':>7}"
          f"  {'tokens: plan':>12} {'vLLM':>9} {'diff':>7}  goal     result")
    failed = 0
    for log, name, settings, gpu, kind in RUNS:
        logged = read_figures(DATA / log)
        files = ModelFiles(name, json.loads((DATA / "configs" / f"{name}.json").read_text()), name)
        plan = estimate(files, settings, gpu)
        assert plan.budget_bytes is not None and plan.tokens is not None
        assert logged.kv_available_gib is not None and logged.kv_tokens is not None
        budget = plan.budget_bytes / GiB
        d_budget = 100 * (budget - logged.kv_available_gib) / logged.kv_available_gib
        d_tokens = 100 * (plan.tokens - logged.kv_tokens) / logged.kv_tokens
        ok = abs(d_budget) < 1 and abs(d_tokens) < 1
        failed += not ok
        print(f"{name:15} {gpu.name:10} {kind:13} {settings.gpu_memory_utilization:>4}  {budget:>11.2f} GiB"
              f" {logged.kv_available_gib:>5.2f} GiB {d_budget:+6.2f}%"
              f"  {plan.tokens:>12,} {logged.kv_tokens:>9,}"
              f" {d_tokens:+6.2f}%  <= 1 %   {'PASS' if ok else 'FAIL  <<<'}")
    print(f"\n{len(RUNS) - failed} PASS, {failed} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
