"""A host that drops or hangs shows `unreachable` within 5 s and comes back by itself, while
the other hosts still answer at once; a host on another vllmtui version is named with the fix."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.helpers import wait_for
from tests.support.ssh_hosts import HostsEnv, HostsSshd, chown_tree
from vllmtui.hosts.fleet import Hosts


@pytest.fixture
def flaky(hosts_env: HostsEnv) -> Iterator[HostsSshd]:
    """A second sshd of this test's own in front of vt-host-b, as host `flaky`."""
    server = HostsSshd()
    server.sshd.start()
    hosts_env.hosts_yaml(extra={"flaky": {"ssh": "host-b", "ssh_config": str(server.config),
                                          "vllmtui": str(hosts_env.dirs["host-b"].command)}})
    yield server
    for proc in [server.sshd.proc, *server.sshd.connections()]:
        with contextlib.suppress(OSError, AttributeError):
            os.kill(proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
    server.close()


def _until_unreachable(hosts: Hosts, since: float) -> float:
    while True:
        reading = hosts.read(names=["flaky", "host-a"], gpus=False)
        assert reading["host-a"].reachable and reading["host-a"].seconds < 1.0, reading["host-a"]
        if not reading["flaky"].reachable:
            return time.monotonic() - since
        assert time.monotonic() - since < 10, "flaky never showed unreachable"
        time.sleep(0.2)


def test_a_host_that_drops_is_unreachable_within_5s_and_comes_back(hosts_env: HostsEnv,
                                                                   flaky: HostsSshd) -> None:
    with Hosts(hosts_env.settings) as hosts:
        first = hosts.read(gpus=False)
        assert first["flaky"].reachable and first["host-a"].reachable, first
        killed = time.monotonic()
        flaky.sshd.stop()  # the listener and every connection: the box went away
        assert _until_unreachable(hosts, killed) < 5.0
        flaky.sshd.start()
        wait_for(lambda: hosts.read(names=["flaky"], gpus=False)["flaky"].reachable, 15,
                 0.5, "flaky to come back by itself")


def test_a_host_that_hangs_costs_only_its_own_reading(hosts_env: HostsEnv, flaky: HostsSshd) -> None:
    with Hosts(hosts_env.settings) as hosts:
        assert hosts.read(gpus=False)["flaky"].reachable
        frozen = [flaky.sshd.proc, *flaky.sshd.connections()]
        for proc in frozen:
            os.kill(proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        begin = time.monotonic()
        reading = hosts.read(gpus=False)
        took = time.monotonic() - begin
        assert not reading["flaky"].reachable and "no answer" in str(reading["flaky"].problem)
        assert took < hosts_env.settings.host_timeout + 1.0
        assert reading["host-a"].reachable and reading["host-a"].seconds < 1.0
        for proc in frozen:
            os.kill(proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        wait_for(lambda: hosts.read(names=["flaky"], gpus=False)["flaky"].reachable, 20,
                 0.5, "flaky to answer again")


SKEWED = """#!/usr/bin/env python3
# A STAND-IN for another vllmtui version's `hosts serve`: it answers like vllmtui 0.0.9.
import json, sys
for line in sys.stdin:
    print(json.dumps({"ok": True, "vllmtui": "0.0.9", "hostname": "old-box", "servers": [],
                      "profiles": [], "invalid_profiles": [], "gpus": None}), flush=True)
"""


def test_version_skew_and_a_missing_vllmtui_are_named_with_the_fix(
        hosts_env: HostsEnv, run_cli: Callable[..., subprocess.CompletedProcess[str]],
        cli_env: dict[str, str]) -> None:
    cli_env.update(hosts_env.env())
    old = hosts_env.dirs["host-a"].dir / "old-vllmtui"
    old.write_text(SKEWED)
    old.chmod(0o755)
    chown_tree(old, hosts_env.dirs["host-a"].user)
    config = str(hosts_env.sshd.config)
    hosts_env.hosts_yaml(extra={
        "old": {"ssh": "host-a", "ssh_config": config, "vllmtui": f"{old} hosts serve #"},
        "bare": {"ssh": "host-b", "ssh_config": config, "vllmtui": "/nonexistent/vllmtui"},
    })
    out = run_cli("hosts", "--json")
    rows = {h["name"]: h for h in json.loads(out.stdout)["hosts"]}
    assert rows["old"]["state"] == "skew" and rows["old"]["version"] == "0.0.9"
    assert "vllmtui 0.0.9 there, 0.1.0 here: `vllmtui hosts install old`" in rows["old"]["skew"]
    assert rows["bare"]["state"] == "unreachable"
    assert "no vllmtui there (/nonexistent/vllmtui)" in rows["bare"]["problem"]
    assert "`vllmtui hosts install bare`" in rows["bare"]["problem"]
    text = run_cli("hosts").stdout
    assert "skew" in text and "hosts install old" in text


async def test_the_tui_shows_a_dropped_host_unreachable_and_back(hosts_env: HostsEnv, flaky: HostsSshd) -> None:
    from tests.support.ui import FROZEN, until
    from vllmtui.ui.app import VllmtuiApp
    from vllmtui.ui.widgets.server_table import ServerTable

    def rows() -> list[str]:
        return list(app.query_one(ServerTable)._rows)

    hosts_env.dirs["host-a"].write_profile("steady")
    hosts_env.dirs["host-b"].write_profile("lost")
    app = VllmtuiApp(hosts_env.settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        main = app.main
        await until(pilot, lambda: main.state_of("steady@host-a") == "stopped"
                    and main.state_of("lost@flaky") == "stopped", timeout=30, what="both hosts")
        dropped = time.monotonic()
        flaky.sshd.stop()  # the box went away: its listener and every connection
        await until(pilot, lambda: "@flaky" in rows(), timeout=10, what="flaky unreachable")
        assert time.monotonic() - dropped < 5.0
        status = str(app.query_one(ServerTable)._rows["@flaky"].cells["status"])
        assert status.startswith("unreachable"), status
        assert main.state_of("lost@flaky") is None  # no stale rows for a host that is gone
        assert main.state_of("steady@host-a") == "stopped" and "@host-a" not in rows()
        flaky.sshd.start()
        await until(pilot, lambda: main.state_of("lost@flaky") == "stopped" and "@flaky" not in rows(),
                    timeout=30, what="flaky back by itself")
        await pilot.press("q")
