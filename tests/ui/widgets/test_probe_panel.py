"""The Probe tab widget: a Pilot run of the panel's interface (show_server, probe_started,
append_text, show)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tests.support.probes import chat_result, tools_result
from vllmtui.probes.snippets import client_snippets
from vllmtui.ui.widgets.probe_panel import ProbePanel


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
