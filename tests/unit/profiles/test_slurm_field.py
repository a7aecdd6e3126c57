"""A profile's `runtime.slurm`: its mistakes are named with the file, the line and the fix, and
it runs the profile's own command, venv or python (not a container, yet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError
from vllmtui.profiles.loading import parse_profile

P = Path("/p/x.yaml")


def test_a_slurm_section_is_read_with_the_runtime_it_runs() -> None:
    profile, _ = parse_profile("model: m\nruntime:\n  venv: /opt/v\n  slurm: {partition: gpu, time: '1:00:00',"
                               " gpus_per_node: 4}\n", P)
    assert profile.runtime.slurm is not None and profile.runtime.venv == "/opt/v"
    options = profile.runtime.slurm.sbatch_options()
    assert "--partition=gpu" in options and "--gpus-per-node=4" in options and "--time=1:00:00" in options


@pytest.mark.parametrize(("text", "message"), [
    ("model: m\nruntime:\n  slurm: {time: soon}\n", "/p/x.yaml:3: runtime.slurm.time:"),
    ("model: m\nruntime:\n  slurm: {extra: [--job-name=x]}\n", "/p/x.yaml:3: runtime.slurm.extra:"),
    ("model: m\nruntime:\n  slurm: {partiton: gpu}\n", "(did you mean partition?)"),
    ("model: m\nruntime:\n  docker: {image: vllm/vllm-openai}\n  slurm: {}\n",
     "slurm and a container together are not supported yet"),
])
def test_slurm_mistakes_name_the_field_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, P)
    assert any(message in problem for problem in info.value.problems), info.value.problems
