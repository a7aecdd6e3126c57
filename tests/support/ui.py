"""Helpers for the TUI tests: wait on the app's own state with a deadline."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from textual.pilot import Pilot

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
                f" notifications {[n.message for n in pilot.app._notifications]}"
            )
        await pilot.pause(0.05)


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    await asyncio.sleep(0)
