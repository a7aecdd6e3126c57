"""The feature panels on the real vLLM: a chat probe from the main screen passes."""

from __future__ import annotations

import pytest

from tests.support.ui import FROZEN, until
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.widgets.server_table import ServerTable


def cell(app: VllmtuiApp, name: str, column: str) -> str:
    return str(app.query_one(ServerTable).get_cell(name, column))


@pytest.mark.e2e
async def test_c_chat_probe_passes_on_real_vllm(vllm_server):
    app = VllmtuiApp(vllm_server.settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        name = vllm_server.name
        await until(pilot, lambda: app.main.state_of(name) == "ready", what="the real server ready")
        app.query_one(ServerTable).select(name)
        await pilot.press("c")
        panel = app.query_one("#probe-panel")
        await until(pilot, lambda: "chat" in panel.latest, timeout=120, what="the chat probe")
        assert panel.latest["chat"].ok, panel.latest["chat"].summary()
        await until(pilot, lambda: "tok/s" in cell(app, name, "load") or "/" in cell(app, name, "load"),
                    what="a metrics reading")
