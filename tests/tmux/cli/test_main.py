"""The `vllmtui` command: output and exit codes (0 ok, 1 failed, 2 bad usage/invalid profile).
`vllmtui probe` / `vllmtui snippet` without a server: tunnels' base URLs, a stopped server's
explanation, a broken tools file (no traceback, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import free_port, wait_for

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_invalid_profile_exits_2_with_file_line_and_nothing_starts(
    run_cli: Cli, write_profile: Callable[..., Path], settings
) -> None:  # type: ignore[no-untyped-def]
    path = write_profile("broken", model="m", max_model_length=4096)
    for verb in ("check", "start"):
        proc = run_cli(verb, "broken")
        assert proc.returncode == 2
        assert proc.stderr == (
            "invalid profile:\n"
            f"  {path}:2: max_model_length: unknown field (did you mean max_model_len?)\n"
        )
        assert "Traceback" not in proc.stderr
    assert not (settings.state_dir / "runs").exists()
    listing = run_cli("profiles")
    assert listing.returncode == 2 and "INVALID" in listing.stdout


def test_unknown_profile_and_bad_set(run_cli: Cli, standin_profile: Callable[..., Path]) -> None:
    standin_profile("srv")
    proc = run_cli("start", "sr")
    assert proc.returncode == 2 and "no profile named 'sr' (did you mean srv?)" in proc.stderr
    proc = run_cli("check", "srv", "--set", "port")
    assert proc.returncode == 2 and "--set 'port': write it as key=value" in proc.stderr
    proc = run_cli("check", "srv", "--set", "prot=1")
    assert proc.returncode == 2 and "prot: unknown field (did you mean port?)" in proc.stderr


def test_check_prints_the_masked_command(run_cli: Cli, standin_profile: Callable[..., Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    standin_profile("srv", args={"hf-token": "hf_secret_value"})
    proc = run_cli("check", "srv", "--port", "18777")
    assert proc.returncode == 0, proc.stderr
    assert "--port 18777" in proc.stdout and "--hf-token '****'" in proc.stdout
    assert "hf_secret_value" not in proc.stdout
    assert proc.stdout.rstrip().endswith("ok: ready to start")


def test_start_status_logs_stop_cycle(run_cli: Cli, standin_profile: Callable[..., Path]) -> None:
    standin_profile("srv")
    proc = run_cli("start", "srv", "--wait", "--timeout", "30")
    assert proc.returncode == 0, proc.stderr
    assert "srv: ready" in proc.stdout and "console: tmux -L vllmtui-test-" in proc.stdout
    again = run_cli("start", "srv")
    assert again.returncode == 1 and "srv is already running (tmux session vllmtui-srv)" in again.stderr
    status = json.loads(run_cli("status", "--json", check=True).stdout)
    # the shipped profiles (./profiles) are listed too, stopped
    (srv,) = [s for s in status["servers"] if s["name"] == "srv"]
    assert srv["state"] == "ready" and srv["session"] == "vllmtui-srv"
    text = run_cli("status", check=True).stdout
    (line,) = [ln for ln in text.splitlines() if ln.startswith("srv ")]
    assert " ready " in line
    logs = run_cli("logs", "srv", "-n", "2", check=True).stdout.splitlines()
    assert logs[-1] == "INFO:     Application startup complete."
    stop = run_cli("stop", "srv", check=True)
    assert "srv: stopped gracefully (SIGINT)" in stop.stdout
    missing = run_cli("stop", "srv")
    assert missing.returncode == 1 and "srv is not running" in missing.stderr
    assert run_cli("attach", "srv").returncode == 1
    history = json.loads(run_cli("runs", "srv", "--json", check=True).stdout)
    assert len(history) == 1 and history[0]["exit"]["how"] == "graceful"
    assert "Application startup complete." in run_cli("logs", "srv", check=True).stdout


def test_crash_is_reported_with_cause_and_exit_1(run_cli: Cli, standin_profile: Callable[..., Path]) -> None:
    standin_profile("oom", mode="crash-oom")
    proc = run_cli("start", "oom", "--wait", "--timeout", "30")
    assert proc.returncode == 1
    assert "oom did not become ready: crashed" in proc.stderr
    assert "cause: torch.OutOfMemoryError: CUDA out of memory." in proc.stderr
    status = run_cli("status", "oom", check=True).stdout
    assert "crashed" in status and "hint: out of GPU memory" in status


def test_reap_lists_and_kills_orphans(run_cli: Cli, standin_profile: Callable[..., Path], settings) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    from vllmtui.servers.fleet import Fleet

    standin_profile("orph", mode="engine")
    run_cli("start", "orph", "--wait", "--timeout", "30", check=True)
    fleet = Fleet(settings)
    os.kill(fleet.status_by_name("orph").pid, signal.SIGKILL)
    wait_for(lambda: fleet.orphans(), 10, what="orphan")
    dry = run_cli("reap", "--dry-run", check=True)
    assert "VLLM::EngineCore" in dry.stdout
    assert "orphaned vLLM process(es)" in run_cli("status", check=True).stdout
    real = run_cli("reap", check=True)
    assert "killed 1 process(es)" in real.stdout
    assert run_cli("reap", check=True).stdout.strip() == "no orphaned vLLM processes"


def test_runtime_registry(run_cli: Cli, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch(mode=0o755)
    assert run_cli("runtime", "set", "mine", str(venv)).returncode == 0
    listing = run_cli("runtime", check=True).stdout
    assert f"@mine             {venv}  (ok)" in listing and "@vllm-cpu" in listing
    bad = run_cli("runtime", "set", "x", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "neither a venv" in bad.stderr


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


def test_unusable_directories_are_refused_before_anything_runs(
    run_cli: Cli, cli_env: dict[str, str], standin_profile: Callable[..., Path], tmp_path: Path, settings
) -> None:  # type: ignore[no-untyped-def]
    standin_profile("srv")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    fix = "give a writable directory with --state-dir DIR or $VLLMTUI_STATE_DIR"
    cases = {
        ("--state-dir", "/proc/x"): f"--state-dir /proc/x cannot be created (No such file or directory): {fix}",
        ("--state-dir", str(a_file)): f"--state-dir {a_file} is a file, not a directory: {fix}",
        ("--state-dir", str(a_file / "sub")): f"--state-dir {a_file / 'sub'} cannot be created: {a_file} is a file",
        ("--state-dir", "/proc/sys"): f"--state-dir /proc/sys is not writable: {fix}",
        ("--profiles-dir", str(a_file)): f"--profiles-dir {a_file} is a file, not a directory",
        ("--profiles-dir", str(tmp_path / "nowhere")): f"--profiles-dir {tmp_path / 'nowhere'} does not exist",
    }
    for (option, value), message in cases.items():
        for verb in ("start", "status"):
            proc = run_cli(option, value, verb, "srv")
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert proc.stderr.startswith("vllmtui: ") and message in proc.stderr, proc.stderr
    for variable, what in (("VLLMTUI_STATE_DIR", "state"), ("VLLMTUI_DATA_DIR", "data"),
                           ("VLLMTUI_CONFIG_DIR", "config"), ("VLLMTUI_PROFILES", "profiles")):
        env = dict(cli_env, **{variable: str(a_file)})
        proc = subprocess.run([sys.executable, "-m", "vllmtui", "start", "srv"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (what, proc.stderr)
        assert f"${variable} {a_file} is a file, not a directory" in proc.stderr, proc.stderr
    # nothing was started, and no state was written anywhere
    assert subprocess.run(["tmux", "-L", settings.tmux_socket, "ls"], capture_output=True).returncode != 0
    assert not settings.state_dir.exists()


def test_a_file_operation_that_fails_in_a_directory_names_it(run_cli: Cli, cli_env: dict[str, str]) -> None:
    # the data directory cannot be known bad up front (/proc/x looks creatable): the failure says where
    env = dict(cli_env, VLLMTUI_DATA_DIR="/proc/x")
    proc = subprocess.run([sys.executable, "-m", "vllmtui", "demo-model"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "(in the data directory ($VLLMTUI_DATA_DIR): /proc/x)" in proc.stderr
