"""`vllmtui start|stop|status|attach|logs|runs` (cli/servers.py): wrong numbers and unknown
names are refused before anything happens (exit 2, a clear message, no traceback); `status
NAME` shows only what was named; orphans' commands as a person would type them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.helpers import wait_for
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux

Cli = Callable[..., subprocess.CompletedProcess[str]]


def refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_numbers_are_checked_before_anything_starts(
    run_cli: Cli, standin_profile: Callable[..., Path], settings: Settings, tmux: Tmux,
) -> None:
    standin_profile("srv")
    refused(run_cli("start", "srv", "--timeout", "-5", "--wait"),
            "argument --timeout: must be more than 0 seconds, got -5")
    refused(run_cli("start", "srv", "--timeout", "nan", "--wait"),
            "argument --timeout: 'nan' is not a finite number")
    assert tmux.sessions() == [] and not settings.runs_dir.exists()
    refused(run_cli("stop", "srv", "--timeout", "0"), "argument --timeout: must be more than 0 seconds, got 0")
    refused(run_cli("logs", "srv", "-n", "-5"), "argument -n/--lines: must be 0 or more lines, got -5")
    refused(run_cli("runs", "srv", "--limit", "0"), "argument --limit: must be 1 or more runs, got 0")
    refused(run_cli("runs", "srv", "--limit", "x"), "argument --limit: 'x' is not a whole number")


def test_unknown_names_are_refused_with_a_suggestion(
    run_cli: Cli, standin_profile: Callable[..., Path], write_profile: Callable[..., Path],
) -> None:
    standin_profile("srv")
    write_profile("idle", model="m", port=18999)
    for verb in ("status", "stop", "attach", "logs", "runs"):
        refused(run_cli(verb, "sr"), "no profile or server named 'sr' (did you mean srv?)")
    refused(run_cli("status", "nosuch"), "no profile or server named 'nosuch'; `vllmtui status` lists them")
    assert run_cli("start", "srv", "--wait", "--timeout", "30").returncode == 0
    # one unknown name among several: nothing is stopped
    refused(run_cli("stop", "srv", "nosuch"), "no profile or server named 'nosuch'")
    assert json.loads(run_cli("status", "srv", "--json", check=True).stdout)["servers"][0]["state"] == "ready"
    # known names that are not running, or have no runs: the operation fails (1), or says so
    stopped = run_cli("stop", "idle")
    assert stopped.returncode == 1 and "idle is not running" in stopped.stderr
    assert run_cli("attach", "idle").returncode == 1
    no_logs = run_cli("logs", "idle")
    assert no_logs.returncode == 1 and "idle has no runs yet" in no_logs.stderr
    listing = run_cli("runs", "idle", check=True)
    assert listing.stdout == "idle has no runs yet (`vllmtui start idle` makes one)\n"
    assert json.loads(run_cli("runs", "idle", "--json", check=True).stdout) == []
    # several names: the one not running is said, the other stopped all the same
    both = run_cli("stop", "idle", "srv")
    assert both.returncode == 1 and "idle is not running" in both.stderr
    assert "srv: stopped gracefully (SIGINT)" in both.stdout


def test_status_of_named_profiles_shows_only_those(
    run_cli: Cli, standin_profile: Callable[..., Path], write_profile: Callable[..., Path],
    profiles_dir: Path, settings: Settings,
) -> None:
    standin_profile("srv")
    write_profile("bad", model="m", max_model_length=1)
    write_profile("other-bad", model="m", prot=1)
    text = run_cli("status", "srv", check=True).stdout
    assert "srv " in text and "invalid profile" not in text and "bad" not in text
    named = run_cli("status", "bad", check=True).stdout.splitlines()
    assert len(named) == 2 and named[1].startswith("bad ") and "invalid profile" in named[1]
    data = json.loads(run_cli("status", "bad", "--json", check=True).stdout)
    assert data["servers"] == [] and [b["name"] for b in data["invalid_profiles"]] == ["bad"]
    # a server whose profile is gone is still known by its runs
    assert run_cli("start", "srv", "--wait", "--timeout", "30").returncode == 0
    assert run_cli("stop", "srv").returncode == 0
    (profiles_dir / "srv.yaml").unlink()
    (gone,) = json.loads(run_cli("status", "srv", "--json", check=True).stdout)["servers"]
    assert gone["state"] == "stopped" and gone["run_dir"].startswith(str(settings.runs_dir / "srv"))
    assert "Application startup complete." in run_cli("logs", "srv", check=True).stdout


@pytest.fixture
def retitled_orphan() -> Iterator[int]:
    """A reparented `VLLM::EngineCore` whose argv ends in empty arguments, as setproctitle
    leaves vLLM's (the title, then the old argv's room as NULs)."""
    code = "import time; time.sleep(300)"
    script = (f"(exec -a VLLM::EngineCore {sys.executable} -c '{code}' '' '' '' '') "
              ">/dev/null 2>&1 & echo $!")
    pid = int(subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True,
                             start_new_session=True).stdout)
    wait_for(lambda: Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"\0\0\0\0"), 5, 0.02, "orphan")
    yield pid
    os.kill(pid, signal.SIGKILL)


def test_orphans_commands_have_no_padding(run_cli: Cli, retitled_orphan: int) -> None:
    data = json.loads(run_cli("status", "--json", check=True).stdout)
    (orphan,) = [o for o in data["orphans"] if o["pid"] == retitled_orphan]
    assert orphan["command"] == "VLLM::EngineCore -c import time; time.sleep(300)"
    listed = [ln for ln in run_cli("reap", "--dry-run", check=True).stdout.splitlines()
              if str(retitled_orphan) in ln]
    assert listed and listed[0].endswith("time.sleep(300)")


def test_forced_stop_reaps_only_what_its_server_left(
    run_cli: Cli, standin_profile: Callable[..., Path], settings: Settings
) -> None:
    """`stop --force NAME` kills NAME's orphans (they carry its mark), never another server's
    or another user's vLLM (`vllmtui reap` is the explicit way to kill every orphan)."""
    from tests.support.helpers import spawn_orphan
    from vllmtui.core import procs
    from vllmtui.servers.fleet import SERVER_MARK, Fleet

    standin_profile("mine")
    assert run_cli("start", "mine").returncode == 0
    mark = Fleet(settings).server_mark("mine")
    foreign = spawn_orphan()
    own = spawn_orphan(env={SERVER_MARK: mark})
    try:
        proc = run_cli("stop", "--force", "mine")
        assert proc.returncode == 0, proc.stderr
        assert "reaped 1 orphaned vLLM process(es) of mine" in proc.stdout
        wait_for(lambda: own not in procs.alive([own]), 5, what="its own orphan killed")
        assert procs.alive([foreign]) == [foreign]
    finally:
        procs.signal_all([foreign, own], signal.SIGKILL)
