"""The STAND-IN for gpustat's NVML query (this machine has no NVIDIA driver): real pids,
made-up memory figures. Everything after the query (process trees, tmux sessions, orphans)
is real. The real query is proven on the GPU machine (docs/gpu-and-plan.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GiB = 1 << 30


def standin_nvml_query(pids: dict[int, int], used: int = 60 * GiB) -> Callable[[], Any]:
    """STAND-IN for gpustat's NVML query (no GPU here): one 80 GiB GPU listing `pids` with
    their memory in MiB, in gpustat's own entry format."""

    def query() -> tuple[list[dict[str, Any]], str]:
        entry = {
            "index": 0,
            "uuid": "GPU-standin",
            "name": "STAND-IN H100 80GB HBM3",
            "temperature.gpu": 41,
            "utilization.gpu": 87,
            "power.draw": 310,
            "enforced.power.limit": 700,
            "memory.used": used >> 20,
            "memory.total": 81559,
            "processes": [
                {
                    "pid": pid,
                    "username": "root",
                    "command": "x",
                    "full_command": ["x"],
                    "gpu_memory_usage": mib,
                }
                for pid, mib in pids.items()
            ],
        }
        return [entry], "standin"

    return query
