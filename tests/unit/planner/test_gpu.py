"""GPU readings: no GPU here says so plainly; the history keeps the last minutes (the NVML
query replaced by the STAND-IN of tests/support/gpu.py: this machine has no NVIDIA driver)."""

from __future__ import annotations

from tests.support.gpu import GiB, standin_nvml_query
from vllmtui.planner.gpu import GpuHistory, GpuSnapshot, read_gpus


def test_no_gpu_reading_says_so_plainly() -> None:
    snap = read_gpus()
    assert not snap.ok
    assert snap.error == "no NVIDIA driver / no GPU (libnvidia-ml.so not found)"
    assert snap.summary() == f"GPU: {snap.error}"
    assert snap.gpus == () and snap.usage_by_server() == {}


def test_history_keeps_the_last_minutes() -> None:
    history = GpuHistory(keep=120)
    for t, used in ((0, 10), (60, 20), (130, 40)):
        snap = read_gpus(query=standin_nvml_query({}, used=used * GiB))
        history = history.add(GpuSnapshot(gpus=snap.gpus, taken_at=1000.0 + t))
    assert history.utilization(0) == [87.0, 87.0]  # the point at t=0 is older than 120 s
    assert [round(m) for m in history.memory(0)] == [
        round(20 * 1024 / 81559 * 100),
        round(40 * 1024 / 81559 * 100),
    ]
    assert history.add(GpuSnapshot(error="no GPU")) is history
