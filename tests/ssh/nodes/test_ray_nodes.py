"""One server across two nodes with a REAL Ray: the head on host-a and a worker on host-a2 (two
hosts of one test account behind a real sshd, tests/support/ssh_hosts.py: each its own tmux
server, state and config; one account, because Ray keeps one session directory per machine that
every node of that machine writes to), each `ray start --block` in a tmux session of its host; vllmtui waits until Ray reports both nodes, then starts the head's
server (the fake vLLM stand-in: vLLM across Ray nodes needs GPUs, tests/gpu and
docs/gpu-validation.md run it for real). A killed worker marks the server degraded, naming the
node; the stop goes backwards and leaves no Ray process on either host."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable

import pytest

from tests.support.helpers import ROOT, STANDIN, free_port, wait_for
from tests.support.ssh_hosts import SITE, SYSTEM_PYTHON, HostDir, HostsEnv, as_user
from vllmtui.hosts.fleet import Hosts

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytest.importorskip("ray", reason="the Ray tests need the ray package (scripts/setup.sh --dev installs it)")


def _profile(tag: str, ray_port: int) -> dict[str, object]:
    # a Ray temp dir of the test's own (short: Ray's socket paths live in it)
    return {
        "model": "standin-model", "port": free_port(),
        "nodes": [{"host": "host-a", "env": {"RAY_TMPDIR": f"/tmp/vr-{tag}"}},
                  {"host": "host-a2", "env": {"RAY_TMPDIR": f"/tmp/vr-{tag}"}}],
        "distributed_executor_backend": "ray", "tensor_parallel_size": 2,
        "network": {"ray_port": ray_port},
        "runtime": {"command": [SYSTEM_PYTHON, str(STANDIN)]},
        # both nodes run the same Python and Ray (Ray refuses a mix): the system python3 with
        # this checkout's venv on its path
        "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.2", "PYTHONPATH": f"{ROOT}:{SITE}",
                "RAY_DISABLE_IMPORT_WARNING": "1"},
        "stop": {"timeout": 5, "term_timeout": 3},
    }


def _ray_processes(user: str) -> list[str]:
    out = subprocess.run(["ps", "-u", user, "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "ray" in line and ("raylet" in line or "gcs_server" in line
                                                                    or "ray::" in line or "start" in line)]


def test_a_ray_server_across_two_hosts(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str],
                                       write_profile: Callable[..., object]) -> None:
    cli_env.update(hosts_env.env())
    tag = uuid.uuid4().hex[:6]
    first = hosts_env.dirs["host-a"]
    second = HostDir(first.user, first.home, f"{first.tag}-2")
    second.make()
    hosts_env.hosts_yaml(extra={"host-a2": {"ssh": "host-a", "vllmtui": str(second.command),
                                            "ssh_config": str(hosts_env.sshd.config)}})
    write_profile("spread", **_profile(tag, free_port()))
    checked = run_cli("check", "spread")
    assert "node 0 ray-head   on host-a" in checked.stdout and "node 1 ray-worker on host-a2" in checked.stdout
    assert "ray.scripts.scripts start --head" in checked.stdout, checked.stdout
    try:
        started = run_cli("start", "spread", "--wait", "--timeout", "120", timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "ray: 2 nodes" in started.stdout and "is ready" in started.stdout, started.stdout
        # each node's part, on its own host: Ray's on both, the server on the head
        assert "vllmtui-spread-node0-ray" in first.tmux("ls").stdout
        assert "vllmtui-spread-node1-ray" in second.tmux("ls").stdout
        with Hosts(hosts_env.settings) as hosts:
            reading = hosts.read(names=["host-a"], gpus=False)["host-a"]
            assert {s.name: s.state for s in reading.statuses}.get("spread") == "ready"
        status = json.loads(run_cli("status", "spread", "--json", check=True).stdout)
        (server,) = status["servers"]
        assert server["multinode"]["state"] == "ready" and server["multinode"]["head"] == "host-a"
        assert [n["alive"] for n in server["multinode"]["nodes"]] == [True, True]

        # the worker's node dies: the server is degraded, and says which node
        pane = second.tmux("display-message", "-p", "-t", "vllmtui-spread-node1-ray:",
                           "#{pane_pid}").stdout.strip()
        as_user(second.user, "kill", f"-{signal.SIGKILL.value}", pane)
        wait_for(lambda: json.loads(run_cli("status", "spread", "--json").stdout)["servers"][0]["state"]
                 == "degraded", 30, what="the server degraded")
        text = run_cli("status", "spread").stdout
        assert "degraded" in text and "node 1 (ray-worker on host-a2)" in text, text
    finally:
        stopped = run_cli("stop", "spread", timeout=240)
        ended = _ray_processes(first.user)
        second.clean()
        shutil.rmtree(f"/tmp/vr-{tag}", ignore_errors=True)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "every node is clean" in stopped.stdout
    assert ended == [], ended
    assert "vllmtui-spread" not in first.tmux("ls").stdout


def test_vllms_own_data_parallel_across_two_hosts(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str],
                                                   write_profile: Callable[..., object]) -> None:
    """Without Ray: the head serves, the other node runs `--headless` with its start rank."""
    cli_env.update(hosts_env.env())
    write_profile("wide", **{
        "model": "standin-model", "port": free_port(),
        "nodes": [{"host": "host-a", "gpus": [0, 1]}, {"host": "host-b", "gpus": [0]}],
        "data_parallel_size": 3,
        "runtime": {"command": [SYSTEM_PYTHON, str(STANDIN)]},
        "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.2"}, "stop": {"timeout": 5, "term_timeout": 3},
    })
    try:
        started = run_cli("start", "wide", "--wait", "--timeout", "60", timeout=200)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "node 1 (headless on host-b): started" in started.stdout and "is ready" in started.stdout
        pane = "\n".join(hosts_env.dirs["host-b"].tmux("capture-pane", "-p", "-t", "vllmtui-wide-node1-dp:")
                         .stdout.splitlines())
        assert "headless: data-parallel ranks from 2, head at 127.0.0.1:13345" in pane, pane
        (server,) = json.loads(run_cli("status", "wide", "--json", check=True).stdout)["servers"]
        assert server["state"] == "ready" and server["multinode"]["nodes"][0]["role"] == "headless"
        again = run_cli("start", "wide", timeout=60)  # refused: nothing of the running one touched
        assert again.returncode != 0 and "is running already" in again.stderr, again.stdout + again.stderr
        assert "vllmtui-wide-node1-dp" in hosts_env.dirs["host-b"].tmux("ls").stdout
        (server,) = json.loads(run_cli("status", "wide", "--json", check=True).stdout)["servers"]
        assert server["state"] == "ready"
    finally:
        stopped = run_cli("stop", "wide", timeout=120)
    assert stopped.returncode == 0 and "every node is clean" in stopped.stdout, stopped.stdout + stopped.stderr
    for host in ("host-a", "host-b"):
        assert "vllmtui-wide" not in hosts_env.dirs[host].tmux("ls").stdout


async def test_the_tui_starts_and_stops_every_node(hosts_env: HostsEnv,
                                                   write_profile: Callable[..., object]) -> None:
    """s and x on a multi-node profile's row act on every node; the head's own row (on its
    host) says to use that row; the profile's row names where its head serves."""
    from tests.support.ui import FROZEN, until
    from vllmtui.ui.app import VllmtuiApp
    from vllmtui.ui.widgets.server_table import ServerTable

    write_profile("wide", **{
        "model": "standin-model", "port": free_port(),
        "nodes": [{"host": "host-a", "gpus": [0]}, {"host": "host-b", "gpus": [0]}],
        "data_parallel_size": 2,
        "runtime": {"command": [SYSTEM_PYTHON, str(STANDIN)]},
        "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.2"}, "stop": {"timeout": 5, "term_timeout": 3},
    })
    app = VllmtuiApp(hosts_env.settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(ServerTable)
        await until(pilot, lambda: "wide" in table._rows and app.main.state_of("wide") is not None,
                    timeout=30, what="the profile's row")
        assert "multi-node: head on host-a" in str(table._rows["wide"].cells["status"])
        table.select("wide")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("wide@host-a") == "ready", timeout=60,
                    what="the head serving on host-a")
        assert "vllmtui-wide-node1-dp" in hosts_env.dirs["host-b"].tmux("ls").stdout
        table.select("wide@host-a")
        await pilot.press("x")
        await until(pilot, lambda: any("head of the multi-node server wide" in str(n.message)
                                       for n in app._notifications), what="the head's row pointing at wide")
        assert app.main.state_of("wide@host-a") == "ready"  # nothing was stopped from there
        table.select("wide")
        await pilot.press("x")
        await until(pilot, lambda: any("every node stopped and clean" in str(n.message)
                                       for n in app._notifications), timeout=60, what="every node stopped")
        await pilot.press("q")
    for host in ("host-a", "host-b"):
        assert "vllmtui-wide" not in hosts_env.dirs[host].tmux("ls").stdout
