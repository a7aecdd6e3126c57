"""The TUI tests' own fixture: a real terminal (tests/support/terminal.py)."""

from tests.support.terminal import terminal  # noqa: F401 - the fixture
