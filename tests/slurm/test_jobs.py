"""The SLURM runtime against a real slurmctld + slurmd on localhost (tests/support/slurm.py):
a job that runs the stand-in vLLM server, from submit to a graceful stop; pending, failing and
stubborn jobs; finding vllmtui's jobs again from a fresh process; Slurm's own refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.helpers import ROOT, STANDIN, free_port, wait_for
from tests.support.slurm import NODE, SlurmCluster
from vllmtui.core.errors import VllmtuiError
from vllmtui.slurm import JobNotFound, JobState, SlurmError, SlurmSpec, cancel, endpoint, find_jobs, job_state
from vllmtui.slurm import jobs as slurm_jobs
from vllmtui.slurm.state import parse_scontrol

SECRET = "s3cret-key-never-in-the-script"


def standin_argv(port: int) -> list[str]:
    return [sys.executable, str(STANDIN), "standin-model", "--host", "127.0.0.1", "--port", str(port)]


def submit_standin(run_dir: Path, name: str, mode: str = "ok", spec: SlurmSpec | None = None,
                   port: int | None = None) -> tuple[str, int]:
    port = port or free_port()
    env = {"STANDIN_MODE": mode, "STANDIN_DELAY": "0.1", "VLLM_API_KEY": SECRET}
    job_id = slurm_jobs.submit(name, standin_argv(port), env, run_dir, spec or SlurmSpec(partition="debug"))
    return job_id, port


def wait_state(job_id: str, ok: Callable[[JobState], bool], what: str, timeout: float = 15.0) -> JobState:
    found: list[JobState] = []

    def check() -> bool:
        state = job_state(job_id)
        found[:] = [state]
        return ok(state)

    try:
        wait_for(check, timeout=timeout, interval=0.1, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last state: {found}") from None
    return found[0]


def standin_processes(port: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if str(STANDIN) in cmd and str(port) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(proc)
    return out


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def read_log(run_dir: Path) -> str:
    path = run_dir / slurm_jobs.LOG_NAME
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_job_serves_the_standin_and_stops_on_sigint(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    job_id, port = submit_standin(run_dir, "alpha")
    script = (run_dir / slurm_jobs.SCRIPT_NAME).read_text()
    assert SECRET not in script and "VLLM_API_KEY" in script

    running = wait_state(job_id, lambda s: s.state == "RUNNING", "the job to run")
    assert running.name == "vllmtui-alpha" and running.nodes == (NODE,) and running.batch_host == NODE
    assert running.profile == "alpha" and running.port == port and running.partition == "debug"
    assert running.start_time is not None and running.output == str(run_dir / "server.log")
    assert running.describe() == f"running on {NODE}"

    wait_for(lambda: "Application startup complete." in read_log(run_dir), timeout=15, what="the startup line")
    log = read_log(run_dir)
    assert f"vllmtui: job {job_id} (vllmtui-alpha)" in log and "Starting vLLM server on" in log
    assert SECRET not in log

    host, got_port = endpoint(running)
    assert (host, got_port) == ("127.0.0.1", port)  # the node's NodeAddr, the port of the tag
    assert httpx.get(f"http://{host}:{got_port}/health", timeout=5).status_code == 200

    (server,) = standin_processes(port)
    assert server.environ()["VLLM_API_KEY"] == SECRET  # exported by sbatch, not written down

    final = cancel(job_id, graceful=True, timeout=10)
    assert final is not None and final.state == "COMPLETED" and final.exit_code == 0, final
    assert "[shutdown] SIGINT received" in read_log(run_dir)
    assert final.end_time is not None and not final.active
    assert standin_processes(port) == [] and not listening(port)
    assert job_id not in slurm_cluster.job_ids()


def test_a_restarted_vllmtui_finds_its_jobs_again(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id, port = submit_standin(tmp_path / "run", "beta", spec=SlurmSpec(extra=["--hold"]))
    other = slurm_cluster.cmd("sbatch", "--parsable", "--hold", "-J", "vllmtui-not-ours", "--wrap", "true").stdout.strip()
    # a fresh interpreter, as after a restart: nothing in memory, only what Slurm knows
    code = ("import json; from vllmtui.slurm import find_jobs\n"
            "print(json.dumps([[j.job_id, j.profile, j.port, j.state, j.reason] for j in find_jobs()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30, check=True)
    found = {row[0]: row for row in json.loads(done.stdout)}
    assert found[job_id] == [job_id, "beta", port, "PENDING", "JobHeldUser"]
    assert other not in found  # named like ours, but without vllmtui's tag
    assert [j.job_id for j in find_jobs(user="nobody-here")] == []
    for jid in (job_id, other):
        final = cancel(jid)
        assert final is not None and final.state == "CANCELLED"


@pytest.mark.parametrize(("spec", "reasons", "words"), [
    # Slurm says PartitionConfig at submit, PartitionNodeLimit once the scheduler has looked
    (SlurmSpec(nodes=2), {"PartitionConfig", "PartitionNodeLimit"}, "nodes"),
    (SlurmSpec(extra=["--hold"]), {"JobHeldUser"}, "scontrol release"),
])
def test_a_pending_job_shows_why(slurm_cluster: SlurmCluster, tmp_path: Path, spec: SlurmSpec,
                                 reasons: set[str], words: str) -> None:
    job_id, _ = submit_standin(tmp_path / "run", "pending", spec=spec)
    state = wait_state(job_id, lambda s: s.reason is not None, "a pending reason")
    assert state.state == "PENDING" and state.reason in reasons and state.nodes == ()
    assert state.describe().startswith(f"pending: {state.reason} (") and words in state.describe()
    with pytest.raises(VllmtuiError, match=f"is PENDING \\({state.reason}\\): its server has no address"):
        endpoint(state)
    final = cancel(job_id, graceful=True, timeout=10)
    assert final is not None and final.state == "CANCELLED"
    assert not (tmp_path / "run" / "server.log").exists()  # it never ran


def test_a_job_waits_for_resources_then_runs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    first, first_port = submit_standin(tmp_path / "one", "first", spec=SlurmSpec(extra=["--exclusive"]))
    wait_state(first, lambda s: s.state == "RUNNING", "the first job to run")
    second, second_port = submit_standin(tmp_path / "two", "second", spec=SlurmSpec(extra=["--exclusive"]))
    waiting = wait_state(second, lambda s: s.reason is not None, "the second job's reason")
    assert (waiting.state, waiting.reason) == ("PENDING", "Resources")
    assert "waiting for nodes" in waiting.describe()
    cancel(first, timeout=10)
    running = wait_state(second, lambda s: s.state == "RUNNING", "the second job to start", timeout=30)
    assert running.nodes == (NODE,)
    wait_for(lambda: listening(second_port), timeout=15, what="the second server")
    assert not listening(first_port)
    final = cancel(second, timeout=10)
    assert final is not None and final.state == "COMPLETED"


def test_a_crashing_server_shows_failed_with_its_exit_code(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id, _ = submit_standin(tmp_path / "run", "oom", mode="crash-oom")
    state = wait_state(job_id, lambda s: not s.active, "the job to end")
    assert (state.state, state.exit_code, state.signal, state.reason) == ("FAILED", 1, None, "NonZeroExitCode")
    assert state.describe() == "failed: exit code 1"
    assert "CUDA out of memory" in read_log(tmp_path / "run")
    assert cancel(job_id) == state  # an ended job is left as it is


def test_a_variable_that_was_not_exported_fails_the_job_with_its_name(slurm_cluster: SlurmCluster,
                                                                      tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = slurm_jobs.job_script("noenv", ["true"], ["VLLMTUI_TEST_NEVER_SET"], run_dir, SlurmSpec())
    (run_dir / "job.sbatch").write_text(script)
    job_id = slurm_cluster.cmd("sbatch", "--parsable", str(run_dir / "job.sbatch")).stdout.strip()
    state = wait_state(job_id, lambda s: not s.active, "the job to end")
    assert (state.state, state.exit_code) == ("FAILED", slurm_jobs.MISSING_ENV_EXIT)
    assert "not exported to the job: VLLMTUI_TEST_NEVER_SET" in read_log(run_dir)


def test_a_server_that_ignores_sigint_is_cancelled_after_the_timeout(slurm_cluster: SlurmCluster,
                                                                     tmp_path: Path) -> None:
    job_id, port = submit_standin(tmp_path / "run", "stubborn", mode="ignore-sigint")
    wait_for(lambda: listening(port), timeout=15, what="the stand-in to listen")
    started = time.monotonic()
    final = cancel(job_id, graceful=True, timeout=1.5)
    assert time.monotonic() - started >= 1.5  # it waited for the SIGINT first
    assert final is not None and final.state == "CANCELLED"
    assert "SIGINT" not in read_log(tmp_path / "run") and f"JOB {job_id} ON {NODE} CANCELLED" in read_log(tmp_path / "run")
    assert standin_processes(port) == [] and not listening(port)


def test_a_forced_cancel_skips_sigint(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id, port = submit_standin(tmp_path / "run", "forced")
    wait_for(lambda: listening(port), timeout=15, what="the stand-in to listen")
    final = cancel(job_id, graceful=False)
    assert final is not None and final.state == "CANCELLED"
    assert "SIGINT received" not in read_log(tmp_path / "run")
    assert standin_processes(port) == []


def test_scontrol_reads_the_same_job_as_squeue(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id, _ = submit_standin(tmp_path / "run", "twice", mode="crash-oom")
    state = wait_state(job_id, lambda s: not s.active, "the job to end")
    shown = slurm_cluster.cmd("scontrol", "show", "job", job_id, "-o").stdout
    (parsed,) = parse_scontrol(shown)
    assert parsed == state


def test_slurm_refusals_are_errors_with_slurms_words(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    with pytest.raises(SlurmError, match="sbatch failed: .*Invalid partition name specified"):
        submit_standin(tmp_path / "run", "nowhere", spec=SlurmSpec(partition="no-such-partition"))
    with pytest.raises(JobNotFound, match="Slurm knows no job 999999"):
        job_state("999999")
    assert cancel("999999") is None


def test_a_controller_that_does_not_answer_is_not_a_missing_job(slurm_cluster: SlurmCluster, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dead = tmp_path / "dead.conf"
    lines = slurm_cluster.conf.read_text().splitlines()
    changed = {"SlurmctldPort": str(free_port()), "MessageTimeout": "1"}  # nothing listens; give up soon
    dead.write_text("\n".join(f"{line.split('=')[0]}={changed[line.split('=')[0]]}"
                              if line.split("=")[0] in changed else line for line in lines) + "\n")
    monkeypatch.setenv("SLURM_CONF", str(dead))
    with pytest.raises(SlurmError, match="squeue: the Slurm controller does not answer .*scontrol ping"):
        job_state("1")
    with pytest.raises(SlurmError, match="does not answer"):
        find_jobs()
