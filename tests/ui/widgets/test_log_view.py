"""The log viewer: ANSI colours, tqdm redraws, following, a bounded buffer."""

from __future__ import annotations

from textual.app import App, ComposeResult

from vllmtui.ui.widgets.log_view import LogView


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
