"""`vllmtui check` says everything `vllmtui start` would, before anything starts: the same
errors refuse both, the same warnings show in both (the real command line, the STAND-IN server)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.helpers import CONFIGS

Cli = Callable[..., subprocess.CompletedProcess[str]]


def lines_with(text: str, level: str) -> set[str]:
    """The `file:line: field: message` part of each `level` line of `check` or `start`."""
    return {m.group(1) for m in re.finditer(rf"^{level}: (.+)$", text, re.MULTILINE)}


def test_check_warns_what_start_warns(run_cli: Cli, standin_profile: Callable[..., Path], tmp_path: Path) -> None:
    model = tmp_path / "llama"
    model.mkdir()
    shutil.copy(CONFIGS / "Llama-3.1-8B.json", model / "config.json")
    path = standin_profile("long", model=str(model), max_model_len="10m", host="0.0.0.0")
    check = run_cli("check", "long")
    assert check.returncode == 0, check.stderr
    warned = lines_with(check.stdout, "warning")
    assert any("max_model_len" in w and "longer than the model's" in w for w in warned), check.stdout
    assert any(w.startswith(f"{path}:") and "host: 0.0.0.0 listens on every interface" in w for w in warned)
    start = run_cli("start", "long")
    assert start.returncode == 0, start.stderr
    assert lines_with(start.stderr, "warning") == warned
    run_cli("stop", "--force", "long")


def test_check_refuses_what_start_refuses(run_cli: Cli, standin_profile: Callable[..., Path], settings) -> None:  # type: ignore[no-untyped-def]
    path = standin_profile("unbound", host="10.255.255.1", api_key_env="NO_SUCH_KEY_VAR")
    check = run_cli("check", "unbound")
    start = run_cli("start", "unbound")
    assert check.returncode == start.returncode == 2
    refused = lines_with(check.stderr, "error")
    assert {f"{path}:{_line(path, 'host')}: host: 10.255.255.1 is not an address of this machine"
            " (`ip addr` lists them)",
            f"{path}:{_line(path, 'api_key_env')}: api_key_env: environment variable NO_SUCH_KEY_VAR"
            " is not set: export it before starting"} <= refused
    for problem in refused:
        assert problem in start.stderr
    assert not (settings.state_dir / "runs").exists()


def _line(path: Path, key: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(key + ":"))
