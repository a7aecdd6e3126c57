"""The fit check against what runs: a GPU held by a real process in a real tmux session
(NVML query replaced by the STAND-IN of tests/support/gpu.py), and the check that runs before
every start of a STAND-IN server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.support.gpu import standin_nvml_query
from tests.support.helpers import CONFIGS
from vllmtui.core.settings import Settings
from vllmtui.models.config import ModelFiles
from vllmtui.planner import fitcheck, memory
from vllmtui.planner.gpu import read_gpus
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.fleet import Fleet


def test_fit_check_names_the_process_holding_the_gpu(settings: Settings, fake_server: int) -> None:
    snap = read_gpus(Fleet(settings), query=standin_nvml_query({fake_server: 60_000}))
    config = json.loads((CONFIGS / "Llama-3.1-8B.json").read_text())
    plan = memory.estimate(
        ModelFiles("meta-llama/Llama-3.1-8B", config, "fixture"),
        memory.Settings4Plan(max_model_len=8192),
        fitcheck.live_target(snap),
    )
    warnings = fitcheck.live_warnings(plan, snap)
    assert len(warnings) == 1
    assert warnings[0].startswith("GPU 0 has 19.65 GiB free but gpu_memory_utilization 0.92 asks for")
    assert f"pid {fake_server} VLLM::EngineCore (58.59 GiB, server fake)" in warnings[0]
    # `vllmtui plan fake` while fake runs: its own memory is no obstacle (seen on the H100 run)
    assert fitcheck.live_warnings(plan, snap, own_server="fake") == []


def test_fit_check_warns_before_start(settings: Settings, standin_profile: Callable[..., Path]) -> None:
    path = standin_profile(
        "toolong", model="demo:tiny", max_model_len=100_000, env={"VLLM_CPU_KVCACHE_SPACE": "1"}
    )
    loaded = load_profile_file(path)
    fleet = Fleet(settings)
    assert fleet.fit_warnings(loaded) == [
        "memory: max_model_len 100,000 is longer than the model's 4,096: vLLM refuses it;"
        " set max_model_len to 4,096 or less"
    ]
    result = fleet.start(loaded)
    try:
        assert any(w.startswith("memory: max_model_len 100,000") for w in result.warnings)
    finally:
        fleet.stop("toolong", force=True)
    # a model whose config is nowhere on disk: no warning, no error (vLLM will fetch it)
    other = load_profile_file(standin_profile("remote", model="org/never-downloaded"))
    assert fleet.fit_warnings(other) == []
    assert memory.plan_settings(loaded.profile).device == "cpu"
