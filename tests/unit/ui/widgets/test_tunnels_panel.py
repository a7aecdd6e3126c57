"""The tunnels panel's pure rendering: its text and the table's row marks."""

from __future__ import annotations

from tests.support.tunnels import statuses
from vllmtui.tunnels.manager import laptop_command
from vllmtui.ui.widgets.tunnels_panel import tunnel_marks, tunnels_text


def test_panel_text_and_row_marks() -> None:
    laptop = laptop_command("127.0.0.1", 8000, env={"SSH_CONNECTION": "a 1 10.0.0.5 22"},
                            user="alice")
    text = tunnels_text(statuses(), laptop).plain
    assert "srv" in text and "gw 127.0.0.1:8000 -> this host 127.0.0.1:8000" in text
    assert "auth failed" in text and "ssh -N -L 8000:127.0.0.1:8000 alice@10.0.0.5" in text
    assert tunnel_marks(statuses()) == {"srv": "⇄ up"}
    assert "no tunnels configured" in tunnels_text([]).plain
