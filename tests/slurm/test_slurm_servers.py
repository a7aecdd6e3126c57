"""A profile with `runtime: {slurm: ...}` through vllmtui's own commands, on the real test
cluster (tests/support/slurm.py): start submits the job and waits until /health answers on the
node it landed on, status shows the job, logs are its output, a second start is refused, stop
cancels it (SIGINT first) and nothing is left."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from tests.support.helpers import STANDIN, free_port
from tests.support.slurm import SlurmCluster

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_a_profile_runs_as_a_slurm_job(slurm_cluster: SlurmCluster, write_profile: Callable[..., object],
                                       run_cli: Cli, cli_env: dict[str, str]) -> None:
    cli_env["SLURM_CONF"] = str(slurm_cluster.conf)
    write_profile("batch", model="standin-model", port=free_port(),
                  runtime={"command": [sys.executable, str(STANDIN)],
                           "slurm": {"partition": "debug", "time": "10"}},
                  env={"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.1"}, stop={"timeout": 5})
    started = run_cli("start", "batch", "--wait", "--timeout", "60", timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "submitted slurm job" in started.stdout and "is ready" in started.stdout, started.stdout
    try:
        (server,) = json.loads(run_cli("status", "batch", "--json", check=True).stdout)["servers"]
        assert server["state"] == "ready" and server["session"].startswith("slurm job ")
        assert "running on localhost" in server["detail"]
        logs = run_cli("logs", "batch", "-n", "50", check=True).stdout
        assert "Application startup complete" in logs, logs
        again = run_cli("start", "batch")
        assert again.returncode != 0 and "runs already as slurm job" in again.stderr, again.stderr
    finally:
        stopped = run_cli("stop", "batch", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "its Slurm job cancelled" in stopped.stdout
    (server,) = json.loads(run_cli("status", "batch", "--json", check=True).stdout)["servers"]
    assert server["state"] == "stopped", server
    assert "[shutdown] SIGINT received" in run_cli("logs", "batch", "-n", "50", check=True).stdout
