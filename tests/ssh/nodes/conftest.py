"""Fixtures of the multi-node tests: the hosts of tests/support/ssh_hosts.py."""

from tests.support.ssh_hosts import hosts_env, hosts_sshd  # noqa: F401 - the fixtures
