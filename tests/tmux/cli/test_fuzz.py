"""Property-based: random bytes and random YAML as a profile, through the real command line
(`check`, `start`, `profiles`): never a traceback; an invalid profile exits 2 naming the file,
and nothing is started."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.profiles.test_fuzz import DOCUMENTS, YAMLISH
from vllmtui.cli.main import main
from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_refused_or_valid(code: int, err: str, path: Path, verb: str) -> None:
    assert "Traceback" not in err
    if code == 2:
        assert str(path) in err or f"{path.parent.name}/{path.name}" in err, err
    else:  # random input that happens to be a valid profile: check passes, start fails later
        assert code in (0, 1), (code, err)
        assert verb != "start" or "was not started" in err or "not found" in err or code == 0


@pytest.fixture
def cli_args(settings: Settings) -> list[str]:
    return ["--profiles-dir", str(settings.profiles_dirs[0]), "--state-dir", str(settings.state_dir),
            "--tmux-socket", str(settings.tmux_socket)]


@FUZZ
@given(raw=st.binary(max_size=200) | YAMLISH.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_files_through_check_and_profiles(
    raw: bytes, cli_args: list[str], profiles_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = profiles_dir / "fuzz.yaml"
    path.write_bytes(raw)
    code, err = run_main(capsys, *cli_args, "check", "fuzz")
    assert_refused_or_valid(code, err, path, "check")
    code, _err = run_main(capsys, *cli_args, "profiles")
    assert code in (0, 2)


@FUZZ
@given(data=DOCUMENTS)
def test_random_profiles_through_start_start_nothing(
    data: dict[str, Any], cli_args: list[str], profiles_dir: Path, settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data.setdefault("model", "m")
    # the runtime is a program that does not exist: a valid profile is still refused
    data["runtime"] = {"command": ["/nonexistent/vllm", "serve"]}
    path = profiles_dir / "fuzz.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    code, err = run_main(capsys, *cli_args, "start", "fuzz")
    assert code == 2, err
    assert "Traceback" not in err and (str(path) in err or "fuzz" in err)
    assert Tmux(settings.tmux_socket).sessions() == []
    assert not (settings.state_dir / "runs").exists()


def test_a_real_process_never_prints_a_traceback(run_cli: Callable[..., subprocess.CompletedProcess[str]],
                                                 profiles_dir: Path) -> None:
    """A few hostile files through the real `vllmtui` process (stderr as a user sees it)."""
    bomb = ["model: m", "a0: &a0 [x,x,x,x,x,x,x,x,x]"]
    bomb += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    cases = {
        "binary": b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 8,
        "bomb": ("\n".join(bomb) + "\n").encode(),
        "twice": b"model: m\nport: 8000\nport: 8001\n",
        "unclosed": b"model: m\nargs: {seed: 1\n",
    }
    for name, raw in cases.items():
        path = profiles_dir / f"{name}.yaml"
        path.write_bytes(raw)
        for verb in ("check", "start"):
            proc = run_cli(verb, name, timeout=60)
            assert proc.returncode == 2, (name, proc.stderr)
            assert "Traceback" not in proc.stderr and str(path) in proc.stderr, (name, proc.stderr)
