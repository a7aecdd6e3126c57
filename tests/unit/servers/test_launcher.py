"""The server's environment (servers/launcher.py), built from vllmtui's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.profiles.launch import LaunchSpec
from vllmtui.servers.launcher import secret_values, server_environ


def spec(**env: str) -> LaunchSpec:
    return LaunchSpec(("vllm", "serve", "m"), env, {"VLLM_API_KEY": "TEAM_KEY"}, Path("/tmp"), None)


def test_server_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"TEAM_KEY": "sk-1", "OTHER_TEAM_KEY": "sk-2", "HF_TOKEN": "hf", "PATH": "/bin",
                        "TMUX": "/tmp/tmux-0/default,1,0", "TERM": "xterm", "MULTI": "a\nb",
                        "CUDA_VISIBLE_DEVICES": "0"}.items():
        monkeypatch.setenv(name, value)
    env = server_environ(spec(CUDA_VISIBLE_DEVICES="1"), secret_values(spec()),
                         frozenset({"TEAM_KEY", "OTHER_TEAM_KEY"}))
    # its key under vLLM's name only; no profile's key variable; not the caller's terminal
    assert env["VLLM_API_KEY"] == "sk-1" and "TEAM_KEY" not in env and "OTHER_TEAM_KEY" not in env
    assert "TMUX" not in env and "TERM" not in env and "MULTI" not in env
    # what vLLM needs of the caller's, and the profile's env, which wins
    assert env["HF_TOKEN"] == "hf" and env["PATH"] == "/bin" and env["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(UsageError, match="env.X: a value with a line break"):
        server_environ(spec(X="a\nb"), {}, frozenset())


def test_a_key_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-1\nsk-2")
    with pytest.raises(UsageError, match="TEAM_KEY holds a line break"):
        secret_values(spec())
    monkeypatch.delenv("TEAM_KEY")
    with pytest.raises(UsageError, match="environment variable TEAM_KEY is not set"):
        secret_values(spec())
