"""`vllmtui hosts install NAME` for real: a wheel of this checkout, sent over ssh, installed
in a fresh venv in the test user's home with its dependencies from the package index the
host reaches (this machine's pip configuration). Takes about a minute."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.ssh_hosts import HostsEnv

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_install_puts_this_version_on_the_host(hosts_env: HostsEnv, run_cli: Cli, cli_env: dict[str, str]) -> None:
    cli_env.update(hosts_env.env())
    home = hosts_env.dirs["host-b"].home
    shutil.rmtree(home / ".local" / "share" / "vllmtui", ignore_errors=True)
    hosts_env.hosts_yaml(extra={"fresh": {"ssh": "host-b", "ssh_config": str(hosts_env.sshd.config)}})
    before = {h["name"]: h for h in json.loads(run_cli("hosts", "--json").stdout)["hosts"]}
    assert before["fresh"]["state"] == "unreachable"
    assert "`vllmtui hosts install fresh`" in before["fresh"]["problem"]
    done = run_cli("hosts", "install", "fresh", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fresh: vllmtui 0.1.0" in done.stdout
    assert Path(home / ".local/share/vllmtui/venv/bin/vllmtui").is_file()
    after = {h["name"]: h for h in json.loads(run_cli("hosts", "--json").stdout)["hosts"]}
    assert after["fresh"]["state"] == "ok" and after["fresh"]["version"] == "0.1.0", after["fresh"]
