"""A real terminal for the TUI: `vllmtui` in a pane of a second, isolated tmux server (the
"user's terminal"), driven by send-keys and read by capture-pane (what Pilot cannot do:
attaching suspends the app and hands the terminal over)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


class Terminal:
    """A pane of its own tmux server, running `vllmtui` with the test's environment."""

    def __init__(self, env: dict[str, str], cwd: str, width: int = 100, height: int = 30):
        self.cwd = cwd  # not the checkout: its profiles/ would be found too
        self.socket = f"vllmtui-term-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.size = (width, height)

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        ).stdout

    def launch(self) -> None:
        exports = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in self.env.items() if k.startswith("VLLMTUI_")
        )
        # a user over plain SSH: not inside tmux, so `a` runs `tmux attach`
        command = f"unset TMUX; export {exports} TERM=xterm-256color; exec {sys.executable} -m vllmtui"
        if self._has():
            self.tmux("respawn-pane", "-k", "-t", "term", command)
        else:
            subprocess.run(
                ["tmux", "-L", self.socket, "new-session", "-d", "-s", "term",
                 "-x", str(self.size[0]), "-y", str(self.size[1]), "-c", self.cwd, command],
                check=True,
            )
            self.tmux("set-option", "-t", "term", "remain-on-exit", "on")

    def _has(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", "term"],
                              capture_output=True).returncode == 0

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "term")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "term", *keys)

    def app_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "term", "#{pane_pid}").strip())

    def dead(self) -> bool:
        return self.tmux("display-message", "-p", "-t", "term", "#{pane_dead}").strip() == "1"

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(cli_env, str(tmp_path))
    yield term
    term.close()
