"""Pilot tests for every key of the TUI, against a real tmux server on an isolated socket
and the STAND-IN server (the real-vLLM suite covers vLLM itself)."""

from __future__ import annotations

import socket
import stat

import psutil
import yaml

from tests.support.ui import FROZEN, until
from vllmtui.core.tmux import Tmux
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PickDialog, PromptDialog
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.widgets.server_table import ServerTable


def status_cell(app: VllmtuiApp, name: str) -> str:
    return str(app.query_one(ServerTable).get_cell(name, "status"))


def session_alive(settings, name: str) -> bool:
    info = Tmux(settings.tmux_socket).session(f"vllmtui-{name}")
    return info is not None and not info.dead


async def test_s_starts_and_x_stops_with_a_visible_countdown(settings, standin_profile):
    standin_profile("stubborn", mode="ignore-sigint", stop={"timeout": 3, "term_timeout": 2})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("stubborn") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("stubborn") == "ready", what="ready")
        assert session_alive(settings, "stubborn")
        await pilot.press("x")
        # the press itself shows the stop; then Fleet.stop's countdown replaces it
        assert status_cell(app, "stubborn").startswith("stopping:")
        seen: set[str] = set()

        def countdown() -> bool:
            seen.add(status_cell(app, "stubborn"))
            return any("SIGTERM in" in s for s in seen)

        await until(pilot, countdown, what="the SIGTERM countdown")
        await until(pilot, lambda: app.main.state_of("stubborn") == "stopped", what="stopped")
        assert not session_alive(settings, "stubborn")


async def test_s_shows_the_cli_validation_errors_and_starts_nothing(
    settings, standin_profile, run_cli
):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        standin_profile("taken", port=port)
        cli = run_cli("start", "taken")
        app = VllmtuiApp(settings, FROZEN)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.main.state_of("taken") == "stopped", what="the table")
            await pilot.press("s")
            dialog = await until(
                pilot, lambda: isinstance(app.screen, MessageDialog) and app.screen, what="dialog"
            )
            assert "nothing was started" in dialog.title_text
            assert f"127.0.0.1:{port} is already in use" in dialog.body
            assert dialog.body in cli.stderr  # the very text the CLI prints
            assert Tmux(settings.tmux_socket).session("vllmtui-taken") is None
            await pilot.press("escape")
            assert not isinstance(app.screen, MessageDialog)
    finally:
        holder.close()


async def test_s_on_a_running_row_picks_another_profile(settings, standin_profile):
    standin_profile("one")
    standin_profile("two")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("one") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("one") == "ready", what="one ready")
        await pilot.press("s")
        picker = await until(pilot, lambda: isinstance(app.screen, PickDialog) and app.screen)
        assert picker.names == ["two"]
        await pilot.press("enter")
        await until(pilot, lambda: app.main.state_of("two") == "ready", what="two ready")
        Fleet(settings).stop("one", force=True)
        Fleet(settings).stop("two", force=True)


async def test_X_names_what_it_kills_then_kills_it(settings, standin_profile):  # noqa: N802
    standin_profile("engine", mode="engine")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("engine") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("engine") == "ready", what="ready")
        pane_pid = app.main.statuses["engine"].pid
        await pilot.press("X")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert "VLLM::EngineCore" in dialog.body
        assert str(pane_pid) in dialog.body
        assert "vllmtui-engine" in dialog.body
        children = [p.pid for p in psutil.Process(pane_pid).children(recursive=True)]
        await pilot.press("y")
        await until(pilot, lambda: app.main.state_of("engine") == "stopped", what="killed")
        assert not [pid for pid in [pane_pid, *children] if psutil.pid_exists(pid)
                    and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


async def test_X_can_be_cancelled(settings, standin_profile):  # noqa: N802
    standin_profile("keep")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("keep") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("keep") == "ready", what="ready")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await pilot.pause(0.3)
        assert app.main.state_of("keep") == "ready" and session_alive(settings, "keep")
        Fleet(settings).stop("keep", force=True)


async def test_r_restarts_into_a_new_run(settings, standin_profile):
    standin_profile("again")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("again") == "stopped", what="the table")
        await pilot.press("r")  # not running: r starts it
        await until(pilot, lambda: app.main.state_of("again") == "ready", what="ready")
        first = app.main.statuses["again"].run_dir
        await pilot.press("r")
        await until(
            pilot,
            lambda: app.main.state_of("again") == "ready" and app.main.statuses["again"].run_dir != first,
            what="ready in a new run",
        )
        Fleet(settings).stop("again", force=True)


async def test_log_keys_l_search_filter_first_error(settings, standin_profile):
    standin_profile("oom", mode="crash-oom")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("oom") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("oom") == "crashed", what="crashed")
        view = app.query_one(LogView)
        await until(pilot, lambda: any("Engine core initialization" in x for x in view.lines))
        await pilot.press("i")
        assert app.query_one("#detail").active == "tab-info"
        await pilot.press("l")
        assert app.query_one("#detail").active == "tab-log"
        # ! jumps to the root cause, not the generic error after it
        await pilot.press("exclamation_mark")
        assert "CUDA out of memory" in view.lines[view.match - view._first]
        # w keeps warnings and errors only
        await pilot.press("w")
        assert view.problems_only and 0 < len(view._view) < view.line_count
        await pilot.press("w")
        assert not view.problems_only
        # / searches, n and N move between matches
        await pilot.press("slash")
        await pilot.press(*"standin.py")
        await pilot.press("enter")
        hits = [i + view._first for i, x in enumerate(view.lines) if "standin.py" in x]
        assert len(hits) > 1 and view.match in hits
        here = view.match
        await pilot.press("n")
        assert view.match in hits and view.match != here
        await pilot.press("N")
        assert view.match == here
        await pilot.press("G")
        assert view.follow


async def test_e_edits_and_validates_on_return(settings, standin_profile, tmp_path, monkeypatch):
    path = standin_profile("edited")
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "max_model_lenn: 5\\n" >> "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("edited") == "stopped", what="the table")
        await pilot.press("e")
        dialog = await until(pilot, lambda: isinstance(app.screen, MessageDialog) and app.screen)
        assert f"{path}:" in dialog.body and "max_model_lenn" in dialog.body
        assert "did you mean max_model_len" in dialog.body
        await pilot.press("escape")
        await until(pilot, lambda: app.main.state_of("edited") == "invalid", what="invalid row")
        # fix it in the editor: the row comes back
        editor.write_text('#!/bin/sh\nsed -i "/max_model_lenn/d" "$1"\n')
        await pilot.press("e")
        await until(pilot, lambda: app.main.state_of("edited") == "stopped", what="valid again")


async def test_d_duplicates_with_a_new_free_port(settings, standin_profile):
    path = standin_profile("orig")
    port = yaml.safe_load(path.read_text())["port"]
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("orig") == "stopped", what="the table")
        await pilot.press("d")
        prompt = await until(pilot, lambda: isinstance(app.screen, PromptDialog) and app.screen)
        assert prompt.value == "orig-copy"
        await pilot.press("enter")
        await until(pilot, lambda: app.main.state_of("orig-copy") == "stopped", what="the copy")
        await until(pilot, lambda: app.main.selected == "orig-copy", what="the copy selected")
        copy = yaml.safe_load((path.parent / "orig-copy.yaml").read_text())
        assert copy["port"] != port and copy["model"] == "standin-model"
        assert app.main.statuses["orig-copy"].port == copy["port"]


async def test_feature_keys_c_t_T_answer(settings, standin_profile):  # noqa: N802
    standin_profile("feat")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("feat") == "stopped", what="the table")
        for key in ("c", "t", "T"):
            before = len(app._notifications)
            await pilot.press(key)
            await until(pilot, lambda b=before: len(app._notifications) > b, what=f"{key} answered")


async def test_help_lists_every_key(settings):
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        dialog = await until(pilot, lambda: isinstance(app.screen, MessageDialog) and app.screen)
        for key in ("s ", "x ", "X ", "r ", "a ", "l ", "e ", "d ", "c ", "t ", "T ", "q "):
            assert f"  {key}" in dialog.body


async def test_q_quits_and_says_the_servers_keep_running(settings, standin_profile, capsys):
    standin_profile("stay")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("stay") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("stay") == "ready", what="ready")
        await pilot.press("q")
    assert app.return_code == 0
    said = capsys.readouterr().err
    assert "1 server(s) keep running in tmux: stay" in said
    assert session_alive(settings, "stay")
    Fleet(settings).stop("stay", force=True)


async def test_a_attach_without_a_terminal_says_how(settings, standin_profile):
    """Headless there is no terminal to hand over: tmux refuses, the app says so and goes
    on (tests/ui/test_entry.py attaches for real inside a tmux pane)."""
    standin_profile("att")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.state_of("att") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("att") == "ready", what="ready")
        before = len(app._notifications)
        await pilot.press("a")
        await until(pilot, lambda: len(app._notifications) > before, what="an answer")
        assert app.main.state_of("att") == "ready"
        Fleet(settings).stop("att", force=True)


async def test_R_names_the_orphans_before_reaping(settings):  # noqa: N802
    """An orphaned engine (a real process titled like vLLM's, in no server): R lists it.
    The test answers n: on a shared machine `y` would also kill other people's orphans."""
    import os
    import signal

    from tests.support.helpers import spawn_orphan

    orphan_pid = spawn_orphan("VLLM::EngineCore")  # reparented, as after a killed API server
    try:
        app = VllmtuiApp(settings, FROZEN)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: app.main.polls > 0, what="the first poll")
            await pilot.press("R")
            dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen,
                                 what="the reap dialog")
            assert f"{orphan_pid} (VLLM::EngineCore" in dialog.body
            await pilot.press("n")
            assert os.path.exists(f"/proc/{orphan_pid}")
    finally:
        os.kill(orphan_pid, signal.SIGKILL)
