"""The tmux layer against a real tmux server on an isolated socket."""

from __future__ import annotations

import pytest

from vllmtui.core.tmux import SessionExists, Tmux


def test_options_round_trip_with_awkward_values(tmux: Tmux) -> None:
    tmux.new_session("vllmtui-a", ["sleep", "30"])
    tmux.set_options("vllmtui-a", {"run-dir": "/tmp/with space/and:colon|pipe", "port": "8000"})
    (info,) = tmux.sessions()
    assert info.name == "vllmtui-a" and not info.dead and info.pane_pid
    assert info.option("run-dir") == "/tmp/with space/and:colon|pipe"
    assert info.option("port") == "8000" and info.option("stopping") is None


def test_new_session_is_atomic_and_keeps_dead_panes(tmux: Tmux) -> None:
    tmux.new_session("vllmtui-b", ["sleep", "30"])
    with pytest.raises(SessionExists):
        tmux.new_session("vllmtui-b", ["sleep", "30"])
    assert [s.name for s in tmux.sessions()] == ["vllmtui-b"]
    assert tmux.kill_session("vllmtui-b") is True
    assert tmux.kill_session("vllmtui-b") is False
    assert tmux.sessions() == []  # no server left: an empty list, not an error
