"""The tmux layer against a real tmux server on an isolated socket."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.core.tmux import CLIENT_ENV, SessionExists, Tmux


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


def _reads_by_process(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    calls: list[tuple[str, ...]] = []
    original = Tmux.run

    def run(self: Tmux, *args: str, check: bool = True) -> list[str]:
        calls.append(args)
        return original(self, *args, check=check)

    monkeypatch.setattr(Tmux, "run", run)
    return calls


def test_a_persistent_tmux_reads_through_one_control_client(tmux: Tmux, monkeypatch: pytest.MonkeyPatch) -> None:
    tmux.new_session("vllmtui-a", ["sleep", "30"], options={"port": "8000", "run-dir": "/tmp/a b;c'd"})
    tmux.new_session("vllmtui-b", ["sleep", "30"])
    reader = Tmux(tmux.socket, persistent=True)
    calls = _reads_by_process(monkeypatch)
    try:
        first = reader.sessions()  # a process, then the control client starts
        client = reader._control
        assert client is not None and client.alive
        for _ in range(5):
            assert reader.sessions() == first
        assert [c[0] for c in calls].count("list-panes") == 1  # the first reading only
        # the same as a process reads, but for the control client's own attachment
        plain = tmux.sessions()
        assert [s.attached for s in plain] == [s.name == client.session for s in plain]
        assert [replace(s, attached=False) for s in plain] == first
        # no secret reaches it: the client runs with the allow-listed environment
        environ = Path(f"/proc/{client.pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if b"=" in item}
        assert names <= set(CLIENT_ENV) | {n for n in names if n.startswith("LC_")}
    finally:
        reader.close()
    assert not client.alive and reader._control is None


def test_a_dead_control_client_falls_back_to_a_process(tmux: Tmux, monkeypatch: pytest.MonkeyPatch) -> None:
    tmux.new_session("vllmtui-a", ["sleep", "30"])
    tmux.new_session("vllmtui-b", ["sleep", "30"])
    reader = Tmux(tmux.socket, persistent=True)
    try:
        reader.sessions()
        client = reader._control
        assert client is not None
        os.kill(client.pid, signal.SIGKILL)
        client._proc.wait()
        assert [s.name for s in reader.sessions()] == ["vllmtui-a", "vllmtui-b"]  # by a process
        assert reader._control is not None and reader._control is not client  # and reconnected
        tmux.kill_session(reader._control.session)  # the session it is attached to goes away
        assert len(reader.sessions()) == 1
        tmux.kill_session("vllmtui-b" if tmux.session("vllmtui-b") else "vllmtui-a")
        assert reader.sessions() == []
    finally:
        reader.close()
