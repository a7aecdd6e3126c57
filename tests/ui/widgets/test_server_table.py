"""The server table renders a changed cell again, and only that cell (DataTable alone would
render all of them for any change); rows that move and columns that grow still draw right."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable

from vllmtui.ui.widgets.server_table import Column, Row, ServerTable

COLUMNS = (Column("name", "NAME"), Column("status", "STATUS"), Column("uptime", "UPTIME"))


def rows(uptimes: dict[str, str], status: str = "ready") -> list[Row]:
    return [Row(n, {"name": n, "status": status, "uptime": u}) for n, u in uptimes.items()]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ServerTable(columns=COLUMNS, id="t")


def screen_lines(table: ServerTable) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.row_count + 1)]


async def test_one_changed_cell_is_the_only_cell_rendered_again(monkeypatch) -> None:
    rendered: list[tuple[int, int]] = []
    real = DataTable._render_cell

    def counting(self, row_index, column_index, *args, **kwargs):  # type: ignore[no-untyped-def]
        rendered.append((row_index, column_index))
        return real(self, row_index, column_index, *args, **kwargs)

    monkeypatch.setattr(DataTable, "_render_cell", counting)
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(ServerTable)
        table.show(rows({"a": "10s", "b": "11s", "c": "12s"}))
        await pilot.pause()
        screen_lines(table)
        rendered.clear()
        table.show(rows({"a": "10s", "b": "13s", "c": "12s"}))  # b's uptime ticks
        await pilot.pause()
        lines = screen_lines(table)
        assert lines[2].split() == ["b", "ready", "13s"]
        assert lines[1].split() == ["a", "ready", "10s"] and lines[3].split() == ["c", "ready", "12s"]
        assert set(rendered) == {(1, 2)}, rendered  # row b, column uptime: nothing else


async def test_removed_row_and_grown_column_draw_and_click_right() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(ServerTable)
        table.show(rows({"a": "1s", "b": "2s", "c": "3s"}))
        await pilot.pause()
        screen_lines(table)
        table.show(rows({"a": "1s", "c": "3s"}))  # b stopped being listed: c moves up
        await pilot.pause()
        assert [line.split()[0] for line in screen_lines(table)[1:]] == ["a", "c"]
        await pilot.click(ServerTable, offset=(2, 2))  # the second body line
        await pilot.pause()
        assert table.selected_name == "c"
        long = "starting: loading weights ~12s left"
        table.show([Row("a", {"name": "a", "status": long, "uptime": "1s"}),
                    Row("c", {"name": "c", "status": "ready", "uptime": "3s"})])
        await pilot.pause()
        lines = screen_lines(table)
        assert long in lines[1]
        # the uptime column moved right for every row, the header too
        at = lines[0].index("UPTIME")
        assert lines[1][at:].strip() == "1s" and lines[2][at:].strip() == "3s"
        assert table.selected_name == "c"
