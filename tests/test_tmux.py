"""The tmux layer against a real tmux server on an isolated socket."""

from __future__ import annotations

import pytest

from vllmtui.core import tmux as tmux_mod
from vllmtui.core.tmux import SessionExists, Tmux


def test_options_round_trip_with_awkward_values(tmux: Tmux) -> None:
    tmux.new_session("vllmtui-a", ["sleep", "30"])
    tmux.set_options("vllmtui-a", {"run-dir": "/tmp/with space/and:colon|pipe", "port": "8000"})
    (info,) = tmux.sessions()
    assert info.name == "vllmtui-a" and not info.dead and info.pane_pid
    assert info.option("run-dir") == "/tmp/with space/and:colon|pipe"
    assert info.option("port") == "8000" and info.option("stopping") is None


def test_separator_survives_tmux_format_escaping() -> None:
    # tmux 3.4 prints control characters in -F output escaped (\x1f became "\037" on the
    # GPU machines): the separator must be printable so every tmux version returns it as is
    assert tmux_mod._SEP.isprintable() and "#" not in tmux_mod._SEP


def test_new_session_is_atomic_and_keeps_dead_panes(tmux: Tmux) -> None:
    tmux.new_session("vllmtui-b", ["sleep", "30"])
    with pytest.raises(SessionExists):
        tmux.new_session("vllmtui-b", ["sleep", "30"])
    assert [s.name for s in tmux.sessions()] == ["vllmtui-b"]
    assert tmux.kill_session("vllmtui-b") is True
    assert tmux.kill_session("vllmtui-b") is False
    assert tmux.sessions() == []  # no server left: an empty list, not an error


def test_attach_argv_uses_the_socket(tmux: Tmux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    assert tmux.attach_argv("vllmtui-x") == ["tmux", "-L", str(tmux.socket), "attach-session", "-t", "vllmtui-x"]
    monkeypatch.setenv("TMUX", f"/tmp/tmux-0/{tmux.socket},123,0")
    assert tmux.attach_argv("vllmtui-x")[-3:] == ["switch-client", "-t", "vllmtui-x"]
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,123,0")  # inside another tmux server
    assert tmux.attach_argv("vllmtui-x") == [
        "env", "-u", "TMUX", "tmux", "-L", str(tmux.socket), "attach-session", "-t", "vllmtui-x"]
