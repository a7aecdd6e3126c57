"""The planner's KV-cache figures equal what a real vLLM (CPU build) logs, exactly, for three
tiny models of different shapes; and `vllmtui plan` shows vLLM's own figures beside them.

Shapes: `tiny` (Qwen2 GQA 2:1, head_dim 64, 2 layers; the shared session server),
`tiny-mha` (Llama MHA, head_dim 128, 3 layers), `tiny-gqa4` (Qwen2 GQA 4:2, head_dim 64,
4 layers, with a max_model_len that is not a multiple of the block size and 2 GiB of KV).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import ROOT, VllmServer, start_vllm_server, stop_vllm_server
from vllmtui.planner import memory, vllm_figures
from vllmtui.planner.inputs import GpuTarget
from vllmtui.planner.sizing import GiB
from vllmtui.servers.figures import read_figures
from vllmtui.servers.fleet import Fleet

CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1", "VLLM_CPU_OMP_THREADS_BIND": "auto"}


@pytest.fixture(scope="module")
def mha_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = start_vllm_server(tmp_path_factory.mktemp("vllm-mha"), "tiny-mha", model="demo:tiny-mha")
    yield server
    stop_vllm_server(server)


@pytest.fixture(scope="module")
def gqa4_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = start_vllm_server(
        tmp_path_factory.mktemp("vllm-gqa4"),
        "tiny-gqa4",
        model="demo:tiny-gqa4",
        max_model_len=1000,
        env=CPU_ENV,
    )
    yield server
    stop_vllm_server(server)


def _logged(server: VllmServer) -> vllm_figures.VllmFigures:
    status = Fleet(server.settings).status(server.loaded)  # type: ignore[arg-type]
    assert status.run_dir is not None
    return read_figures(status.run_dir / "server.log")


def _check(server: VllmServer, bytes_per_token: int) -> memory.Plan:
    plan = memory.plan_profile(server.loaded.profile, server.settings, GpuTarget(None))  # type: ignore[attr-defined]
    logged = _logged(server)
    assert logged.kv_device == "CPU"
    assert plan.kv_bytes_per_token == bytes_per_token
    assert plan.exact
    assert logged.kv_tokens == plan.tokens, (logged, plan.to_json())
    assert logged.concurrency == round(plan.concurrency or 0, 2)
    assert logged.concurrency_len == plan.max_model_len
    assert logged.kv_available_gib == plan.budget_bytes / GiB  # type: ignore[operator]
    return plan


def test_tiny_gqa_head64_2_layers(vllm_server: VllmServer) -> None:
    plan = _check(vllm_server, 2 * 2 * 1 * 64 * 2)
    assert plan.tokens == 2_097_152


def test_tiny_mha_head128_3_layers(mha_server: VllmServer) -> None:
    plan = _check(mha_server, 2 * 3 * 2 * 128 * 2)
    # 1 GiB in blocks of 128 tokens x 3 layers: not a whole number of requests
    assert plan.tokens == 349_440 and plan.concurrency == 341.25


def test_tiny_gqa4_head64_4_layers_odd_length(gqa4_server: VllmServer) -> None:
    plan = _check(gqa4_server, 2 * 4 * 2 * 64 * 2)
    assert plan.max_model_len == 1000 and plan.tokens == 1_024_000


def test_plan_command_shows_vllm_figures_beside_the_estimate(mha_server: VllmServer) -> None:
    settings = mha_server.settings
    env = dict(
        os.environ,
        VLLMTUI_TMUX_SOCKET=str(settings.tmux_socket),
        VLLMTUI_STATE_DIR=str(settings.state_dir),
        VLLMTUI_CONFIG_DIR=str(settings.config_dir),
        VLLMTUI_PROFILES=str(settings.profiles_dirs[0]),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "vllmtui", "plan", "tiny-mha"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("KV cache tokens"))
    assert line.count("349,440") == 2, proc.stdout  # estimate | vLLM logged
    proc = subprocess.run(
        [sys.executable, "-m", "vllmtui", "plan", "tiny-mha", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = yaml.safe_load(proc.stdout)
    assert data["kv_cache_tokens"] == data["vllm_logged"]["kv_tokens"] == 349_440
