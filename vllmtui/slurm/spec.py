"""The profile's `slurm:` section lives with the profile model (`profiles/slurm_spec.py`: the
profile holds it); re-exported here for the SLURM runtime's own code."""

from vllmtui.profiles.slurm_spec import (
    OWN_OPTIONS,
    SHORT_OPTIONS,
    TIME_FORMS,
    SlurmSpec,
    check_time,
    option_name,
)

__all__ = ["OWN_OPTIONS", "SHORT_OPTIONS", "TIME_FORMS", "SlurmSpec", "check_time", "option_name"]
