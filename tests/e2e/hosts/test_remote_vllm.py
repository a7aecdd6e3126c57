"""A REAL vLLM (CPU build, tiny model) started on another host over ssh, probed there with
`probe --host`, and reached from here through `Hosts.forward`; then the TUI on its row:
metrics and a benchmark through the forward, a chat probe run there.

The host is `self`: root's own account over the loopback sshd (the vLLM CPU runtime lives in
root's data dir, which the test users cannot read), with its own tmux socket, state and
config dirs, so nothing of this machine's own vllmtui is seen or touched."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml
from textual.widgets import Input, Static, TabbedContent

from tests.support.helpers import ROOT, free_port
from tests.support.ssh_hosts import HostsEnv
from tests.support.ui import FROZEN, until
from vllmtui.hosts.fleet import Hosts
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import MessageDialog
from vllmtui.ui.widgets.bench_view import BenchView
from vllmtui.ui.widgets.server_table import ServerTable

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _self_host(base: Path) -> Path:
    tag = f"vt-{uuid.uuid4().hex[:8]}"
    command = base / "vllmtui"
    command.write_text(
        f"#!/bin/sh\nexport VLLMTUI_TMUX_SOCKET={tag} VLLMTUI_STATE_DIR={base}/state"
        f" VLLMTUI_CONFIG_DIR={base}/config\nexec {sys.executable} -m vllmtui \"$@\"\n")
    command.chmod(0o755)
    return command


async def _in_the_tui(hosts_env: HostsEnv) -> None:
    """The TUI on the remote row: its metrics through the forward, a benchmark through it
    (saved here), and a chat probe run there."""
    app = VllmtuiApp(hosts_env.settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        main = app.main
        await until(pilot, lambda: main.state_of("tiny@self") == "ready", timeout=30, what="the remote row")
        app.query_one(ServerTable).select("tiny@self")
        await until(pilot, lambda: "tiny@self" in main.readings.metrics
                    and not main.readings.metrics["tiny@self"].stale, timeout=30,
                    what="real vLLM metrics through the forward")
        app.query_one("#detail", TabbedContent).active = "tab-bench"
        bench = app.query_one("#bench-view", BenchView)
        await until(pilot, lambda: bench.server == "tiny@self", what="the Bench tab on the remote row")
        for field, value in (("num-prompts", "4"), ("concurrency", "2"), ("output-len", "8"),
                             ("input-len", "16")):
            bench.query_one(f"#bench-{field}", Input).value = value
        await pilot.click("#bench-run")
        saved = hosts_env.settings.state_dir / "bench" / "tiny@self"
        # ("no saved benchmarks of ... yet" is shown before the run: wait for the report itself)
        await until(pilot, lambda: "saved benchmarks (newest first)" in str(
            bench.query_one("#bench-history", Static).render()), timeout=120,
            what="the benchmark through the forward, saved and listed")
        assert len(list(saved.glob("*.json"))) == 1
        app.query_one("#detail", TabbedContent).active = "tab-log"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, MessageDialog), timeout=120,
                    what="the chat probe's report from the host")
        body = str(app.screen.query_one("#dialog-body Static", Static).render())
        assert "chat probe of tiny" in str(app.screen.query_one("#dialog-title").render()), body
        await pilot.press("escape")
        await pilot.press("q")


def test_a_real_vllm_on_another_host(hosts_env: HostsEnv, vllm_runtime: Path, run_cli: Cli,
                                     cli_env: dict[str, str], profiles_dir: Path) -> None:
    cli_env.update(hosts_env.env())
    base = Path(tempfile.mkdtemp(prefix="vt-self-"))
    command = _self_host(base)
    hosts_env.hosts_yaml(extra={"self": {"ssh": "self", "ssh_config": str(hosts_env.sshd.config),
                                         "vllmtui": str(command)}})
    data = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
    data["port"] = free_port()
    (profiles_dir / "tiny.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        started = run_cli("start", "tiny", "--host", "self", "--wait", "--timeout", "400", timeout=450)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "sent to self" in started.stdout
        probed = run_cli("probe", "tiny", "--host", "self", "--chat", "--json", timeout=120)
        assert probed.returncode == 0, probed.stdout + probed.stderr
        assert json.loads(probed.stdout)
        with Hosts(hosts_env.settings) as hosts:
            reading = hosts.read(names=["self"])["self"]
            (status,) = [s for s in reading.statuses if s.name == "tiny"]
            assert status.state == "ready"
            url = hosts.base_url("self", status)
            models = httpx.get(f"{url}/v1/models", timeout=10).json()
            assert [m["id"] for m in models["data"]] == ["tiny"]
            here = run_cli("probe", "tiny", "--url", url, "--chat", timeout=120)
            assert here.returncode == 0, here.stdout + here.stderr
        asyncio.run(_in_the_tui(hosts_env))
    finally:
        run_cli("stop", "tiny", "--host", "self", timeout=120)
        subprocess.run(["tmux", "-L", command.read_text().split("VLLMTUI_TMUX_SOCKET=")[1].split()[0],
                        "kill-server"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
