"""A vLLM server as a Slurm batch job: the script, submit, state, find again, stop, endpoint.

The job is named `vllmtui-PROFILE` and its comment is `vllmtui:PROFILE:PORT`, so `find_jobs`
finds the jobs vllmtui submitted (this user's, by name and tag) after any restart, with the
port the server listens on. The script `exec`s the server, so the server IS the batch step:
`scancel --signal=INT --full` reaches it the way Ctrl-C would (vLLM shuts down cleanly on
SIGINT). The profile's environment, secrets included, is never written into the script: sbatch
carries it from the submitting environment (`--export=ALL`); the script only checks that every
variable it needs arrived.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.slurm import commands
from vllmtui.slurm.spec import SlurmSpec, option_name
from vllmtui.slurm.state import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    JobState,
    make_tag,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    scontrol_pairs,
)

JOB_PREFIX = "vllmtui-"
LOG_NAME = "server.log"  # the job's output file in the run directory (as a tmux server's log)
SCRIPT_NAME = "job.sbatch"
MISSING_ENV_EXIT = 78  # the script's exit code when a variable it needs was not exported
DEFAULT_PORT = 8000  # vLLM's


class JobNotFound(VllmtuiError):
    """Slurm does not know the job (any more)."""


def job_name(profile: str) -> str:
    return f"{JOB_PREFIX}{profile}"


def port_of(argv: Sequence[str]) -> int:
    """The port a vLLM command line listens on (`--port N` or `--port=N`), else vLLM's 8000."""
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv) and argv[i + 1].isdigit():
            return int(argv[i + 1])
        if arg.startswith("--port=") and arg[7:].isdigit():
            return int(arg[7:])
    return DEFAULT_PORT


def _directive_path(path: Path, what: str) -> str:
    text = str(path)
    if any(c in text for c in '"\n\r'):
        raise UsageError(f"{what} {text!r}: a path with a double quote or a line break cannot be"
                         " written into a batch script; choose another directory")
    return text


def job_script(name: str, argv: Sequence[str], env_names: Sequence[str], run_dir: Path, spec: SlurmSpec,
               *, port: int | None = None, cwd: Path | None = None) -> str:
    """The batch script that runs `argv` as the job `vllmtui-NAME`, output to RUN_DIR/server.log.

    `env_names` are the variables the server needs (the profile's env, the API key's variable):
    only their names are written; their values come with sbatch's --export=ALL.
    """
    if not argv:
        raise UsageError("nothing to run: the server's command line is empty")
    bad = [n for n in env_names if not n or not (n[0].isalpha() or n[0] == "_")
           or not all(c.isalnum() or c == "_" for c in n) or not n.isascii()]
    if bad:
        raise UsageError(f"not an environment variable name: {', '.join(map(repr, bad))}")
    log = _directive_path(run_dir / LOG_NAME, "run directory").replace("%", "%%")  # %j & co. in --output
    listen = port if port is not None else port_of(argv)
    directives = [f"--job-name={job_name(name)}", f"--comment={make_tag(name, listen)}",
                  f'--output="{log}"', "--open-mode=append", "--export=ALL", *spec.sbatch_options()]
    if spec.time and not any(option_name(o) == "--signal" for o in spec.extra):
        directives.append("--signal=B:INT@60")  # a clean SIGINT a minute before the time limit
    names = sorted(set(env_names))
    lines = [
        "#!/bin/bash",
        f"# vllmtui: the vLLM server of profile {name}, as a Slurm batch job (written by vllmtui).",
        "# Environment: sbatch --export=ALL carries it from the submitting process; no value is here.",
        *[f"#SBATCH {d}" for d in directives],
        "",
        f'echo "vllmtui: job ${{SLURM_JOB_ID:-?}} ({job_name(name)}) on $(hostname)'
        f' (nodes: ${{SLURM_JOB_NODELIST:-?}}), port {listen}"',
    ]
    if names:
        lines += [
            "missing=''",
            f"for var in {' '.join(names)}; do",
            '  [ -n "${!var+set}" ] || missing="$missing $var"',
            "done",
            'if [ -n "$missing" ]; then',
            '  echo "vllmtui: not exported to the job:$missing (submit with sbatch --export=ALL)" >&2',
            f"  exit {MISSING_ENV_EXIT}",
            "fi",
        ]
    if cwd is not None:
        lines.append(f"cd {shlex.quote(str(cwd))} || exit 1")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines) + "\n"


def submit(name: str, argv: Sequence[str], env: Mapping[str, str], run_dir: Path, spec: SlurmSpec,
           *, port: int | None = None, cwd: Path | None = None, timeout: float = 60.0) -> str:
    """Write RUN_DIR/job.sbatch and submit it; the job id. sbatch's refusal is the error's text."""
    script = job_script(name, argv, list(env), run_dir, spec, port=port, cwd=cwd)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SCRIPT_NAME
    path.write_text(script)
    path.chmod(0o700)
    # --export on the command line too: it outranks a site's SBATCH_EXPORT=NONE
    done = commands.run(["sbatch", "--parsable", "--export=ALL", str(path)], env=env, timeout=timeout)
    job_id = done.stdout.strip().split(";")[0]  # "ID" or "ID;CLUSTER"
    if not job_id.isdigit() and not job_id.replace("_", "").isdigit():
        raise VllmtuiError(f"sbatch answered {done.stdout.strip()!r} instead of a job id")
    return job_id


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def job_state(job_id: str) -> JobState:
    """The job's state from the controller (squeue, else scontrol), else from accounting (sacct).

    Raises `JobNotFound` once no source knows it (the controller forgets a job MinJobAge after
    it ended, 300 s by default, and a cluster without accounting keeps no record).
    """
    job_id = str(job_id)
    done = commands.run(["squeue", "-h", "-t", "all", "-j", job_id, "-O", SQUEUE_FORMAT], ok_codes=(0, 1))
    found = [j for j in parse_squeue(done.stdout) if j.job_id == job_id]
    if found:
        return found[0]
    if _unknown_job(done):
        return _accounted(job_id)
    if done.returncode != 0 and "format" not in done.stderr.lower():
        raise commands.SlurmError(commands.explain("squeue", done.stderr), done.stderr)
    # a squeue without these -O fields: the same facts from scontrol
    shown = commands.run(["scontrol", "show", "job", job_id, "-o"], ok_codes=(0, 1))
    found = [j for j in parse_scontrol(shown.stdout) if j.job_id == job_id]
    if found:
        return found[0]
    if shown.returncode != 0 and not _unknown_job(shown):
        raise commands.SlurmError(commands.explain("scontrol", shown.stderr), shown.stderr)
    return _accounted(job_id)


def _unknown_job(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode != 0 and "invalid job id" in done.stderr.lower()


def _accounted(job_id: str) -> JobState:
    accounted = _sacct(job_id)
    if accounted is not None:
        return accounted
    raise JobNotFound(f"Slurm knows no job {job_id}: it ended over MinJobAge ago (and the cluster keeps"
                      " no accounting) or it never existed")


def _sacct(job_id: str) -> JobState | None:
    try:
        done = commands.run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", ",".join(SACCT_FIELDS)],
                            ok_codes=(0, 1))
    except VllmtuiError:
        return None  # no sacct, or no accounting storage ("Slurm accounting storage is disabled")
    found = [j for j in parse_sacct(done.stdout) if j.job_id == job_id]
    return found[0] if found else None


def find_jobs(prefix: str = JOB_PREFIX, user: str | None = None) -> list[JobState]:
    """This user's jobs that vllmtui submitted (name starts with `prefix`, comment is its tag),
    pending, running and recently ended, oldest first: what a restarted vllmtui finds again."""
    done = commands.run(["squeue", "-h", "-t", "all", "-u", user or _user(), "-O", SQUEUE_FORMAT])
    jobs = [j for j in parse_squeue(done.stdout) if j.name.startswith(prefix) and j.profile is not None]
    return sorted(jobs, key=lambda j: (int(j.job_id.split("_")[0]) if j.job_id.split("_")[0].isdigit()
                                       else 0, j.job_id))


def _state_or_gone(job_id: str) -> JobState | None:
    try:
        return job_state(job_id)
    except JobNotFound:
        return None


def _wait_ended(job_id: str, timeout: float, poll: float) -> JobState | None:
    """Poll until the job is over; its last state (None: forgotten), or the active one at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        state = _state_or_gone(job_id)
        if state is None or not state.active or time.monotonic() >= deadline:
            return state
        time.sleep(poll)


def cancel(job_id: str, graceful: bool = True, timeout: float = 30.0, *, kill_timeout: float = 60.0,
           poll: float = 0.25) -> JobState | None:
    """Stop the job and verify it ended; its final state (None if Slurm forgot it already).

    Graceful: SIGINT to the batch step and everything in it (`scancel --signal=INT --full`),
    wait up to `timeout` s, then `scancel` (Slurm's SIGTERM, then SIGKILL after its KillWait).
    A pending job has nothing to signal: it is cancelled at once. Raises if the job is still
    there after `kill_timeout` more seconds.
    """
    job_id = str(job_id)
    state = _state_or_gone(job_id)
    if state is None or not state.active:
        return state
    if graceful and state.state != "PENDING":
        # "Job can not be altered now" (exit 1): it just ended, or has not started its script yet
        sent = commands.run(["scancel", "--signal=INT", "--full", job_id], ok_codes=tuple(range(256)))
        state = _wait_ended(job_id, timeout if sent.returncode == 0 else 0.0, poll)
        if state is None or not state.active:
            return state
    commands.run(["scancel", job_id])
    state = _wait_ended(job_id, kill_timeout, poll)
    if state is not None and state.active:
        raise VllmtuiError(f"job {job_id} is still {state.state} {kill_timeout:g} s after scancel: see"
                           f" `scontrol show job {job_id}`; the node may need an administrator")
    return state


def node_address(node: str) -> str:
    """How this machine reaches a node: its NodeAddr (scontrol show node), else its name."""
    try:
        done = commands.run(["scontrol", "show", "node", node, "-o"])
    except VllmtuiError:
        return node
    address = scontrol_pairs(done.stdout.strip()).get("NodeAddr", "")
    return address if address and address not in ("(null)", "N/A") else node


def endpoint(job: JobState, port: int | None = None) -> tuple[str, int]:
    """(host, port) where the job's server listens: the batch host's address and the port of
    its tag (or `port`). Raises `VllmtuiError` while the job has no node."""
    if job.state != "RUNNING" or not job.host:
        why = f" ({job.reason})" if job.reason and job.state == "PENDING" else ""
        raise VllmtuiError(f"job {job.job_id} is {job.state}{why}: its server has no address"
                           " until the job runs")
    listen = port if port is not None else job.port
    if listen is None:
        raise VllmtuiError(f"job {job.job_id} has no vllmtui tag with its port: give the port")
    return node_address(job.host), listen
