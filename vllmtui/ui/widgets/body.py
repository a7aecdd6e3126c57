"""The one `Static` a text panel shows, updated from messages that may come while the panel is
still being built (mounted after the first frame) or already taken down (the app quitting)."""

from __future__ import annotations

from rich.console import RenderableType
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Static


def update_body(panel: Widget, body_id: str, content: RenderableType) -> bool:
    """Show `content` in the panel's `#body_id`; False (and nothing shown) while that body is
    not there: before the panel composed it, or after the app took it down. A panel that
    renders its whole text from its own state each time loses nothing by that."""
    try:
        body = panel.query_one(f"#{body_id}", Static)
    except NoMatches:
        return False
    body.update(content)
    return True
