"""The start checks `check` and `start` share: GPUs named by a profile must exist on a box
with GPUs (the GPU reading is the STAND-IN NVML query of tests/support/gpu.py: one GPU)."""

from __future__ import annotations

from pathlib import Path

from tests.support.gpu import standin_nvml_query
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import GpuSnapshot, read_gpus
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.checks import start_problems


def problems_for(tmp_path: Path, text: str, snapshot: GpuSnapshot) -> list[str]:
    path = tmp_path / "srv.yaml"
    path.write_text(text)
    settings = Settings(profiles_dirs=(tmp_path,), state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    return [str(p) for p in start_problems(load_profile_file(path), settings, [], snapshot=snapshot,
                                           check_port=False)]


def test_a_gpu_that_is_not_there_is_an_error_naming_the_line(tmp_path: Path) -> None:
    one_gpu = read_gpus(query=standin_nvml_query({}))
    found = problems_for(tmp_path, "model: m\nport: 8123\ngpus: [0, 3]\n", one_gpu)
    assert (f"error: {tmp_path / 'srv.yaml'}:3: gpus: GPU 3 does not exist here: this machine has"
            " GPU 0 (`vllmtui gpu` lists them)") in found
    assert sum("does not exist" in p for p in found) == 1  # no memory-plan warning repeats it


def test_gpus_are_not_judged_where_none_could_be_read(tmp_path: Path) -> None:
    no_driver = GpuSnapshot(error="NVML Shared Library Not Found")
    found = problems_for(tmp_path, "model: m\nport: 8123\ngpus: [7]\n", no_driver)
    assert not any("gpus:" in p for p in found)
