"""A server that runs as a Slurm batch job (`runtime: {slurm: ...}`, docs/slurm.md): started by
`sbatch` from its run directory, its status read from the job (pending with the reason, running
on which node, how it ended) and from `/health` on the node it landed on, its log the job's output
file (the run directory's `server.log`), stopped with `scancel` (SIGINT first). The job's id is
kept in the run (`slurm.json`), and a restarted vllmtui finds vllmtui's jobs again by their tag.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import LaunchSpec
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers import runs
from vllmtui.servers.endpoint import health
from vllmtui.servers.status import ServerStatus
from vllmtui.slurm import JobNotFound, JobState, cancel, endpoint, find_jobs, job_state, submit

JOB_FILE = "slurm.json"
"""In a run directory: the job that runs it."""
ENDED_STATE = {"COMPLETED": "exited", "CANCELLED": "stopped", "TIMEOUT": "exited", "PREEMPTED": "exited"}
"""How an ended job shows (any other end is a crash: FAILED, NODE_FAIL, OUT_OF_MEMORY, ...)."""


def job_label(job_id: str) -> str:
    """What the status's `session` says of a server in a job (it has no tmux session here)."""
    return f"slurm job {job_id}"


def _record(run_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((run_dir / JOB_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _recorded(run_dir: Path) -> str | None:
    job = _record(run_dir).get("job_id")
    return str(job) if job is not None else None


def current_job(settings: Settings, name: str, search: bool = True) -> tuple[str, Path | None] | None:
    """The job of the profile's newest run (kept in the state dir: a restarted vllmtui reads
    it), else, with `search`, an active job of vllmtui's found by its tag (another login node,
    a lost state dir): (job id, run dir or None)."""
    latest = runs.latest_run(settings, name)
    if latest is not None:
        job = _recorded(latest.path)
        if job is not None:
            return job, latest.path
    if not search:
        return None
    try:
        mine = [j for j in find_jobs() if j.profile == name and j.active]
    except VllmtuiError:  # no Slurm here (or its controller down): no job of it to find
        return None
    return (mine[-1].job_id, None) if mine else None


def refuse_running(settings: Settings, name: str) -> None:
    """VllmtuiError when a job of this server is still pending or running."""
    found = current_job(settings, name)
    if found is None:
        return
    with_state = _state_or_none(found[0])
    if with_state is not None and with_state.active:
        running = f"{job_label(found[0])} ({with_state.describe()})"
        raise VllmtuiError(f"{name} runs already as {running}: `vllmtui stop {name}` first")


def start(settings: Settings, loaded: LoadedProfile, spec: LaunchSpec, environ: dict[str, str],
          vllm_version: str | None = None) -> tuple[str, Path]:
    """Submit the server's job; (job id, run dir). Refused while a job of it is active."""
    profile = loaded.profile
    slurm = profile.runtime.slurm
    assert slurm is not None
    refuse_running(settings, profile.name)
    run_dir = runs.create_run(settings, profile, spec, loaded.path, vllm_version, notes={"runtime": "slurm"})
    try:
        job = submit(profile.name, spec.argv, environ, run_dir, slurm, port=profile.port, cwd=spec.cwd)
    except VllmtuiError:
        runs.remove_run(run_dir)
        raise
    runs.write_json(run_dir / JOB_FILE, {"job_id": job, "submitted": time.time()})
    return job, run_dir


def _state_or_none(job_id: str) -> JobState | None:
    try:
        return job_state(job_id)
    except JobNotFound:
        return None


def status(settings: Settings, loaded: LoadedProfile) -> ServerStatus:
    """The server's status from its job (and `/health` on its node while it runs)."""
    name = loaded.profile.name
    found = current_job(settings, name, search=False)  # every poll: no squeue of every job
    if found is None:
        return ServerStatus(name, "stopped", port=loaded.profile.port)
    job_id, run_dir = found
    label = job_label(job_id)
    try:
        job = job_state(job_id)
    except JobNotFound:  # ended long ago: the controller forgot it
        return ServerStatus(name, "stopped", detail=f"{label} has ended", run_dir=run_dir,
                            port=loaded.profile.port)
    except VllmtuiError as exc:  # the controller does not answer: say so, keep the job
        return ServerStatus(name, "unhealthy", detail=str(exc), session=label, run_dir=run_dir,
                            port=loaded.profile.port)
    started = job.start_time.timestamp() if job.start_time and job.state != "PENDING" else None
    base = ServerStatus(name, "starting", detail=job.describe(), session=label, run_dir=run_dir,
                        port=job.port or loaded.profile.port, started=started)
    if job.state == "PENDING":
        return replace(base, phase="pending")
    if job.active:
        host, port = endpoint(job, loaded.profile.port)
        reading = health(base_url(host, port), timeout=1.0)
        state = "ready" if reading.ok else "starting"
        return replace(base, state=state, host=host, port=port, health=reading)
    state = ENDED_STATE.get(job.state, "crashed")
    if run_dir is not None and _record(run_dir).get("stopped"):  # vllmtui stopped it: not a crash
        state = "stopped"
    return replace(base, state=state, exit_status=job.exit_code, session=None)


def stop(settings: Settings, name: str, force: bool = False, timeout: float = 30.0) -> tuple[str, float]:
    """Cancel the server's job (SIGINT first unless `force`); (what happened, seconds)."""
    found = current_job(settings, name)
    if found is None:
        raise VllmtuiError(f"{name} is not running (no Slurm job of it)")
    begin = time.monotonic()
    job = _state_or_none(found[0])
    if job is None or not job.active:
        return f"{name}: {job_label(found[0])} had already ended", 0.0
    if found[1] is not None:  # it is stopped on purpose: an end to show as stopped
        runs.write_json(found[1] / JOB_FILE, {**_record(found[1]), "stopped": time.time(), "force": force})
    ended = cancel(found[0], graceful=not force, timeout=timeout)
    how = ended.describe() if ended is not None else "ended"
    verb = "cancelled (SIGKILL)" if force else "stopped (SIGINT, then scancel)"
    return f"{name}: {job_label(found[0])} {verb}: {how}", time.monotonic() - begin
