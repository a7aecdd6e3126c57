"""The main screen. Snapshots in its main states (empty, starting, ready, crashed,
stopping) at 80x24 and 160x48, and live behaviour: rows update without the selection jumping,
a wedged or dead server shows as such. Servers run the STAND-IN on a real isolated tmux
server; host name, uptime and volatile log text (pids, times, temp paths) are frozen."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.gateway import backend_profile  # noqa: F401 - a fixture
from tests.support.hf_cache import sample_report
from tests.support.ui import FROZEN, until
from tests.ui.gateway_samples import sample_status
from vllmtui.chat.conversation import Conversation, Entry, ReplyStats
from vllmtui.core.tmux import Tmux
from vllmtui.gateway import manage
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import PickDialog
from vllmtui.ui.widgets.chat_panel import ChatPanel
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.widgets.server_table import ServerTable

SIZES = [(80, 24), (160, 48)]
# fixed ports: they are on screen (table, log); each state has its own
PORTS = {"starting": 28301, "ready": 28302, "crashed": 28303, "stopping": 28304, "chat": 28309}


def _log_has(app: VllmtuiApp, text: str) -> bool:
    return any(text in line for line in app.query_one(LogView).lines)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_empty(snap_compare, settings, size):
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.main.polls > 0, what="the first poll")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_starting(snap_compare, settings, standin_profile, size):
    standin_profile("llama-70b", delay=600, port=PORTS["starting"])
    standin_profile("qwen-7b", port=28305)
    Fleet(settings).start(find_profile(settings, "llama-70b"))
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.main.state_of("llama-70b") == "starting", what="starting")
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
        await until(pilot, lambda: app.main.state_of("llama-70b") == "ready", what="ready")
        await until(pilot, lambda: _log_has(app, "Application startup complete"), what="log")
        # the load column: the first scrape (stale: the stand-in has no /metrics)
        await until(pilot, lambda: "llama-70b" in app.main.readings.metrics, what="a metrics reading")
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
        await until(pilot, lambda: app.main.state_of("llama-70b") == "crashed", what="crashed")
        # "crashed" shows while the process still winds down after its fatal line: wait for
        # the pane to be dead and for a poll after that, so nothing on screen moves any more
        await until(pilot, lambda: app.main.statuses["llama-70b"].exit_status is not None,
                    what="the pane dead")
        polls = app.main.polls
        await until(pilot, lambda: app.main.polls > polls, what="a poll after the end")
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
        await until(pilot, lambda: app.main.state_of("llama-70b") == "stopping", what="stopping")
        await until(pilot, lambda: _log_has(app, "Application startup complete"), what="log")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


def test_gateway_tab(snap_compare, settings, monkeypatch):
    """The Gateway tab and the header's gateway segment, the gateway's status injected
    (tests/ui/gateway_samples.py: fixed values, the uptime 2h00m)."""
    status = sample_status()
    monkeypatch.setattr(manage, "gateway_status", lambda _settings, timeout=1.0: status)
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.main.polls > 0, what="the first poll")
        app.query_one("#detail").active = "tab-gateway"
        await until(pilot, lambda: app.main.readings.gateway is not None, what="a gateway reading")
        await until(pilot, lambda: "gateway: up" in str(app.query_one("#topbar").render()), what="the header")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=ready)


def test_models_tab(snap_compare, settings, monkeypatch):
    """The Models tab: the cache's models with sizes, revisions, last used and the profiles
    using them, a local directory, a model not pulled yet, the totals and the free disk (a
    fixed reading injected for `cache_report`)."""
    from vllmtui.ui.widgets import models_panel

    report = sample_report()
    monkeypatch.setattr(models_panel, "cache_report", lambda _settings, _profiles: report)
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.main.polls > 0, what="the first poll")
        app.query_one("#detail").active = "tab-models"
        panel = app.query_one(models_panel.ModelsPanel)
        await until(pilot, lambda: panel.report is report, what="a reading")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=ready)


def _saved_chat(folder) -> None:
    """A conversation with a tool call, its id, time and figures fixed (nothing on screen moves)."""
    chat = Conversation("llama-70b", "llama-70b-model", id="20260101-120000-abcd", created=1767268800.0)
    chat.save_to(folder)
    call = {"id": "call_0", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    chat.add(Entry({"role": "user", "content": "What is the weather in Paris? A short list, please."}))
    chat.add(Entry({"role": "assistant", "content": None, "tool_calls": [call]},
                   ReplyStats(7, 40, 0.05, None, 0.2, "tool_calls")))
    chat.add(Entry({"role": "tool", "tool_call_id": "call_0", "content": "sunny, 21 C"},
                   tool={"name": "get_weather", "matches": True, "problem": None, "answer": "once",
                         "is_error": False}))
    chat.add(Entry({"role": "assistant", "content": "In **Paris** today:\n\n- sunny\n- 21 C\n\n"
                    "Ask `get_weather` about another city any time."}, ReplyStats(42, 80, 0.12, 85.3, 0.6, "stop")))
    chat.add(Entry({"role": "user", "content": "Thanks!"}))
    chat.add(Entry({"role": "assistant", "content": "You're welcome."}, ReplyStats(4, 95, 0.1, 60.0, 0.2, "stop")))


def test_chat_tab(snap_compare, settings, backend_profile):  # noqa: F811
    """The Chat tab: a saved conversation reopened with Ctrl+O (user messages, Markdown replies
    with their figures, a tool call and its result), the head line and the input."""
    backend_profile("llama-70b", port=PORTS["chat"])
    started = Fleet(settings).start(find_profile(settings, "llama-70b"))
    _saved_chat(started.run_dir / "chats")
    app = VllmtuiApp(settings, FROZEN)

    async def ready(pilot):
        await until(pilot, lambda: app.main.state_of("llama-70b") == "ready", what="ready")
        await until(pilot, lambda: "llama-70b" in app.main.readings.metrics, what="a metrics reading")
        app.query_one("#detail").active = "tab-chat"
        panel = app.query_one(ChatPanel)
        await until(pilot, lambda: panel.current is not None and panel.current.found is not None
                    and panel.tool_names is not None, what="the chat's server and tools")
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, PickDialog), what="the picker")
        await pilot.press("enter")
        await until(pilot, lambda: "reopened: 6 messages" in panel.current.log.transcript(), what="reopened")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=ready)


async def test_selection_stays_on_its_server_when_rows_change(settings, standin_profile):
    standin_profile("bravo")
    standin_profile("delta")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("delta") == "stopped", what="the table")
        app.query_one(ServerTable).select("delta")
        await pilot.pause()
        standin_profile("alpha")  # sorts first: every row below it moves down
        app.main.refresh_now(reload_profiles=True)
        await until(pilot, lambda: app.main.state_of("alpha") == "stopped", what="the new row")
        assert app.main.readings.order.index("delta") == 2
        assert app.main.selected == "delta"
        (settings.profiles_dirs[0] / "alpha.yaml").unlink()
        app.main.refresh_now(reload_profiles=True)
        await until(pilot, lambda: app.main.state_of("alpha") is None, what="the row gone")
        assert app.main.selected == "delta"


async def test_a_wedged_server_shows_as_unhealthy(settings, standin_profile):
    standin_profile("wedgy", mode="wedge", env={"STANDIN_WEDGE_AFTER": "1.5"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("wedgy") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("wedgy") == "ready", what="ready")
        await until(pilot, lambda: app.main.state_of("wedgy") == "unhealthy", what="unhealthy")
        assert "wedged" in app.main.statuses["wedgy"].detail
        # the UI kept answering while /health hung
        await pilot.press("i")
        assert app.query_one("#detail").active == "tab-info"
        await pilot.press("X")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        await until(pilot, lambda: app.main.state_of("wedgy") == "stopped", what="killed")


async def test_a_dead_server_shows_as_dead(settings, standin_profile):
    standin_profile("victim")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("victim") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("victim") == "ready", what="ready")
        os.kill(app.main.statuses["victim"].pid, signal.SIGKILL)
        # tmux usually reports the signal (crashed: killed by signal 9); at times it reports
        # neither status nor signal for the dead pane, and the foundation says `exited`
        await until(pilot, lambda: app.main.state_of("victim") in ("crashed", "exited"), what="dead")
        assert not app.main.statuses["victim"].running
