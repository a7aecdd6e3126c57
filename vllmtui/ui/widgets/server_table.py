"""The server table: one row per profile (running or not) and per server found without one.

Rows are keyed by server name and updated cell by cell, so the selection stays on the
same server when rows appear, disappear or change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

CellValue = str | Text


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None


BASE_COLUMNS: tuple[Column, ...] = (
    Column("name", "NAME"),
    Column("status", "STATUS"),
    Column("port", "PORT"),
    Column("uptime", "UPTIME"),
    Column("model", "MODEL"),
    Column("gpus", "GPUS"),
)


@dataclass(frozen=True)
class Row:
    name: str
    cells: dict[str, CellValue]


class ServerTable(DataTable[CellValue]):
    """DataTable that is only ever updated with `show(rows)`."""

    def __init__(self, columns: Sequence[Column] = BASE_COLUMNS, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, id=id)
        self._columns = tuple(columns)
        self._rows: dict[str, Row] = {}
        # Per-cell render cache. DataTable keys its own on one table-wide update counter, so
        # a single changed cell (an uptime ticking each second) re-renders all ~100 cells:
        # ~9 ms of CPU a second on these machines. Here a cell is re-rendered only when its
        # own value changed (its stamp) or the layout did (`_layout`, also when DataTable
        # changed something on its own: a resize).
        self._stamp = 0
        self._layout = 0
        self._known_count = -1
        self._cell_stamp: dict[tuple[str, str], int] = {}
        self._cells: dict[tuple[object, ...], list[list[Segment]]] = {}

    def on_mount(self) -> None:
        for col in self._columns:
            self.add_column(col.label, key=col.key, width=col.width)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Show these columns from now on (the rows are put in again at the next `show`)."""
        if tuple(columns) == self._columns:
            return
        self._columns = tuple(columns)
        self.clear(columns=True)
        self._rows = {}
        for col in self._columns:
            self.add_column(col.label, key=col.key, width=col.width)

    @property
    def selected_name(self) -> str | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value

    def select(self, name: str) -> bool:
        if name not in self._rows:
            return False
        self.move_cursor(row=self.get_row_index(name), animate=False)
        return True

    def _new_layout(self) -> None:
        self._stamp += 1
        self._layout = self._stamp
        self._cell_stamp.clear()
        self._cells.clear()

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._new_layout()

    def notify_style_update(self) -> None:
        self._new_layout()
        super().notify_style_update()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if self._update_count != self._known_count:  # DataTable changed something itself
            self._known_count = self._update_count
            self._new_layout()
        stamp = self._layout
        if row_index >= 0 and column_index >= 0:
            cell = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
            own = self._cell_stamp.get((cell.row_key.value or "", cell.column_key.value or ""), 0)
            stamp = max(stamp, own)
        key = (row_index, column_index, base_style, width, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state, stamp)
        lines = self._cells.get(key)
        if lines is None:
            if len(self._cells) > 4096:
                self._cells.clear()
            lines = self._cells[key] = super()._render_cell(row_index, column_index, base_style,
                                                            width, cursor, hover)
        return lines

    def _update_row(self, old: Row, row: Row) -> bool:
        """Put a row's changed cells in; True when one changed its width (its column may
        resize: the whole table is drawn again), False when none did (DataTable's own
        `update_cell` would redraw every row: the cells are put in place, the row redrawn)."""
        resized = False
        for col in self._columns:
            value = row.cells.get(col.key, "")
            before = old.cells.get(col.key, "")
            if before == value:
                continue
            self._stamp += 1
            self._cell_stamp[(row.name, col.key)] = self._stamp
            if len(str(before)) != len(str(value)):
                self.update_cell(row.name, col.key, value, update_width=True)
                resized = True
            else:
                self._data[RowKey(row.name)][ColumnKey(col.key)] = value
                self._update_count += 1  # DataTable's caches of rows and lines
        return resized

    def show(self, rows: Sequence[Row]) -> None:
        """Make the table show exactly `rows`, in that order, keeping the selection."""
        keep = self.selected_name
        changed = False
        if self._update_count != self._known_count:  # DataTable changed something itself
            self._new_layout()
        wanted = [r.name for r in rows]
        order_changed = [n for n in wanted if n in self._rows] != [
            n for n in self._rows if n in set(wanted)
        ]
        if order_changed:
            self.clear()
            self._rows = {}
        for gone in [n for n in self._rows if n not in set(wanted)]:
            self.remove_row(gone)
            del self._rows[gone]
            changed = True  # the rows below moved up: their cached cells are stale
        touched: set[str] = set()  # rows with a cell changed in place (its width the same)
        for row in rows:
            old = self._rows.get(row.name)
            cells = [row.cells.get(c.key, "") for c in self._columns]
            if old is None:
                self.add_row(*cells, key=row.name)
                changed = True
            elif self._update_row(old, row):
                changed = True
            elif old != row:
                touched.add(row.name)
            self._rows[row.name] = row
        # new rows were appended at the end: rebuild when that broke the wanted order
        if list(self._rows) != wanted:
            self.clear()
            self._rows = {}
            for row in rows:
                self.add_row(*[row.cells.get(c.key, "") for c in self._columns], key=row.name)
                self._rows[row.name] = row
        if changed or order_changed:
            # Textual 8.2 can keep the cursor row's rendering from before a column grew
            # (a row drawn cut to the old widths): drop the row caches after any change
            self._clear_caches()
            self.refresh()
        else:  # only the rows that changed are drawn again (an uptime ticking: one row)
            for name in touched:
                self.refresh_row(self.get_row_index(name))
        self._known_count = self._update_count  # what show() did is in the cell stamps
        if keep is not None and keep in self._rows:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)
