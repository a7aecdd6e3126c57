"""The tmux layer's pure parts: the format separator and the attach command."""

from __future__ import annotations

import pytest

from vllmtui.core import tmux as tmux_mod
from vllmtui.core.tmux import Tmux


def test_separator_survives_tmux_format_escaping() -> None:
    # tmux 3.4 prints control characters in -F output escaped (\x1f became "\037" on the
    # GPU machines): the separator must be printable so every tmux version returns it as is
    assert tmux_mod._SEP.isprintable() and "#" not in tmux_mod._SEP


def test_attach_argv_uses_the_socket(tmux: Tmux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    assert tmux.attach_argv("vllmtui-x") == ["tmux", "-L", str(tmux.socket), "attach-session", "-t", "vllmtui-x"]
    monkeypatch.setenv("TMUX", f"/tmp/tmux-0/{tmux.socket},123,0")
    assert tmux.attach_argv("vllmtui-x")[-3:] == ["switch-client", "-t", "vllmtui-x"]
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,123,0")  # inside another tmux server
    assert tmux.attach_argv("vllmtui-x") == [
        "env", "-u", "TMUX", "tmux", "-L", str(tmux.socket), "attach-session", "-t", "vllmtui-x"]
