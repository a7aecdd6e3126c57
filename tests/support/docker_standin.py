"""The docker STAND-IN (tests/standin/docker_standin.py) as tests use it: an executable
`docker` in a test's temp dir (a profile's `runtime.docker.engine`) with its own state dir,
the calls it got, and a teardown that kills every "container" it still runs (they are not in
any tmux pane's tree, so the tmux teardown would not)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.helpers import ROOT

DOCKER_STANDIN = ROOT / "tests" / "standin" / "docker_standin.py"


@dataclass
class DockerStandin:
    exe: Path
    state: Path

    @classmethod
    def make(cls, where: Path) -> DockerStandin:
        made = cls(where / "bin" / "docker", where / "docker-state")
        made.exe.parent.mkdir(parents=True, exist_ok=True)
        made.state.mkdir(parents=True, exist_ok=True)
        made.configure()
        return made

    def configure(self, **env: str) -> None:
        """(Re)write the `docker` executable, with these stand-in variables set for every call
        (DOCKER_STANDIN_PULL_SECONDS, DOCKER_STANDIN_PULL_FAIL, DOCKER_STANDIN_NO_DAEMON, ...)."""
        exports = "".join(f"export {k}='{v}'\n" for k, v in env.items())
        self.exe.write_text(f"#!/bin/sh\nexport DOCKER_STANDIN_DIR='{self.state}'\n{exports}"
                            f"exec '{sys.executable}' '{DOCKER_STANDIN}' \"$@\"\n")
        self.exe.chmod(0o755)

    def calls(self, verb: str | None = None) -> list[list[str]]:
        """Every call's argv (those of one subcommand when `verb` is given), in order."""
        try:
            lines = (self.state / "calls.jsonl").read_text().splitlines()
        except OSError:
            return []
        argvs = [json.loads(line)["argv"] for line in lines]
        return [a for a in argvs if verb is None or a[:1] == [verb]]

    def containers(self) -> dict[str, dict[str, object]]:
        """The containers it runs now, by name (their first process still alive)."""
        out: dict[str, dict[str, object]] = {}
        for path in sorted((self.state / "containers").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if _alive(int(data["pid"])):
                    out[path.stem] = data
        return out

    def cleanup(self) -> None:
        for data in self.containers().values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(data["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.containers() and time.monotonic() < deadline:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
