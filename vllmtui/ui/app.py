"""The Textual app (placeholder until the TUI issue lands)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

from vllmtui.settings import Settings


class VllmtuiApp(App[int]):
    TITLE = "vllmtui"
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("vllmtui: use `vllmtui --help` for the commands.", id="placeholder")
        yield Footer()


def run_app(settings: Settings) -> int:
    return VllmtuiApp(settings).run() or 0
