#!/usr/bin/env python3
"""The baseline of scripts/bench_tui.py: a bare Textual app with the widgets vllmtui's main
screen shows at start (a header line, a DataTable of the profiles, a TabbedContent with the
same tabs, a Footer), nothing else: no domain imports, no pollers.

Usage: bench_bare_app.py PROFILES_DIR   (one row per *.yaml in it, like vllmtui's table)
"""

from __future__ import annotations

import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

TABS = ("Log", "Info", "GPU", "Metrics", "Probe", "Tunnels", "Plan", "Bench", "Gateway", "Chat",
        "Models")


class Bare(App[None]):
    BINDINGS = [("q", "quit", "Quit")]

    def __init__(self, profiles: Path) -> None:
        super().__init__()
        self.names = sorted(p.stem for p in profiles.glob("*.yaml"))

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"bare  servers 0/{len(self.names)}")
        yield DataTable(id="servers")
        with TabbedContent():
            for title in TABS:
                with TabPane(title):
                    yield Static(f"the {title} tab")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("server", "state", "port", "uptime")
        for name in self.names:
            table.add_row(name, "stopped", "8000", "-")


if __name__ == "__main__":
    Bare(Path(sys.argv[1])).run()
