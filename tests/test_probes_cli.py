"""`vllmtui probe` / `vllmtui snippet` as real processes, without a server: tunnels' base
URLs, a stopped server's explanation, a broken tools file (no traceback, exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import free_port


def test_snippet_through_local_and_remote_tunnels(write_profile: Callable[..., Path], run_cli: Any) -> None:
    port = free_port()
    write_profile("tun", model="demo:tiny", served_model_name="tiny", port=port, api_key_env="TUN_KEY",
                  tunnels=[{"destination": "gpu-box", "direction": "local", "bind_port": 18100},
                           {"destination": "gateway", "direction": "remote", "bind_port": 9000}])
    local = run_cli("snippet", "tun", "--tunnel", "tun", "--json")
    assert local.returncode == 0, local.stderr
    snips = json.loads(local.stdout)
    assert "http://127.0.0.1:18100/v1/chat/completions" in snips["curl"] and "$TUN_KEY" in snips["curl"]
    remote = run_cli("snippet", "tun", "--tunnel", "tun-2", "--lang", "python")
    assert remote.returncode == 0, remote.stderr
    assert "# these work on gateway" in remote.stdout and 'base_url="http://127.0.0.1:9000/v1"' in remote.stdout
    refused = run_cli("probe", "tun", "--tunnel", "tun-2")
    assert refused.returncode == 2 and "remote tunnel" in refused.stderr and "Traceback" not in refused.stderr


def test_probe_of_stopped_server_and_broken_tools_file(write_profile: Callable[..., Path], run_cli: Any,
                                                       tmp_path: Path) -> None:
    write_profile("idle", model="demo:tiny", port=free_port())
    proc = run_cli("probe", "idle", "--chat")
    assert proc.returncode == 1
    assert "idle is not running" in proc.stdout and "fix:  start it: `vllmtui start idle`" in proc.stdout
    bad = tmp_path / "tools.yaml"
    bad.write_text("- name: lookup\n  parameters: {type: nonsense}\n")
    proc = run_cli("probe", "idle", "--tools", "--tools-file", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"tools file {bad}: tool #1 (lookup): 'parameters' is not a valid JSON Schema" in proc.stderr
