"""Running Slurm's client commands (sbatch, squeue, scontrol, scancel, sacct).

Every failure becomes a `VllmtuiError` whose message says what to do: the command is not
installed, the commands find no cluster configuration, the controller does not answer, or
the command's own error text (sbatch's `Batch job submission failed: ...`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from vllmtui.core.errors import VllmtuiError

INSTALL_HINT = ("install Slurm's client commands (Debian/Ubuntu: apt-get install slurm-client;"
                " RHEL: dnf install slurm) or run vllmtui on a login node of the cluster")


class SlurmError(VllmtuiError):
    """A Slurm command failed; `stderr` keeps its own words."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.stderr = stderr


def explain(program: str, stderr: str) -> str:
    text = stderr.strip()
    lowered = text.lower()
    if any(m in lowered for m in ("could not establish a configuration source", "fetch_config",
                                  "unable to process configuration file")):
        return (f"{program}: Slurm's commands find no cluster configuration: set SLURM_CONF to the"
                " cluster's slurm.conf, or run vllmtui on a login node of the cluster")
    if "unable to contact slurm controller" in lowered or "connection refused" in lowered:
        return (f"{program}: the Slurm controller does not answer ({_last_line(text)}): check"
                " `scontrol ping`, or ask the cluster's admins")
    if "munge" in lowered and ("socket" in lowered or "credential" in lowered):
        return (f"{program}: Slurm's authentication (munge) failed ({_last_line(text)}): is munged"
                " running on this machine, with the cluster's key?")
    return f"{program} failed: {_last_line(text) or 'no error message'}"


def _last_line(text: str) -> str:
    """The most telling line of an error: sbatch prints the reason last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0,
        ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command; its completed process, or a `SlurmError` that says why not.

    `env` is added to this process's environment (sbatch --export=ALL carries it to the job).
    """
    program = argv[0]
    if shutil.which(program) is None:
        raise SlurmError(f"{program} not found: {INSTALL_HINT}")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    conf = full_env.get("SLURM_CONF")
    if conf and not os.path.exists(conf):  # the commands would retry for 60 s, then fail
        raise SlurmError(f"SLURM_CONF names {conf}, which does not exist: point it at the cluster's"
                         " slurm.conf, or unset it to use the default configuration")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{program} did not answer within {timeout:g} s: is the Slurm controller"
                         " overloaded or down? (`scontrol ping`)") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {program}: {exc.strerror or exc}") from None
    if done.returncode not in ok_codes:
        raise SlurmError(explain(program, done.stderr or done.stdout), done.stderr)
    return done
