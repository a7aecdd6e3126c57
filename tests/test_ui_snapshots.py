"""Snapshots of the main screen in its main states (empty, starting, ready, crashed,
stopping) at 80x24 and 160x48. Servers run the STAND-IN on a real isolated tmux server;
host name, uptime and volatile log text (pids, times, temp paths) are frozen."""

from __future__ import annotations

import time

import pytest

from tests.test_ui_support import FROZEN, until
from vllmtui.core.tmux import Tmux
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.widgets.log_view import LogView

SIZES = [(80, 24), (160, 48)]
# fixed ports: they are on screen (table, log); each state has its own
PORTS = {"starting": 28301, "ready": 28302, "crashed": 28303, "stopping": 28304}


def _log_has(app: VllmtuiApp, text: str) -> bool:
    return any(text in line for line in app.query_one(LogView).lines)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_empty(snap_compare, settings, size):
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.polls > 0, what="the first poll")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_starting(snap_compare, settings, standin_profile, size):
    standin_profile("llama-70b", delay=600, port=PORTS["starting"])
    standin_profile("qwen-7b", port=28305)
    Fleet(settings).start(find_profile(settings, "llama-70b"))
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.state_of("llama-70b") == "starting", what="starting")
        await until(pilot, lambda: _log_has(app, "non-default args"), what="the log")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ready(snap_compare, settings, standin_profile, size):
    standin_profile("llama-70b", port=PORTS["ready"])
    standin_profile("qwen-7b", port=28306)
    Fleet(settings).start(find_profile(settings, "llama-70b"))
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.state_of("llama-70b") == "ready", what="ready")
        await until(pilot, lambda: _log_has(app, "Application startup complete"), what="log")
        if app.found.metrics:  # the load column: the first scrape (stale: no /metrics)
            await until(pilot, lambda: "llama-70b" in app.metrics, what="a metrics reading")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_crashed(snap_compare, settings, standin_profile, size):
    standin_profile("llama-70b", mode="crash-oom", port=PORTS["crashed"])
    standin_profile("qwen-7b", port=28307)
    fleet = Fleet(settings)
    loaded = find_profile(settings, "llama-70b")
    fleet.start(loaded)
    fleet.wait_ready(loaded, timeout=30)
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.state_of("llama-70b") == "crashed", what="crashed")
        await until(pilot, lambda: _log_has(app, "Engine core initialization"), what="log")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stopping(snap_compare, settings, standin_profile, size):
    """A stop in progress, as a second vllmtui (or the CLI) doing it shows: the stop mark
    on the session while the server still runs."""
    standin_profile("llama-70b", port=PORTS["stopping"])
    standin_profile("qwen-7b", port=28308)
    fleet = Fleet(settings)
    loaded = find_profile(settings, "llama-70b")
    fleet.start(loaded)
    assert fleet.wait_ready(loaded, timeout=30).state == "ready"
    Tmux(settings.tmux_socket).set_options("vllmtui-llama-70b", {"stopping": f"{time.time():.3f}"})
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.state_of("llama-70b") == "stopping", what="stopping")
        await until(pilot, lambda: _log_has(app, "Application startup complete"), what="log")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)
