"""Pulling a container's image before it starts: the server's pane runs this step first,

    python -m vllmtui.servers.image_pull --engine docker --image IMAGE [--policy missing|always]
        -- docker run --rm --name vllmtui-NAME ... IMAGE MODEL ...

It asks the engine whether the image is here (`image inspect`); when it is not (or the policy
is `always`) it runs `ENGINE pull IMAGE`, passes each line the engine prints to the pane (the
server's log) and keeps count of the layers in `$VLLMTUI_IMAGE_PROGRESS` (the run's
`image-pull.json`), which the server's status shows: state `starting`, phase `pulling image`,
detail `pulling vllm/vllm-openai:v0.10.1: 5 of 12 layers downloaded, 3 extracted (40 s)`. Then
it execs the command after `--` in its place. On failure it says why on stderr and exits 1
(130 when interrupted): the server shows as crashed with that line.

Read by the status (`pulling_detail`, `failed_detail`) too: this module imports only the
standard library and `core`, so the pane's step starts quickly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllmtui.core.humanize import fmt_duration

PHASE = "pulling image"
"""The start phase of a server whose pane is pulling its container's image."""
PROGRESS_FILE = "image-pull.json"
PROGRESS_ENV = "VLLMTUI_IMAGE_PROGRESS"
MODULE = "vllmtui.servers.image_pull"
# docker (no terminal): `0123456789ab: Pull complete`; podman: `Copying blob sha256:ab... done`
_DOCKER_LAYER = re.compile(r"^([0-9a-f]{12}): (.+?)\s*$")
_PODMAN_BLOB = re.compile(r"^Copying blob (?:sha256:)?([0-9a-f]{6,})(.*)$")
_DOWNLOADED = ("Download complete", "Verifying Checksum", "Extracting", "Pull complete", "Already exists")
_EXTRACTED = ("Pull complete", "Already exists")


@dataclass
class PullTally:
    """The layers a pull has named, and how far each is (fed the engine's lines in order)."""

    image: str
    started: float = field(default_factory=time.time)
    layers: dict[str, str] = field(default_factory=dict)  # id -> its latest status

    def feed(self, line: str) -> None:
        text = line.strip()
        docker = _DOCKER_LAYER.match(text)
        if docker and not docker.group(2).startswith(("Pulling from", "Pulling repository")):
            self.layers[docker.group(1)] = docker.group(2)
            return
        podman = _PODMAN_BLOB.match(text)
        if podman:
            rest = podman.group(2)
            done = "done" in rest or "skipped" in rest or "already exists" in rest
            self.layers[podman.group(1)[:12]] = "Pull complete" if done else "Downloading"

    def counts(self) -> tuple[int, int, int]:
        """(layers named, downloaded, extracted)."""
        states = list(self.layers.values())
        downloaded = sum(1 for s in states if s.startswith(_DOWNLOADED))
        extracted = sum(1 for s in states if s.startswith(_EXTRACTED))
        return len(states), downloaded, extracted

    def line(self, now: float | None = None) -> str:
        took = fmt_duration((time.time() if now is None else now) - self.started)
        total, downloaded, extracted = self.counts()
        if not total:
            return f"pulling {self.image}: asking the registry ({took})"
        return (f"pulling {self.image}: {downloaded} of {total} layers downloaded,"
                f" {extracted} extracted ({took})")

    def record(self, state: str, error: str | None = None) -> dict[str, Any]:
        total, downloaded, extracted = self.counts()
        return {"state": state, "image": self.image, "line": self.line(), "error": error,
                "layers": total, "downloaded": downloaded, "extracted": extracted,
                "started": self.started, "updated": time.time()}


def _write(path: str | None, data: dict[str, Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def read_progress(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's image pull, when it had one."""
    if run_dir is None:
        return None
    try:
        data = json.loads((run_dir / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pulling_detail(run_dir: Path | None) -> str | None:
    """While the pane pulls the image: the status detail."""
    data = read_progress(run_dir)
    if data is None or data.get("state") != "pulling":
        return None
    return str(data.get("line") or PHASE)


def failed_detail(run_dir: Path | None) -> str | None:
    """Why the run's image pull failed, when it did."""
    data = read_progress(run_dir)
    if data is None or data.get("state") != "failed":
        return None
    return f"pulling {data.get('image')} failed: {data.get('error') or 'see the log'}"


def step_argv(engine: str, image: str, policy: str) -> list[str]:
    """The pane's pull step, to be followed by `--` and the command it then execs."""
    return [sys.executable, "-m", MODULE, "--engine", engine, "--image", image, "--policy", policy]


def progress_env(run_dir: Path) -> dict[str, str]:
    """The server variable that tells the pull step where its progress goes."""
    return {PROGRESS_ENV: str(run_dir / PROGRESS_FILE)}


# ---------------------------------------------------------------- the step (in the pane)


def _present(engine: str, image: str) -> bool:
    try:
        done = subprocess.run([engine, "image", "inspect", image], capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def pull(engine: str, image: str, progress: str | None) -> str | None:
    """`ENGINE pull IMAGE`, its lines passed on and counted; None when it worked, else why not."""
    tally = PullTally(image)
    _write(progress, tally.record("pulling"))
    print(f"vllmtui: pulling the image {image} ({engine} pull)", flush=True)
    try:
        proc = subprocess.Popen([engine, "pull", image], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, bufsize=1)
    except OSError as exc:
        _write(progress, tally.record("failed", f"cannot run {engine}: {exc.strerror}"))
        return f"cannot run {engine}: {exc.strerror}"
    last, written = "", 0.0
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            print(raw, end="", flush=True)
            if raw.strip():
                last = raw.strip()
            tally.feed(raw)
            if time.monotonic() - written >= 0.2:
                _write(progress, tally.record("pulling"))
                written = time.monotonic()
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        _write(progress, tally.record("failed", "interrupted"))
        raise
    if code != 0:
        reason = last or f"{engine} pull exited with status {code}"
        _write(progress, tally.record("failed", reason))
        return reason
    _write(progress, tally.record("done"))
    print(f"vllmtui: pulled {image} in {fmt_duration(time.time() - tally.started)}", flush=True)
    return None


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: image_pull --engine E --image I [--policy P] -- COMMAND...", file=sys.stderr)
        return 2
    own, then = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    opts = dict(zip(own[::2], own[1::2], strict=False))
    engine, image, policy = opts.get("--engine", "docker"), opts.get("--image", ""), opts.get("--policy")
    progress = os.environ.get(PROGRESS_ENV)
    if not then or not image:
        print("vllmtui: image_pull needs --image and a command after --", file=sys.stderr)
        return 2
    if policy == "always" or not _present(engine, image):
        try:
            failed = pull(engine, image, progress)
        except KeyboardInterrupt:
            print(f"vllmtui: pulling {image} interrupted", file=sys.stderr, flush=True)
            return 130
        if failed is not None:
            print(f"vllmtui: pulling the image {image} failed: {failed}", file=sys.stderr, flush=True)
            return 1
    sys.stdout.flush()
    try:
        os.execvp(then[0], then)
    except OSError as exc:
        print(f"vllmtui: cannot run {then[0]}: {exc.strerror}", file=sys.stderr, flush=True)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
