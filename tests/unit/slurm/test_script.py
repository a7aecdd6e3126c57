"""The batch script `job_script` writes: its #SBATCH lines, the command, the environment check.
The script is run by bash here (its #SBATCH lines are comments to bash), as slurmd would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.slurm.jobs import MISSING_ENV_EXIT, job_script, port_of
from vllmtui.slurm.spec import SlurmSpec

ARGV = ["/opt/vllm/bin/vllm", "serve", "Qwen/Qwen2.5-7B-Instruct", "--host", "0.0.0.0", "--port", "8123"]


def directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_the_directives_name_tag_and_log_the_job(tmp_path: Path) -> None:
    spec = SlurmSpec(partition="gpu", nodes=2, gpus_per_node="h200:8", time="1-00:00:00", account="proj",
                     extra=["--mem=0", "--exclusive"])
    script = job_script("qwen", ARGV, [], tmp_path, spec)
    assert script.startswith("#!/bin/bash\n")
    assert directives(script) == [
        "--job-name=vllmtui-qwen", "--comment=vllmtui:qwen:8123", f'--output="{tmp_path}/server.log"',
        "--open-mode=append", "--export=ALL", "--partition=gpu", "--nodes=2", "--gpus-per-node=h200:8",
        "--time=1-00:00:00", "--account=proj", "--mem=0", "--exclusive", "--signal=B:INT@60"]
    assert script.rstrip().splitlines()[-1] == "exec " + " ".join(ARGV)


def test_no_time_limit_no_early_signal_and_a_users_signal_wins(tmp_path: Path) -> None:
    assert not any(d.startswith("--signal") for d in directives(job_script("a", ARGV, [], tmp_path, SlurmSpec())))
    mine = job_script("a", ARGV, [], tmp_path, SlurmSpec.model_validate({"time": 60, "extra": ["--signal=B:USR1@120"]}))
    assert [d for d in directives(mine) if d.startswith("--signal")] == ["--signal=B:USR1@120"]


def test_the_port_comes_from_the_command_line_or_is_given() -> None:
    assert port_of(["vllm", "serve", "m", "--port", "9001"]) == 9001
    assert port_of(["vllm", "serve", "m", "--port=9002"]) == 9002
    assert port_of(["vllm", "serve", "m"]) == 8000
    script = job_script("a", ["vllm", "serve", "m"], [], Path("/runs/a"), SlurmSpec(), port=7000)
    assert "--comment=vllmtui:a:7000" in directives(script)


def test_percent_signs_in_the_run_dir_are_not_slurm_patterns() -> None:
    script = job_script("a", ARGV, [], Path("/runs/50%/x%j"), SlurmSpec())
    assert '--output="/runs/50%%/x%%j/server.log"' in directives(script)


def test_a_run_dir_with_spaces_is_quoted_and_one_with_a_quote_is_refused() -> None:
    assert '--output="/runs/my runs/server.log"' in directives(job_script("a", ARGV, [], Path("/runs/my runs"),
                                                                           SlurmSpec()))
    with pytest.raises(UsageError, match="a path with a double quote or a line break"):
        job_script("a", ARGV, [], Path('/runs/say "hi"'), SlurmSpec())


def test_env_names_are_written_never_values_and_bad_names_are_refused(tmp_path: Path) -> None:
    script = job_script("a", ARGV, ["VLLM_API_KEY", "HF_HOME", "HF_HOME"], tmp_path, SlurmSpec())
    assert "for var in HF_HOME VLLM_API_KEY; do" in script
    for bad in ("1ABC", "A-B", "A B", "X;rm -rf /", "", "É"):
        with pytest.raises(UsageError, match="not an environment variable name"):
            job_script("a", ARGV, [bad], tmp_path, SlurmSpec())
    with pytest.raises(UsageError, match="command line is empty"):
        job_script("a", [], [], tmp_path, SlurmSpec())


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    base = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "gpu[01-02]"}
    return subprocess.run(["bash", str(path)], capture_output=True, text=True, env={**base, **env}, timeout=30)


def test_the_script_runs_the_command_as_given_with_the_exported_env(tmp_path: Path) -> None:
    code = "import os, sys; print(sys.argv[1:], os.environ['SECRET_NAME'], os.getcwd())"
    argv = [sys.executable, "-c", code, "two words", "it's", "$HOME", "`x`", "--port", "8000"]
    script = job_script("a", argv, ["SECRET_NAME"], tmp_path, SlurmSpec(), cwd=tmp_path / "work dir")
    assert "s3cret" not in script
    (tmp_path / "work dir").mkdir()
    done = run_script(script, tmp_path, {"SECRET_NAME": "s3cret"})
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("vllmtui: job 42 (vllmtui-a) on ") and first.endswith("(nodes: gpu[01-02]), port 8000")
    assert second == f"{['two words', 'it' + chr(39) + 's', '$HOME', '`x`', '--port', '8000']} s3cret {tmp_path}/work dir"


def test_the_script_fails_with_the_names_that_were_not_exported(tmp_path: Path) -> None:
    script = job_script("a", [sys.executable, "-c", "print('started')"], ["HF_HOME", "VLLM_API_KEY"], tmp_path,
                        SlurmSpec())
    done = run_script(script, tmp_path, {"HF_HOME": ""})  # set but empty counts as exported
    assert done.returncode == MISSING_ENV_EXIT
    assert "vllmtui: not exported to the job: VLLM_API_KEY (submit with sbatch --export=ALL)" in done.stderr
    assert "started" not in done.stdout
