"""The one exception root. Every message is written for the user, not the developer."""

from __future__ import annotations


class VllmtuiError(Exception):
    """A failure the user can act on; the CLI prints it, the TUI notifies it."""

    exit_code = 1


class UsageError(VllmtuiError):
    """Bad input: an invalid profile, an unknown name, a wrong option (exit code 2)."""

    exit_code = 2


class ProfileError(UsageError):
    """A profile file that cannot be used; the message names file, line, field and the fix."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
