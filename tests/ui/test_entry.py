"""The TUI in a real terminal: `vllmtui` runs in a pane of a second isolated tmux server
(the "user's terminal"), while its servers live on the test's own tmux socket. Covers what
Pilot cannot: attaching (the app suspends; prefix + d returns to it), a killed app, and a
restarted app recovering exactly the same state."""

from __future__ import annotations

import dataclasses
import os
import signal

import yaml

from tests.support.helpers import free_port, wait_for
from tests.support.ui import FROZEN, until
from vllmtui.core.tmux import Tmux
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.widgets.server_table import ServerTable


def test_a_attaches_and_prefix_d_returns_to_the_app(settings, standin_profile, terminal):
    standin_profile("attached")
    Fleet(settings).start(find_profile(settings, "attached"))
    terminal.launch()
    wait_for(lambda: "ready" in terminal.screen(), 20, what="the app showing ready")
    terminal.keys("a")
    # the pane now shows the server's own tmux session (its status line names it)
    wait_for(lambda: "[vllmtui-" in terminal.screen() and "servers 1/1" not in terminal.screen(),
             20, what="the attached session")
    assert "Application startup complete" in terminal.screen()
    terminal.keys("C-b", "d")
    wait_for(lambda: "servers 1/1 running" in terminal.screen(), 20, what="back in the app")
    terminal.keys("q")
    wait_for(lambda: "keep running" in terminal.screen(), 20, what="the quit message")
    assert Tmux(settings.tmux_socket).session("vllmtui-attached") is not None


def test_a_killed_app_leaves_servers_running_and_a_new_one_finds_them(
    settings, standin_profile, terminal
):
    standin_profile("survivor")
    terminal.launch()
    wait_for(lambda: "survivor" in terminal.screen(), 20, what="the table")
    terminal.keys("s")
    wait_for(lambda: "ready" in terminal.screen(), 20, what="ready")
    os.kill(terminal.app_pid(), signal.SIGKILL)  # like a dropped SSH connection
    wait_for(terminal.dead, 10, what="the app gone")
    session = Tmux(settings.tmux_socket).session("vllmtui-survivor")
    assert session is not None and not session.dead
    terminal.launch()
    wait_for(lambda: "ready" in terminal.screen() and "servers 1/1 running" in terminal.screen(),
             20, what="the new app showing the server")


def _picture(app: VllmtuiApp) -> dict[str, tuple[object, ...]]:
    return {
        name: (s.state, s.port, s.session, s.run_dir, s.started, s.has_profile,
               s.failure.key if s.failure else None)
        for name, s in app.main.statuses.items()
    }


async def test_a_restarted_app_recovers_the_same_state(settings, standin_profile, run_cli):
    standin_profile("from-tui")
    standin_profile("from-cli")
    standin_profile("crashing", mode="crash-oom")
    standin_profile("idle")
    run_cli("start", "from-cli", check=True)
    run_cli("start", "crashing", check=True)
    # a server whose profile is not in this checkout (another user's session, say)
    other = settings.profiles_dirs[0].parent / "elsewhere"
    other.mkdir()
    data = yaml.safe_load((settings.profiles_dirs[0] / "idle.yaml").read_text())
    data["port"] = free_port()
    (other / "foreign.yaml").write_text(yaml.safe_dump(data))
    foreign = dataclasses.replace(settings, profiles_dirs=(other,))
    Fleet(foreign).start(find_profile(foreign, "foreign"))

    first = VllmtuiApp(settings, FROZEN)
    async with first.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: first.main.state_of("from-tui") == "stopped", what="the table")
        first.query_one(ServerTable).select("from-tui")
        await pilot.press("s")
        await until(
            pilot,
            lambda: first.main.state_of("from-tui") == "ready"
            and first.main.state_of("from-cli") == "ready"
            and first.main.state_of("crashing") == "crashed"
            and first.main.state_of("foreign") == "ready",
            what="every server settled",
        )
        before = _picture(first)
        await pilot.press("q")
    assert before["idle"][0] == "stopped" and before["foreign"][5] is False

    second = VllmtuiApp(settings, FROZEN)
    async with second.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: second.main.polls > 0, what="the first poll")
        assert _picture(second) == before
    for name in ("from-tui", "from-cli", "crashing", "foreign"):
        Fleet(settings).stop(name, force=True)
