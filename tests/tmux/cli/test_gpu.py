"""`vllmtui gpus` and `vllmtui plan` as real processes: no GPU here says so plainly (CLI and
JSON alike); a plan for another machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.helpers import CONFIGS
from vllmtui.planner.gpu import read_gpus


def test_gpus_command_prints_the_same_reading(run_cli: Callable[..., Any]) -> None:
    text = run_cli("gpus")
    assert text.returncode == 0
    assert text.stdout.strip() == "GPU: no NVIDIA driver / no GPU (libnvidia-ml.so not found)"
    data = json.loads(run_cli("gpus", "--json").stdout)
    assert data["ok"] is False
    assert data["error"] == read_gpus().error
    assert data["gpus"] == [] and data["unowned"] == []


def test_plan_command_for_another_machine(
    write_profile: Callable[..., Path], run_cli: Callable[..., Any]
) -> None:
    write_profile("big", model=str(CONFIGS / "Llama-3.1-70B.json"), max_model_len=32768)
    proc = run_cli("plan", "big", "--gpu", "H100-80GB", "--gpus", "8")
    assert proc.returncode == 1, proc.stderr  # does not fit on one GPU
    assert "DOES NOT FIT" in proc.stdout and "fix:      tensor_parallel_size: 4" in proc.stdout
    ok = run_cli("plan", "big", "--gpu-memory", "80GiB", "--set", "tensor_parallel_size=4", "--json")
    data = json.loads(ok.stdout)
    assert ok.returncode == 0 and data["fits"] and data["tensor_parallel"] == 4
    assert data["kv_bytes_per_token"] == 2 * 80 * 2 * 128 * 2
    bad = run_cli("plan", "big", "--gpu", "H1000")
    assert bad.returncode == 2 and "unknown GPU model" in bad.stderr and "Traceback" not in bad.stderr
    none = run_cli("plan", "big")
    assert none.returncode == 0 and "no GPU to plan for: give the target with --gpu-memory" in none.stdout
