"""Fixtures of the many-boxes tests: tests/support/ssh_hosts.py, and a real terminal for the
TUI (tests/support/terminal.py)."""

from tests.support.ssh_hosts import hosts_env, hosts_sshd  # noqa: F401 - the fixtures
from tests.support.terminal import terminal  # noqa: F401 - the fixture
