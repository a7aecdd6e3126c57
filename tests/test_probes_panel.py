"""The Probe tab widget: pure rendering of results (recorded in tests/data/probe) and a
Pilot run of the panel's interface (show_server, probe_started, append_text, show)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from textual.app import App, ComposeResult

from vllmtui.probes.runner import ChatStats, ProbeResult, ProbeStep
from vllmtui.probes.snippets import client_snippets
from vllmtui.probes.toolcheck import BUILTIN_TOOLS, check_tool_reply
from vllmtui.ui.widgets.probe_panel import ProbePanel, last_probe_cell, panel_text

DATA = Path(__file__).parent / "data" / "probe"


def tools_result(ok: bool = False) -> ProbeResult:
    reply = json.loads((DATA / "vllm-0.32-tools-required-number-args.json").read_text())
    checks = check_tool_reply(reply, BUILTIN_TOOLS, "required")
    step = ProbeStep("tool_choice=required", all(c.passed for c in checks), checks, status_code=200, seconds=0.4)
    refused = ProbeStep("tool_choice=auto", False, error="400: tool calls are not enabled [x]",
                        hint="add `enable_auto_tool_choice: true`", status_code=400)
    return ProbeResult("tools", "tiny", "http://127.0.0.1:8100", "tiny", 1000.0, 1.2, ok, (refused, step))


def chat_result() -> ProbeResult:
    step = ProbeStep("chat (streamed)", True, status_code=200, seconds=0.15)
    return ProbeResult("chat", "tiny", "http://127.0.0.1:8100", "tiny", 990.0, 0.2, True, (step,),
                       text="[bold]not markup[/bold]\x1b[31m", chat=ChatStats(0.019, 0.153, 337.6, 34, 46, "stop", 31))


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


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield ProbePanel(id="probe")


async def test_panel_interface_in_a_real_app() -> None:
    app = _Host()
    async with app.run_test(size=(120, 60)) as pilot:
        panel = app.query_one(ProbePanel)
        body = panel.query_one("#probe-body")

        def shown() -> str:
            return str(body.render())

        panel.show_server("tiny", {"tools": tools_result()})
        await pilot.pause()
        assert "tool calls  FAILED" in shown()
        panel.probe_started("chat")
        panel.append_text("hello ")
        panel.append_text("sea")
        await pilot.pause()
        assert "running chat probe" in shown() and "hello sea" in shown()
        panel.show(chat_result())
        await pilot.pause()
        assert "running chat probe" not in shown() and "chat  ok" in shown()
        panel.show_snippets(client_snippets("http://127.0.0.1:8100", "tiny", "TINY_KEY"))
        await pilot.pause()
        assert "$TINY_KEY" in shown()
        panel.show_server("other", {})
        await pilot.pause()
        assert "other" in shown() and "$TINY_KEY" not in shown()


def test_probe_modules_do_not_import_the_ui() -> None:
    code = (
        "import sys, vllmtui.probes, vllmtui.probe_target, vllmtui.probe_report, vllmtui.snippets;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
