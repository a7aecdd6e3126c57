"""The image pull step a container's pane runs before the engine's `run`: the layer count it
reads from docker's and podman's lines, the progress file the status shows, and what it does
when the image is already here or the pull fails (against the docker STAND-IN)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_standin import DockerStandin
from vllmtui.servers import image_pull

DOCKER_LINES = """v0.10.1: Pulling from vllm/vllm-openai
0123456789ab: Pulling fs layer
1123456789ab: Pulling fs layer
2123456789ab: Already exists
0123456789ab: Verifying Checksum
0123456789ab: Download complete
0123456789ab: Extracting
1123456789ab: Waiting
"""
PODMAN_LINES = """Trying to pull docker.io/vllm/vllm-openai:v0.10.1...
Getting image source signatures
Copying blob sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaa done
Copying blob sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbb
Copying blob sha256:cccccccccccccccccccccccccccc skipped: already exists
Copying config sha256:dddddddd done
Writing manifest to image destination
"""


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[DockerStandin]:
    standin = DockerStandin.make(tmp_path)
    yield standin
    standin.cleanup()


@pytest.mark.parametrize(("lines", "counts"), [(DOCKER_LINES, (3, 2, 1)), (PODMAN_LINES, (3, 2, 2))])
def test_layers_are_counted_from_the_engine_lines(lines: str, counts: tuple[int, int, int]) -> None:
    tally = image_pull.PullTally("vllm/vllm-openai:v0.10.1", started=100.0)
    assert tally.line(now=101) == "pulling vllm/vllm-openai:v0.10.1: asking the registry (1s)"
    for line in lines.splitlines():
        tally.feed(line)
    assert tally.counts() == counts
    assert tally.line(now=140).endswith(f"{counts[1]} of {counts[0]} layers downloaded, {counts[2]} extracted (40s)")


def step(docker: DockerStandin, run_dir: Path, *policy: str) -> subprocess.CompletedProcess[str]:
    argv = image_pull.step_argv(str(docker.exe), "img:1", *(policy or ("missing",)))
    env = {"PATH": "/usr/bin:/bin", **image_pull.progress_env(run_dir)}
    return subprocess.run([*argv, "--", "/bin/echo", "then the run"], capture_output=True, text=True,
                          env=env, timeout=30, cwd=Path(__file__).resolve().parents[3])


def test_the_step_pulls_what_is_missing_then_execs(docker: DockerStandin, tmp_path: Path) -> None:
    docker.configure(DOCKER_STANDIN_PULL_SECONDS="0.2")
    done = step(docker, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"vllmtui: pulling the image img:1 ({docker.exe} pull)"
    assert "dddddddddddd: Pull complete" in done.stdout and done.stdout.endswith("then the run\n")
    progress = json.loads((tmp_path / image_pull.PROGRESS_FILE).read_text())
    assert (progress["state"], progress["layers"], progress["extracted"]) == ("done", 4, 4)
    assert image_pull.pulling_detail(tmp_path) is None and image_pull.failed_detail(tmp_path) is None
    # here now: no pull; `always` pulls again
    assert step(docker, tmp_path).stdout == "then the run\n"
    assert "Pull complete" in step(docker, tmp_path, "always").stdout
    assert [c[0] for c in docker.calls() if c[0] == "pull"] == ["pull", "pull"]


def test_a_failed_pull_says_why_and_runs_nothing(docker: DockerStandin, tmp_path: Path) -> None:
    docker.configure(DOCKER_STANDIN_PULL_FAIL="1", DOCKER_STANDIN_PULL_SECONDS="0.1")
    done = step(docker, tmp_path)
    assert done.returncode == 1 and "then the run" not in done.stdout
    reason = "Error response from daemon: pull access denied for img:1"
    assert done.stderr.startswith(f"vllmtui: pulling the image img:1 failed: {reason}")
    assert (image_pull.failed_detail(tmp_path) or "").startswith(f"pulling img:1 failed: {reason}")


def test_the_step_needs_a_command() -> None:
    done = subprocess.run([sys.executable, "-m", image_pull.MODULE, "--image", "x"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "usage" in done.stderr
