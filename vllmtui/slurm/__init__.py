"""The SLURM runtime (issue 17): a server as a batch job on a cluster.

`spec` is the profile's `runtime: {slurm: {...}}` section; `jobs` writes the batch script,
submits it, reads its state, finds vllmtui's jobs again after a restart, stops them (SIGINT
first) and says where the server listens; `state` parses what Slurm's commands print;
`commands` runs them and turns their failures into messages a user can act on.
Imports `vllmtui.core` only (see docs/slurm.md).
"""

from __future__ import annotations

from vllmtui.slurm.commands import SlurmError
from vllmtui.slurm.jobs import (
    JOB_PREFIX,
    JobNotFound,
    cancel,
    endpoint,
    find_jobs,
    job_script,
    job_state,
    submit,
)
from vllmtui.slurm.spec import SlurmSpec
from vllmtui.slurm.state import JobState

__all__ = ["JOB_PREFIX", "JobNotFound", "JobState", "SlurmError", "SlurmSpec", "cancel", "endpoint",
           "find_jobs", "job_script", "job_state", "submit"]
