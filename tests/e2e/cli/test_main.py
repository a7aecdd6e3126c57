"""End to end with a REAL vLLM (CPU build, tiny random-weight model), driven through the
`vllmtui` command exactly as a user would: start --wait, status, logs, a chat request,
graceful stop, forced stop, a killed API server, and a killed vllmtui."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.helpers import ROOT, free_port, wait_for
from vllmtui.core import procs
from vllmtui.core.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def tiny(profiles_dir: Path, vllm_runtime: Path) -> str:
    """The shipped tiny-cpu profile, copied under the test's profiles dir on a free port."""
    data = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
    data["port"] = free_port()
    (profiles_dir / "tiny.yaml").write_text(yaml.safe_dump(data))
    return "tiny"


def server_tree(settings: Settings) -> list[procs.ProcInfo]:
    from vllmtui.servers.fleet import Fleet

    sess = Fleet(settings).tmux.session("vllmtui-tiny")
    return procs.tree_of(sess.pane_pid) if sess and sess.pane_pid else []


def vllm_leftovers(pids: set[int]) -> list[procs.ProcInfo]:
    """Processes from `pids` still alive (zombies hold nothing and are skipped)."""
    return [p for p in procs.all_processes() if p.pid in pids]


def test_real_vllm_lifecycle_through_the_cli(
    tiny: str, settings: Settings, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    started = run_cli("start", tiny, "--wait", "--timeout", "300", timeout=330)
    assert started.returncode == 0, started.stdout + started.stderr
    out = started.stdout
    assert "started tiny in tmux session vllmtui-tiny" in out
    assert "starting: loading weights" in out or "starting: profiling / KV cache" in out
    assert "tiny: ready" in out and "is ready at http://127.0.0.1:" in out

    status = json.loads(run_cli("status", "--json", check=True).stdout)
    (server,) = [s for s in status["servers"] if s["name"] == tiny]
    assert server["state"] == "ready" and server["pid"] and server["uptime"] > 0
    assert server["time_to_ready"] > 0
    run_dir = Path(server["run_dir"])
    base = f"http://127.0.0.1:{server['port']}"
    assert httpx.get(base + "/health", timeout=5).status_code == 200
    reply = httpx.post(base + "/v1/chat/completions", timeout=60, json={
        "model": "tiny", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8})
    assert reply.status_code == 200
    body = reply.json()
    assert body["usage"]["completion_tokens"] > 0 and body["choices"][0]["finish_reason"] in ("length", "stop")

    log = (run_dir / "server.log").read_text(errors="replace")
    for line in ("non-default args", "Starting to load model", "CPU KV cache size: 2,097,152 tokens",
                 "Starting vLLM server on http://127.0.0.1", "Application startup complete."):
        assert line in log, line
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["vllm_version"] == "0.32.0"
    assert launch["argv"][1:4] == ["-m", "vllm.entrypoints.openai.api_server", "--model"]
    tail = run_cli("logs", tiny, "-n", "200", check=True).stdout
    assert "Application startup complete." in tail and "\x1b[" not in tail

    tree = {p.pid for p in server_tree(settings)}
    assert any(p.title == "VLLM::EngineCore" for p in vllm_leftovers(tree))
    stopped = run_cli("stop", tiny, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "tiny: stopped gracefully (SIGINT)" in stopped.stdout and "nothing left behind" in stopped.stdout
    assert vllm_leftovers(tree) == []
    assert json.loads((run_dir / "exit.json").read_text())["how"] == "graceful"
    assert "[shutdown]" in (run_dir / "server.log").read_text(errors="replace")
    # the log is still there after the server is gone
    assert "Application startup complete." in run_cli("logs", tiny, "-n", "400", check=True).stdout
    after = json.loads(run_cli("status", "--json", check=True).stdout)
    assert [s["state"] for s in after["servers"] if s["name"] == tiny] == ["stopped"]


def test_real_vllm_forced_stop_and_killed_api_server(
    tiny: str, settings: Settings, run_cli: Callable[..., subprocess.CompletedProcess[str]],
    cli_env: dict[str, str],
) -> None:
    # start from a vllmtui that is killed while it waits: the server must not care
    waiter = subprocess.Popen([sys.executable, "-m", "vllmtui", "start", tiny, "--wait"],
                              env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert waiter.stdout is not None
    for line in waiter.stdout:
        if "starting:" in line:
            break
    waiter.send_signal(signal.SIGKILL)
    waiter.wait()
    from vllmtui.servers.fleet import Fleet

    fleet = Fleet(settings)
    wait_for(lambda: fleet.status_by_name(tiny).state == "ready", 300, 1.0, "ready after vllmtui was killed")

    tree = {p.pid for p in server_tree(settings)}
    forced = run_cli("stop", tiny, "--force", timeout=60)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "tiny: force-stopped: killed" in forced.stdout and "nothing left behind" in forced.stdout
    assert vllm_leftovers(tree) == []
    assert fleet.tmux.session("vllmtui-tiny") is None

    # second run: the API server alone is SIGKILLed, as when vLLM hangs and someone kill -9s it
    assert run_cli("start", tiny, "--wait", "--timeout", "300", timeout=330).returncode == 0
    runs = json.loads(run_cli("runs", tiny, "--json", check=True).stdout)
    assert len(runs) == 2 and runs[1]["exit"]["how"] == "force"
    tree = {p.pid for p in server_tree(settings)}
    pane = fleet.status_by_name(tiny).pid
    assert pane is not None
    os.kill(pane, signal.SIGKILL)
    crashed = wait_for(lambda: (s := fleet.status_by_name(tiny)).state == "crashed" and s, 30,
                       what="crashed after SIGKILL")
    assert crashed.detail == "killed by signal 9"  # type: ignore[attr-defined]
    status_text = run_cli("status", check=True).stdout
    assert "crashed" in status_text
    # whatever vLLM's children did (orphaned or gone), a forced stop leaves nothing behind
    cleared = run_cli("stop", tiny, "--force", timeout=60)
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    wait_for(lambda: vllm_leftovers(tree) == [], 15, what="no process of the killed server left")
    assert fleet.orphans() == []
