"""The tunnels panel renders the statuses it is given (Textual Pilot)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tests.support.tunnels import statuses
from vllmtui.ui.widgets.tunnels_panel import TunnelsPanel


async def test_panel_renders_snapshots_it_is_given() -> None:
    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TunnelsPanel(id="tunnels")

    app = Host()
    async with app.run_test() as pilot:
        panel = app.query_one(TunnelsPanel)
        panel.show(statuses())
        await pilot.pause()
        assert [s.name for s in panel.statuses] == ["srv", "web"]
        assert "auth failed" in str(panel.render())
