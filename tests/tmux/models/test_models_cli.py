"""`vllmtui models`, `vllmtui models rm` and offline starts, as real processes against a real
hub cache in the test's folder (tests/support/hf_cache.py) and servers (the STAND-IN) in the
test's own tmux server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.helpers import ROOT, wait_for
from tests.support.hf_cache import add_revision, hub, repo_dir, tiny_model  # noqa: F401
from vllmtui.core import procs
from vllmtui.core.humanize import fmt_bytes
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cache(hub: Path, cli_env: dict[str, str]) -> Path:  # noqa: F811
    """org/tiny at main and v2 (v2: other weights, the rest shared) in the cache both the test
    and the `vllmtui` processes read."""
    cli_env["HF_HUB_CACHE"] = str(hub)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLMTUI_OFFLINE", "HF_HOME"):
        cli_env.pop(name, None)
    main = tiny_model(weights=4096)
    add_revision(hub, "org/tiny", main)
    add_revision(hub, "org/tiny", {**main, "model.safetensors": b"\x02" * 8192}, ref="v2")
    return hub


def answered(cli_env: dict[str, str], answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`vllmtui ARGS` with `answer` typed at its prompt."""
    return subprocess.run([sys.executable, "-m", "vllmtui", *args], env=cli_env, input=answer,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_models_lists_the_cache_and_local_dirs(cache: Path, run_cli: Cli, standin_profile, tmp_path: Path) -> None:
    local = tmp_path / "weights"
    local.mkdir()
    (local / "config.json").write_bytes(b"{}" * 100)
    standin_profile("tiny", model="org/tiny")
    standin_profile("mine", model=str(local))
    standin_profile("later", model="org/not-pulled")

    proc = run_cli("models")

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "REVISION", "SIZE", "LAST", "USED", "PROFILES"]
    tiny = next(line for line in lines if line.startswith("org/tiny "))
    assert "2 revisions" in tiny and tiny.rstrip().endswith("tiny") and "just now" in tiny
    assert any("(main)" in line and line.rstrip().endswith("tiny") for line in lines)
    assert any("(v2)" in line and line.rstrip().endswith("-") for line in lines)
    assert any(line.startswith(str(local)) and "local directory" in line and "200 B" in line for line in lines)
    assert "not in the cache: org/not-pulled (profile later): `vllmtui pull later` fetches it" in lines
    assert lines[-1].startswith("total: ") and " free of " in lines[-1] and str(cache) in lines[-1]

    data = json.loads(run_cli("models", "--json", check=True).stdout)
    assert data["cache_dir"] == str(cache) and data["free_bytes"] > 0
    model = next(m for m in data["models"] if m["repo_id"] == "org/tiny")
    assert model["profiles"] == ["tiny"] and model["size_on_disk"] > 12288
    assert sorted(tuple(r["refs"]) for r in model["revisions"]) == [("main",), ("v2",)]
    assert data["not_cached"][0]["repo_id"] == "org/not-pulled"


def test_rm_asks_naming_the_size_and_keeps_shared_blobs(cache: Path, cli_env: dict[str, str],
                                                        standin_profile) -> None:
    standin_profile("tiny", model="org/tiny")
    snapshots = repo_dir(cache, "org/tiny") / "snapshots"

    declined = answered(cli_env, "n\n", "models", "rm", "org/tiny", "--revision", "v2")
    assert declined.returncode == 1
    assert f"(1 of 2 revisions) from {cache}? This frees {fmt_bytes(8192)}. [y/N]" in declined.stdout
    assert "nothing removed" in declined.stdout and len(list(snapshots.iterdir())) == 2

    done = answered(cli_env, "y\n", "models", "rm", "org/tiny", "--revision", "v2")
    assert done.returncode == 0, done.stderr
    assert f"(v2)): {fmt_bytes(8192)} freed" in done.stdout
    [left] = list(snapshots.iterdir())
    assert (left / "config.json").read_bytes().startswith(b"{") and (left / "model.safetensors").stat().st_size == 4096

    gone = answered(cli_env, "", "models", "rm", "org/tiny", "--yes")
    assert gone.returncode == 0 and not repo_dir(cache, "org/tiny").exists()
    wrong = answered(cli_env, "", "models", "rm", "org/tiny")
    assert wrong.returncode == 2 and "no model 'org/tiny' in the Hugging Face cache" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_rm_is_refused_while_a_running_server_uses_it(cache: Path, run_cli: Cli, settings: Settings,
                                                      standin_profile) -> None:
    path = standin_profile("tiny", model="org/tiny", offline=True)
    fleet = Fleet(settings)
    fleet.start(find_profile(settings, "tiny"))
    wait_for(lambda: fleet.status_by_name("tiny").state == "ready", what="the stand-in ready")
    port = fleet.status_by_name("tiny").port

    proc = run_cli("models", "rm", "org/tiny", "--yes")

    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"vllmtui: org/tiny is in use by the running server tiny (port {port}): stop"
                                   " it first (`vllmtui stop tiny`, or x in the TUI); nothing removed")
    assert len(list((repo_dir(cache, "org/tiny") / "snapshots").iterdir())) == 2
    assert path.exists()
    fleet.stop("tiny")
    assert run_cli("models", "rm", "org/tiny", "--yes").returncode == 0


def _server_environ(settings: Settings, name: str) -> dict[str, str]:
    """The environment of the stand-in process the server's pane runs."""
    session = Tmux(settings.tmux_socket).session(f"vllmtui-{name}")
    assert session is not None and session.pane_pid

    def standin() -> int | None:
        found = [p.pid for p in procs.tree_of(session.pane_pid) if "fake_vllm_standin" in p.command]  # type: ignore[arg-type]
        return found[0] if found else None

    pid = int(wait_for(standin, what="the stand-in process"))  # type: ignore[arg-type]
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_offline_is_in_the_launched_servers_environment(cache: Path, settings: Settings, standin_profile,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    standin_profile("off", model="org/tiny", offline=True)
    standin_profile("boxed", model="org/tiny")
    fleet = Fleet(settings)
    fleet.start(find_profile(settings, "off"))
    env = _server_environ(settings, "off")
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    (settings.config_dir / "settings.yaml").write_text("offline: true\n")
    monkeypatch.setenv("VLLMTUI_CONFIG_DIR", str(settings.config_dir))
    boxed = Settings.from_env()  # the box's settings.yaml, as `vllmtui start` reads it
    assert boxed.offline and boxed.offline_from.endswith("settings.yaml:1")
    Fleet(replace(settings, offline=True, offline_from=boxed.offline_from)).start(find_profile(settings, "boxed"))
    env = _server_environ(settings, "boxed")
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"


def test_offline_with_a_missing_file_is_refused_at_once(cache: Path, run_cli: Cli, settings: Settings,
                                                        standin_profile) -> None:
    snapshot = add_revision(cache, "org/sharded", tiny_model(weights=100, shards=3))
    (snapshot / "model-00002-of-00003.safetensors").unlink()  # an interrupted copy
    path = standin_profile("tiny", model="org/sharded", offline=True)

    check = run_cli("check", "tiny")
    assert check.returncode == 2
    assert f"error: {path}:" in check.stderr
    assert (f"model: org/sharded (revision main) runs offline (`offline: true` in the profile) but the cache"
            f" ({snapshot}) lacks model-00002-of-00003.safetensors:") in check.stderr
    assert "`vllmtui pull tiny`" in check.stderr and "set `offline: false`" in check.stderr

    began = time.monotonic()
    start = run_cli("start", "tiny")
    assert start.returncode == 2 and "lacks model-00002-of-00003.safetensors" in start.stderr
    assert time.monotonic() - began < 30 and "Traceback" not in start.stderr
    assert Tmux(settings.tmux_socket).session("vllmtui-tiny") is None  # nothing started


def test_a_wrong_settings_file_is_one_clear_message(cache: Path, run_cli: Cli, settings: Settings) -> None:
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    (settings.config_dir / "settings.yaml").write_text("offline: sure\n")
    proc = run_cli("models")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"vllmtui: {settings.config_dir}/settings.yaml:1: offline: 'sure' is not true"
                                   " or false (write `offline: true` or `offline: false`)")
    assert os.listdir(settings.config_dir) == ["settings.yaml"]
