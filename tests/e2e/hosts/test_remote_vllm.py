"""A REAL vLLM (CPU build, tiny model) started on another host over ssh, probed there with
`probe --host`, and reached from here through `Hosts.forward` (what the TUI's probes use).

The host is `self`: root's own account over the loopback sshd (the vLLM CPU runtime lives in
root's data dir, which the test users cannot read), with its own tmux socket, state and
config dirs, so nothing of this machine's own vllmtui is seen or touched."""

from __future__ import annotations

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

from tests.support.helpers import ROOT, free_port
from tests.support.ssh_hosts import HostsEnv
from vllmtui.hosts.fleet import Hosts

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _self_host(base: Path) -> Path:
    tag = f"vt-{uuid.uuid4().hex[:8]}"
    command = base / "vllmtui"
    command.write_text(
        f"#!/bin/sh\nexport VLLMTUI_TMUX_SOCKET={tag} VLLMTUI_STATE_DIR={base}/state"
        f" VLLMTUI_CONFIG_DIR={base}/config\nexec {sys.executable} -m vllmtui \"$@\"\n")
    command.chmod(0o755)
    return command


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
    finally:
        run_cli("stop", "tiny", "--host", "self", timeout=120)
        subprocess.run(["tmux", "-L", command.read_text().split("VLLMTUI_TMUX_SOCKET=")[1].split()[0],
                        "kill-server"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
