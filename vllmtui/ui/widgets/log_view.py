"""The Log tab's viewer: a line-API scroll view over the last lines of a run's log.

It holds at most `max_lines` lines (the worker feeds it from the end of the file by byte
offset), renders only the visible lines, keeps ANSI colours, collapses tqdm `\\r` redraws,
follows the end unless the user scrolls up, searches (n/N), filters to warnings+errors
and jumps to the first error.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vllmtui.servers import failures, logs

MAX_LINES = 20_000


def display_line(raw: str) -> str:
    """Keep colours, collapse a `\\r` redraw to its last non-empty state."""
    text = raw.rstrip("\r\n")
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return text.expandtabs(8) if "\t" in text else text


def display_lines(raw_lines: list[str]) -> tuple[list[str], list[str]]:
    """`display_line` of each line, and each without its ANSI codes; a batch without any `\\r`,
    tab or escape (a fast log: 20,000 lines a second) costs one scan of it, not a regex a line."""
    joined = "\n".join(raw_lines)
    plain_batch = joined.count("\n") == len(raw_lines) - 1 and "\r" not in joined and "\t" not in joined
    shown = raw_lines if plain_batch else [display_line(r) for r in raw_lines]
    plain = [logs.clean_line(s) for s in shown] if "\x1b" in joined else shown
    return shown, plain


class LogView(ScrollView, can_focus=True):
    """Lines are numbered absolutely (line `first` is `_lines[0]`), so trimming the front
    never invalidates the filter, search matches or the current match."""

    DEFAULT_CSS = """
    LogView { background: $surface; }
    """

    def __init__(self, max_lines: int = MAX_LINES, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._plain: list[str] = []
        self._first = 0
        self._width = 0
        self.follow = True
        self.problems_only = False
        self._view: list[int] = []  # absolute numbers of problem lines (filter on)
        self.search: str | None = None
        self.match: int | None = None
        self._cache: dict[int, Text] = {}
        # optional str -> str applied to what is shown (tests freeze pids and times)
        self.scrub: Callable[[str], str] | None = None
        self.empty_text = "no log yet"

    # ---------------------------------------------------------------- content

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> list[str]:
        """The kept lines, cleaned (no ANSI), oldest first."""
        return list(self._plain)

    def clear_lines(self, empty_text: str = "no log yet") -> None:
        self._lines, self._plain, self._view = [], [], []
        self._first, self._width, self.match = 0, 0, None
        self._cache.clear()
        self.follow = True
        self.empty_text = empty_text
        self._resize()

    def append(self, raw_lines: list[str]) -> None:
        if not raw_lines:
            return
        if len(raw_lines) > self.max_lines:
            skipped = len(raw_lines) - self.max_lines
            raw_lines = raw_lines[-self.max_lines :]
            self._first += skipped  # keeps numbers absolute even for lines never kept
        start = self._first + len(self._lines)
        shown, plain = display_lines(raw_lines)
        self._lines.extend(shown)
        self._plain.extend(plain)
        shown_plain = [self.scrub(p) for p in plain] if self.scrub else plain
        self._width = max(self._width, max(len(p) for p in shown_plain))
        if self.problems_only:
            self._view.extend(start + i for i, p in enumerate(plain) if logs.is_problem_line(p))
        excess = len(self._lines) - self.max_lines
        if excess > 0:
            del self._lines[:excess]
            del self._plain[:excess]
            self._first += excess
            del self._view[: bisect_left(self._view, self._first)]
            self._cache = {k: v for k, v in self._cache.items() if k >= self._first}
            if not self.follow:
                self.scroll_to(y=max(0, self.scroll_y - excess), animate=False, immediate=True)
        self._resize()
        if self.follow:  # at once: one frame, not one before the scroll and one after
            self._scroll_bottom()
            self._to_end()  # and once the new size is laid out, should it not be yet

    def _to_end(self) -> None:
        # the new virtual size is laid out on the next refresh: scroll after it
        self.call_after_refresh(self._scroll_bottom)

    def _scroll_bottom(self) -> None:
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _rows(self) -> int:
        return len(self._view) if self.problems_only else len(self._lines)

    def _abs_at(self, row: int) -> int | None:
        if self.problems_only:
            return self._view[row] if 0 <= row < len(self._view) else None
        return self._first + row if 0 <= row < len(self._lines) else None

    def _row_of(self, absolute: int) -> int:
        if self.problems_only:
            return bisect_left(self._view, absolute)
        return absolute - self._first

    def _resize(self) -> None:
        self.virtual_size = Size(self._width + 1, max(1, self._rows()))
        self.refresh()

    # ---------------------------------------------------------------- follow / scroll

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value and new_value < self.max_scroll_y:
            self.follow = False
        elif new_value >= self.max_scroll_y:
            self.follow = True

    def follow_end(self) -> None:
        self.follow = True
        self._to_end()

    def _show_line(self, absolute: int) -> None:
        self.follow = False
        row = self._row_of(absolute)
        top = max(0, row - self.size.height // 2)
        self.scroll_to(y=top, animate=False, immediate=True)
        self.follow = False  # stay on the line while new ones arrive
        self.refresh()

    # ---------------------------------------------------------------- filter / search

    def set_problems_only(self, on: bool) -> None:
        self.problems_only = on
        self._view = (
            [self._first + i for i, p in enumerate(self._plain) if logs.is_problem_line(p)]
            if on
            else []
        )
        self._resize()
        if self.match is not None and (not on or self.match in self._view):
            self._show_line(self.match)
        else:
            self.follow_end()

    def find(self, term: str, forward: bool = True, from_line: int | None = None) -> bool:
        """Select the next (or previous) line containing `term` (case-insensitive)."""
        self.search = term or None
        self._cache.clear()
        if not term:
            self.match = None
            self.refresh()
            return False
        needle = term.lower()
        candidates = (
            self._view if self.problems_only else range(self._first, self._first + len(self._plain))
        )
        hits = [n for n in candidates if needle in self._plain[n - self._first].lower()]
        if not hits:
            self.match = None
            self.refresh()
            return False
        here = from_line if from_line is not None else self.match
        if here is None:
            top = self._abs_at(int(self.scroll_y)) or self._first
            here = top - 1 if forward else top + self.size.height
        if forward:
            after = [n for n in hits if n > here]
            self.match = after[0] if after else hits[0]
        else:
            before = [n for n in hits if n < here]
            self.match = before[-1] if before else hits[-1]
        self._show_line(self.match)
        return True

    def first_error(self, root_cause: str | None = None) -> bool:
        """Show the root-cause line when it is kept, else the first error-looking line."""
        target = None
        if root_cause:
            for i, p in enumerate(self._plain):
                if p.strip() == root_cause.strip():
                    target = self._first + i
                    break
        if target is None:
            for i, p in enumerate(self._plain):
                if failures.failure_of(p) is not None:
                    target = self._first + i
                    break
        if target is None:
            return False
        if self.problems_only and target not in self._view:
            self.set_problems_only(False)
        self.match = target
        self._cache.pop(target, None)
        self._show_line(target)
        return True

    # ---------------------------------------------------------------- rendering

    def _text(self, absolute: int) -> Text:
        cached = self._cache.get(absolute)
        if cached is not None:
            return cached
        raw = self._lines[absolute - self._first]
        if self.scrub is not None:
            raw = self.scrub(raw)
        text = Text.from_ansi(raw, end="") if "\x1b" in raw else Text(raw, end="")
        if self.search:
            text.highlight_words([self.search], style="reverse", case_sensitive=False)
        if absolute == self.match:
            text.stylize("bold underline")
        if len(self._cache) > 4000:
            self._cache.clear()
        self._cache[absolute] = text
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        style = self.rich_style
        if not self._lines:
            if y == 0:
                return Strip(
                    [Segment(self.empty_text[:width], Style(dim=True))]
                ).extend_cell_length(width, style)
            return Strip.blank(width, style)
        absolute = self._abs_at(scroll_y + y)
        if absolute is None:
            return Strip.blank(width, style)
        text = self._text(absolute)
        if not text.spans and not text.style:  # a plain line (most are): one segment
            segments = [Segment(text.plain, style)]
        else:
            segments = list(Segment.apply_style(text.render(self.app.console, end=""), style=style))
        return Strip(segments, text.cell_len).crop_extend(scroll_x, scroll_x + width, style)
