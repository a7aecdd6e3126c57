"""Helpers for the TUI tests: wait on the app's own state with a deadline."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from vllmtui.ui.selection import Display

SCRUB_RES = (
    (re.compile(r"pid=\d+"), "pid=N"),
    (re.compile(r"\d\d-\d\d \d\d:\d\d:\d\d"), "MM-DD hh:mm:ss"),
    (re.compile(r"/tmp/\S+"), "/tmp/..."),
)


def scrub(text: str) -> str:
    for pattern, replacement in SCRUB_RES:
        text = pattern.sub(replacement, text)
    return text


FROZEN = Display(hostname="gpu-box", uptime=lambda _s: "1m00s", scrub=scrub,
                 gpu_summary="GPU: 1x (frozen for tests)")


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 20.0,
                what: str = "condition") -> object:
    """Let the app run until predicate() is truthy; fail after `timeout` seconds, saying
    what the app last read (its statuses and any poll error)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            app = getattr(pilot.app, "main", pilot.app)  # the main screen holds what was read
            seen = {n: (st.state, st.detail) for n, st in getattr(app, "statuses", {}).items()}
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; the app saw {seen},"
                f" poll error {getattr(app, 'poll_error', None)!r}, polls {getattr(app, 'polls', 0)},"
                f" notifications {[n.message for n in pilot.app._notifications]},"
                f" screens {[type(sc).__name__ for sc in pilot.app.screen_stack]}"
            )
        await pilot.pause(0.05)


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await asyncio.sleep(0)


class Harness(App[None]):
    """A bare app around the widgets under test (no main screen, no pollers)."""

    def __init__(self, *widgets: Widget) -> None:
        super().__init__()
        self._widgets = widgets

    def compose(self) -> ComposeResult:
        yield from self._widgets


def printed(widget: Static) -> str:
    """What a Static shows, printed as plain text 120 columns wide."""
    from io import StringIO

    from rich.console import Console

    console = Console(file=StringIO(), width=120, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


def rendered(app: App[None], selector: str) -> str:
    return str(app.query_one(selector, Static).render())
