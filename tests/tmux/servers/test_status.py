"""Status derivation (servers/status.py) against the stand-in on a real tmux: a crash reads
`crashed` as soon as the log says why (not `unhealthy` while vLLM winds down), a dead pane at
once, and how it ended (exit status, signal) is in `status --json`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.helpers import wait_for
from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import load_profile_file
from vllmtui.servers.fleet import Fleet

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_a_start_failure_reads_crashed_while_vllm_winds_down(
    settings: Settings, standin_profile: Callable[..., Path], run_cli: Cli,
) -> None:
    # vLLM prints its fatal error, then takes seconds to exit while /health refuses
    loaded = load_profile_file(standin_profile(
        "oom", mode="crash-oom", delay=0.1, env={"STANDIN_EXIT_DELAY": "8"}))
    fleet = Fleet(settings)
    fleet.start(loaded)
    begin = time.monotonic()
    seen: list[str] = []
    status = fleet.wait_ready(loaded, timeout=30, interval=0.1, on_change=lambda s: seen.append(s.state))
    assert status.state == "crashed" and time.monotonic() - begin < 5
    assert "unhealthy" not in seen
    session = fleet.tmux.session("vllmtui-oom")
    assert session is not None and not session.dead  # still winding down
    assert status.failure is not None and status.failure.key == "oom"
    assert status.detail.startswith("torch.OutOfMemoryError: CUDA out of memory.")
    text = run_cli("status", "oom", check=True).stdout
    assert " crashed " in text and "hint: out of GPU memory" in text
    # once it has exited: still crashed, with its exit status (tmux < 3.5 can miss the
    # SIGCHLD that tells it: the status reader gets it all the same)
    final = wait_for(lambda: (s := fleet.status(loaded)).exit_status is not None and s, 15,
                     what="the pane's exit")
    assert (final.state, final.exit_status, final.exit_signal) == ("crashed", 1, None)  # type: ignore[attr-defined]


def test_a_killed_server_is_crashed_at_once_with_its_signal(
    settings: Settings, standin_profile: Callable[..., Path], run_cli: Cli,
) -> None:
    loaded = load_profile_file(standin_profile("victim"))
    fleet = Fleet(settings)
    fleet.start(loaded)
    pid = fleet.wait_ready(loaded, 30).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not procs.alive([pid]), 5, 0.01, "the kill")
    # the pane is dead as soon as the process is: no `unhealthy` reading in between
    status = wait_for(lambda: (s := fleet.status(loaded)).state != "ready" and s, 2, 0.02, what="not ready")
    assert status.state == "crashed", status  # type: ignore[attr-defined]
    (srv,) = json.loads(run_cli("status", "victim", "--json", check=True).stdout)["servers"]
    assert (srv["state"], srv["detail"]) == ("crashed", "killed by signal 9")
    # like a shell: 128 + the signal
    assert (srv["exit_status"], srv["exit_signal"]) == (137, 9)
    stop = run_cli("stop", "victim", check=True)
    assert "had already exited; session removed" in stop.stdout
    (run,) = json.loads(run_cli("runs", "victim", "--json", check=True).stdout)
    assert (run["exit"]["exit_status"], run["exit"]["signal"]) == (137, 9)
