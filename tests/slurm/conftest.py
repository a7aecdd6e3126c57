"""Fixtures of the SLURM runtime's tests: a real one-node cluster on localhost (tests/support/slurm.py)."""

from tests.support.slurm import slurm_cluster  # noqa: F401 - the fixture
