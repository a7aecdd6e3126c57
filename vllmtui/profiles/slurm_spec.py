"""A profile's `runtime: {slurm: {...}}` section: where and how big the batch job is.

```yaml
runtime:
  slurm:
    partition: gpu          # sbatch --partition (default: the cluster's default partition)
    nodes: 1                # sbatch --nodes
    gpus_per_node: 4        # sbatch --gpus-per-node (a count, or TYPE:COUNT such as a100:4)
    time: "12:00:00"        # sbatch --time: minutes, HH:MM:SS, D-HH:MM:SS, ... or UNLIMITED
    account: my-project     # sbatch --account
    extra: [--mem=64G, --qos=high, --exclusive]   # any other sbatch option, one per item
```

This module depends on pydantic only, like `profiles/tunnel_spec.py`, so the profile model can
hold it wherever the layers put it.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# a partition or account name: what Slurm accepts in slurm.conf / sacctmgr
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GPUS_RE = re.compile(r"^(?:([A-Za-z0-9][A-Za-z0-9_.-]*):)?([0-9]+)$")
_OPTION_RE = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*(?:[= ].*)?$", re.DOTALL)

TIME_FORMS = ("minutes (90)", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS", "UNLIMITED")

# sbatch options vllmtui writes itself (name -> why); the short spellings map to the long ones
OWN_OPTIONS: dict[str, str] = {
    "--job-name": "vllmtui names the job vllmtui-PROFILE (that is how it finds the job again)",
    "--output": "vllmtui writes the job's output to the run directory's server.log",
    "--error": "vllmtui writes the job's output to the run directory's server.log",
    "--open-mode": "vllmtui appends to the run directory's server.log",
    "--comment": "vllmtui tags its jobs with the comment (that is how it finds them again)",
    "--parsable": "vllmtui reads sbatch's answer itself",
    "--export": "vllmtui exports the profile's env (and secrets) from the submitting environment",
    "--chdir": "vllmtui runs the job in the profile's working directory",
    "--wrap": "vllmtui writes the batch script itself",
    "--partition": "use the slurm section's `partition` field",
    "--nodes": "use the slurm section's `nodes` field",
    "--gpus-per-node": "use the slurm section's `gpus_per_node` field",
    "--time": "use the slurm section's `time` field",
    "--account": "use the slurm section's `account` field",
}
SHORT_OPTIONS = {"-J": "--job-name", "-o": "--output", "-e": "--error", "-D": "--chdir", "-p": "--partition",
                 "-N": "--nodes", "-t": "--time", "-A": "--account"}


def check_time(value: Any) -> str | None:
    """A Slurm time limit, returned as sbatch's --time value; a clear message otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not a time limit: write {', '.join(TIME_FORMS)}")
    if isinstance(value, int | float):
        if value < 1:
            raise ValueError(f"{value!r} minutes is not a time limit: give at least 1 minute")
        return str(int(value))
    text = str(value).strip()
    if text.lower() in ("unlimited", "infinite"):
        return "UNLIMITED"
    if not _time_ok(text):
        raise ValueError(f"{value!r} is not a Slurm time limit: write {', '.join(TIME_FORMS)},"
                         " e.g. '12:00:00' or '2-00:00:00'")
    return text


def _time_ok(text: str) -> bool:
    days, dash, rest = text.partition("-")
    if dash:
        if not days.isdigit() or not rest:
            return False
        parts = rest.split(":")  # D-HH, D-HH:MM, D-HH:MM:SS
        limits = [24, 60, 60][: len(parts)]
    else:
        parts = text.split(":")  # MM, MM:SS, HH:MM:SS
        limits = {1: [10**9], 2: [10**9, 60], 3: [10**9, 60, 60]}.get(len(parts), [])
    if not parts or len(parts) > 3 or len(limits) != len(parts):
        return False
    if not all(p.isdigit() for p in parts):
        return False
    numbers = [int(p) for p in parts]
    if not all(n < limit for n, limit in zip(numbers, limits, strict=True)):
        return False
    return any(numbers) or (bool(dash) and int(days) > 0)


def option_name(option: str) -> str:
    """The long name of an sbatch option as written in `extra`: `-J x` -> --job-name."""
    name = option.split("=", 1)[0].split(None, 1)[0]
    if not name.startswith("--") and len(name) > 2:  # -Jname
        name = name[:2]
    return SHORT_OPTIONS.get(name, name)


class _Strict(BaseModel):
    # the profile models' settings (profiles/model.py): unknown keys and inf/nan are errors
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SlurmSpec(_Strict):
    """Where the server's batch job runs and what it asks for."""

    partition: str | None = None
    nodes: int = Field(default=1, ge=1, le=100_000)
    gpus_per_node: str | None = None
    time: str | None = None
    account: str | None = None
    extra: list[str] = Field(default_factory=list)

    @field_validator("nodes", mode="before")
    @classmethod
    def _whole_nodes(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not a number of nodes: write a whole number from 1, e.g. 2")
        return value

    @field_validator("partition", "account")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a Slurm name: letters, digits, '_', '.', '-'"
                             " (see `sinfo -s` for partitions, `sacctmgr show assoc user=$USER`"
                             " for accounts)")
        return value

    @field_validator("gpus_per_node", mode="before")
    @classmethod
    def _gpus(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{value!r} is not a GPU count: write a whole number (4) or TYPE:COUNT (a100:4)")
        text = str(int(value)) if isinstance(value, int | float) else str(value).strip()
        match = _GPUS_RE.match(text)
        if not match:
            raise ValueError(f"{value!r} is not a GPU count: write a whole number (4) or TYPE:COUNT (a100:4)")
        if int(match.group(2)) < 1:
            raise ValueError("gpus_per_node must be at least 1; leave it out for a job without GPUs")
        return text

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return check_time(value)

    @field_validator("extra", mode="before")
    @classmethod
    def _split_extra(cls, value: Any) -> Any:
        if isinstance(value, str):  # `extra: "--mem=64G --exclusive"`
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split {value!r} into options: {exc}") from None
        return value

    @field_validator("extra")
    @classmethod
    def _options(cls, value: list[str]) -> list[str]:
        for item in value:
            if "\n" in item or "\r" in item:
                raise ValueError(f"{item!r}: an option cannot span lines")
            if not _OPTION_RE.match(item):
                raise ValueError(f"{item!r} is not an sbatch option: write each option with its value"
                                 " as one item, e.g. --mem=64G or --constraint=a100")
            name = option_name(item)
            if name in OWN_OPTIONS:
                raise ValueError(f"{item}: vllmtui sets {name} itself ({OWN_OPTIONS[name]})")
        return value

    def sbatch_options(self) -> list[str]:
        """The sbatch options of this section, in `--name=value` form."""
        options = []
        if self.partition:
            options.append(f"--partition={self.partition}")
        options.append(f"--nodes={self.nodes}")
        if self.gpus_per_node:
            options.append(f"--gpus-per-node={self.gpus_per_node}")
        if self.time:
            options.append(f"--time={self.time}")
        if self.account:
            options.append(f"--account={self.account}")
        return options + list(self.extra)
