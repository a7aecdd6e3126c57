"""Live behaviour of the screen: rows update without the selection jumping, a wedged or
dead server shows as such, and the log viewer (ANSI colours, tqdm redraws, following,
a bounded buffer)."""

from __future__ import annotations

import os
import signal

from textual.app import App, ComposeResult

from tests.test_ui_support import FROZEN, until
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.widgets.server_table import ServerTable


async def test_selection_stays_on_its_server_when_rows_change(settings, standin_profile):
    standin_profile("bravo")
    standin_profile("delta")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.state_of("delta") == "stopped", what="the table")
        app.query_one(ServerTable).select("delta")
        await pilot.pause()
        standin_profile("alpha")  # sorts first: every row below it moves down
        app.refresh_now(reload_profiles=True)
        await until(pilot, lambda: app.state_of("alpha") == "stopped", what="the new row")
        assert app.order.index("delta") == 2
        assert app.selected == "delta"
        (settings.profiles_dirs[0] / "alpha.yaml").unlink()
        app.refresh_now(reload_profiles=True)
        await until(pilot, lambda: app.state_of("alpha") is None, what="the row gone")
        assert app.selected == "delta"


async def test_a_wedged_server_shows_as_unhealthy(settings, standin_profile):
    standin_profile("wedgy", mode="wedge", env={"STANDIN_WEDGE_AFTER": "1.5"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.state_of("wedgy") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.state_of("wedgy") == "ready", what="ready")
        await until(pilot, lambda: app.state_of("wedgy") == "unhealthy", what="unhealthy")
        assert "wedged" in app.statuses["wedgy"].detail
        # the UI kept answering while /health hung
        await pilot.press("i")
        assert app.query_one("#detail").active == "tab-info"
        await pilot.press("X")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        await until(pilot, lambda: app.state_of("wedgy") == "stopped", what="killed")


async def test_a_dead_server_shows_as_dead(settings, standin_profile):
    standin_profile("victim")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.state_of("victim") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.state_of("victim") == "ready", what="ready")
        os.kill(app.statuses["victim"].pid, signal.SIGKILL)
        # tmux usually reports the signal (crashed: killed by signal 9); at times it reports
        # neither status nor signal for the dead pane, and the foundation says `exited`
        await until(pilot, lambda: app.state_of("victim") in ("crashed", "exited"), what="dead")
        assert not app.statuses["victim"].running


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(max_lines=100, id="log")


async def test_log_view_colours_redraws_follow_and_bound():
    app = LogApp()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(LogView)
        view.append(["\x1b[31mred warning\x1b[0m", "50%|#####     |\r100%|##########|\r\n"])
        await pilot.pause()
        assert view.lines == ["red warning", "100%|##########|"]
        first = view.render_line(0)
        assert any(seg.style and seg.style.color and seg.style.color.number == 1  # ANSI red
                   for seg in first)
        view.append([f"line {i}" for i in range(300)])
        await pilot.pause()
        assert view.line_count == 100 and view.lines[-1] == "line 299"
        assert view.follow and view.scroll_y == view.max_scroll_y
        # scrolled up: new lines do not move the view
        view.scroll_to(y=10, animate=False, immediate=True)
        await pilot.pause()
        assert not view.follow
        view.append(["more"])
        await pilot.pause()
        assert not view.follow and view.scroll_y < view.max_scroll_y
        view.follow_end()
        await pilot.pause()
        assert view.follow and view.scroll_y == view.max_scroll_y
