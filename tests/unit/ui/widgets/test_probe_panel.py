"""The Probe tab widget: pure rendering of results (recorded in tests/data/probe)."""

from __future__ import annotations

from tests.support.probes import chat_result, tools_result
from vllmtui.ui.widgets.probe_panel import last_probe_cell, panel_text


def test_panel_text_shows_each_kind_checks_and_fix() -> None:
    text = panel_text("tiny", {"tools": tools_result(), "chat": chat_result()}).plain
    assert "tool calls  FAILED" in text and "chat  ok" in text
    assert "tool round trip  not run in this run yet" in text
    assert "✗ arguments match the tool's JSON Schema: get_weather: arguments: 178003 is not of type 'object'" in text
    assert "fix: add `enable_auto_tool_choice: true`" in text
    assert "time to first token 0.019 s · 337.6 tokens/s" in text
    assert "[bold]not markup[/bold]\\x1b[31m" in text  # server text is escaped, never markup
    assert panel_text(None, {}).plain.startswith("no server selected")


def test_last_probe_cell() -> None:
    assert last_probe_cell(None).plain == "-"
    cell = last_probe_cell(tools_result(), now=1120.0)
    assert cell.plain == "tools FAIL 2m" and "red" in str(cell.style)
    assert last_probe_cell(chat_result(), now=1000.0).plain == "chat ok 10s"
