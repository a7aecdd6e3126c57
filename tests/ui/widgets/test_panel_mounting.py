"""A tab's panel is mounted after the first frame: until its mount is done the screen hands it
nothing, and a text panel given a message before its body is composed (or after the app took
it down) shows it when it can instead of raising (CI once saw `NoMatches: #info-body`)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import TabbedContent, TabPane

from tests.support.ui import rendered
from vllmtui.core.settings import Settings
from vllmtui.ui.screens.tabs import panel_of, tab_panel
from vllmtui.ui.selection import Display, Selection
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.widgets.info_panel import InfoPanel


class Tabs(App[None]):
    def compose(self) -> ComposeResult:
        with TabbedContent():
            yield TabPane("Info", id="tab-info")


async def test_panel_of_answers_none_until_the_panel_is_composed(settings: Settings) -> None:
    app = Tabs()
    async with app.run_test() as pilot:
        panel = tab_panel("tab-info", settings, None, Display())  # type: ignore[arg-type]
        waiting = app.query_one("#tab-info", TabPane).mount(panel)
        assert panel in app.query_one("#tab-info", TabPane).children
        assert panel_of(app.screen, "tab-info") is None  # in the pane, not yet composed
        await waiting
        assert panel_of(app.screen, "tab-info") is panel
        panel.selection = Selection()  # type: ignore[attr-defined]
        await pilot.pause()
        assert "no server selected" in rendered(app, "#info-body").lower()


async def test_a_text_panel_without_its_body_shows_nothing_and_raises_nothing(settings: Settings) -> None:
    bare = InfoPanel(settings, Display())
    assert update_body(bare, "info-body", "not shown") is False
    app = Tabs()
    async with app.run_test() as pilot:
        panel = InfoPanel(settings, Display(), id="info")
        waiting = app.query_one("#tab-info", TabPane).mount(panel)
        panel.selection = Selection()  # before compose: was NoMatches
        await waiting
        await pilot.pause()
        assert update_body(panel, "info-body", "shown now") is True
        await pilot.pause()
        assert rendered(app, "#info-body") == "shown now"
