"""The TUI with other hosts: every host's servers in the table (a host column, grouping, a
filter), their logs and GPUs, and the server keys run there. Real OpenSSH on loopback to the
test accounts (tests/support/ssh_hosts.py), stand-in servers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from textual.widgets import Static

from tests.support.helpers import wait_for
from tests.support.ssh_hosts import HostsEnv, standin_fields
from tests.support.terminal import Terminal
from tests.support.ui import FROZEN, until
from vllmtui.hosts.fleet import Hosts
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.host_rows import HostView
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PromptDialog
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.widgets.server_table import ServerTable

NOWHERE = {"nowhere": {"ssh": "127.0.0.1:1", "ssh_options": {"ConnectTimeout": "2"}}}


def _state(hosts: Hosts, host: str, name: str) -> str | None:
    reading = hosts.read(names=[host], gpus=False)[host]
    return next((s.state for s in reading.statuses if s.name == name), None)


def _rows(app: VllmtuiApp) -> list[str]:
    return list(app.query_one(ServerTable)._rows)


def _port(main: object, key: str) -> int | None:
    return main.readings.remote[key][1].port  # type: ignore[attr-defined, no-any-return]


def _cell(app: VllmtuiApp, key: str, column: str) -> str:
    return str(app.query_one(ServerTable)._rows[key].cells.get(column, ""))


async def test_every_hosts_servers_in_one_table_and_the_keys_work_there(
        hosts_env: HostsEnv, write_profile: Callable[..., object]) -> None:
    hosts_env.hosts_yaml(extra=NOWHERE)
    hosts_env.dirs["host-a"].write_profile("own")
    hosts_env.dirs["host-b"].write_profile("idle")
    write_profile("mine", **standin_fields())  # this machine's
    with Hosts(hosts_env.settings) as hosts:
        done = hosts.run("host-a", ["start", "own", "--wait", "--timeout", "60"])
        assert done.returncode == 0, done.stdout + done.stderr
        app = VllmtuiApp(hosts_env.settings, FROZEN)
        async with app.run_test(size=(160, 40)) as pilot:
            main = app.main
            await until(pilot, lambda: main.state_of("own@host-a") == "ready"
                        and main.state_of("idle@host-b") == "stopped"
                        and "@nowhere" in _rows(app), timeout=30, what="every host's rows")
            # grouped by host: this machine first, then hosts.yaml's order; a host column
            assert _rows(app) == ["mine", "own@host-a", "idle@host-b", "@nowhere"]
            assert [_cell(app, k, "host") for k in _rows(app)] == ["local", "host-a", "host-b", "nowhere"]
            assert _cell(app, "@nowhere", "status").startswith("unreachable")
            assert "hosts 3/4 up (nowhere unreachable)" in str(app.query_one("#topbar", Static).render())

            # the log of a remote row is read there; the Info tab names the host
            app.query_one(ServerTable).select("own@host-a")
            await until(pilot, lambda: any("Application startup complete" in line
                                           for line in app.query_one(LogView).lines),
                        timeout=20, what="host-a's log in the Log tab")
            await pilot.press("i")
            await until(pilot, lambda: "host-a (its tmux session" in str(app.query_one("#info-body",
                                                                                       Static).render()),
                        what="the Info tab naming the host")

            # the filter and the grouping
            await pilot.press("f")
            await pilot.pause()
            await pilot.press(*"host-b", "enter")
            await until(pilot, lambda: _rows(app) == ["idle@host-b"], what="the filter")
            main.set_view(HostView(grouped=False))
            await until(pilot, lambda: _rows(app) == ["@nowhere", "idle@host-b", "mine", "own@host-a"],
                        what="every server by name")
            main.set_view(HostView())

            # s on host-b's stopped row starts it THERE; x stops host-a's there
            app.query_one(ServerTable).select("idle@host-b")
            await pilot.press("s")
            await until(pilot, lambda: main.state_of("idle@host-b") == "ready", timeout=40,
                        what="idle started on host-b")
            assert "vllmtui-idle" in hosts_env.dirs["host-b"].tmux("ls").stdout
            assert main.state_of("mine") == "stopped"  # nothing ran here
            app.query_one(ServerTable).select("own@host-a")
            await pilot.press("x")
            await until(pilot, lambda: main.state_of("own@host-a") == "stopped", timeout=40,
                        what="own stopped on host-a")
            assert _state(hosts, "host-a", "own") == "stopped"

            # a client here reaches it through a forward over host-b's connection (the Metrics
            # and Bench tabs use it: tests/e2e/hosts runs both against a real vLLM)
            await until(pilot, lambda: any(e.name == "idle@host-b" for e in main.readings.endpoints),
                        timeout=20, what="the forward to idle on host-b")
            endpoint = next(e for e in main.readings.endpoints if e.name == "idle@host-b")
            assert endpoint.host == "127.0.0.1" and endpoint.port != _port(main, "idle@host-b")
            models = httpx.get(f"http://127.0.0.1:{endpoint.port}/v1/models", timeout=5).json()
            assert [m["id"] for m in models["data"]] == ["standin-model"]
            # T: a URL here for it (the forward, kept while vllmtui runs)
            app.query_one(ServerTable).select("idle@host-b")
            await pilot.press("T")
            said = await until(pilot, lambda: next((str(n.message) for n in app._notifications
                                                    if "is reachable here at" in str(n.message)), None),
                               what="the tunnel's URL")
            url = str(said).split("reachable here at ")[1].split()[0]
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200

            # a chat probe of host-b's server runs there and its report comes back
            app.query_one(ServerTable).select("idle@host-b")
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, MessageDialog) or any(
                "chat probe of idle" in str(n.message) for n in app._notifications),
                timeout=60, what="the probe's report")

            # X asks first, naming the host; then the server is killed there
            while isinstance(app.screen, MessageDialog | ConfirmDialog):
                await pilot.press("escape")
            await pilot.press("X")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the kill confirmation")
            assert "on host-b" in str(app.screen.query_one("#dialog-body Static", Static).render())
            await pilot.press("y")
            await until(pilot, lambda: main.state_of("idle@host-b") == "stopped", timeout=40,
                        what="idle killed on host-b")

            # e edits the host's profile there (headless: no editor to hand the terminal to),
            # then checks it there; d copies it there
            await pilot.press("e")
            await until(pilot, lambda: any("host-b: edit idle" in str(n.message) for n in app._notifications),
                        timeout=30, what="the edited profile checked on host-b")
            await pilot.press("d")  # the copy is made there, beside the host's own file
            await until(pilot, lambda: isinstance(app.screen, PromptDialog), what="the new name's prompt")
            await pilot.press("enter")
            await until(pilot, lambda: any("idle-copy.yaml written there" in str(n.message)
                                           for n in app._notifications), timeout=30, what="the copy on host-b")
            assert (hosts_env.dirs["host-b"].profiles / "idle-copy.yaml").exists()
            await until(pilot, lambda: main.state_of("idle-copy@host-b") == "stopped", timeout=20,
                        what="the copy's row")
            await pilot.press("q")


def test_a_attaches_to_a_remote_server_and_prefix_d_returns(hosts_env: HostsEnv, terminal: Terminal,
                                                            cli_env: dict[str, str]) -> None:
    cli_env.update(hosts_env.env())
    hosts_env.dirs["host-a"].write_profile("console")
    with Hosts(hosts_env.settings) as hosts:
        assert hosts.run("host-a", ["start", "console", "--wait", "--timeout", "60"]).returncode == 0
        terminal.launch()
        wait_for(lambda: "host-a" in terminal.screen() and "ready" in terminal.screen(), 30,
                 what="the app showing host-a's server")
        terminal.keys("Down")  # the first row is host-a's (this machine has none)
        terminal.keys("a")
        wait_for(lambda: "[vllmtui-" in terminal.screen() and "hosts 2/3" not in terminal.screen(), 30,
                 what="the remote console in the terminal")
        assert "Application startup complete" in terminal.screen() or "vLLM" in terminal.screen()
        terminal.keys("C-b", "d")
        wait_for(lambda: "hosts 3/3 up" in terminal.screen(), 30, what="back in the app")
        # e: the host's profile in an editor over ssh -t (the host's vi), then checked there
        terminal.keys("e")
        path = str(hosts_env.dirs["host-a"].profiles / "console.yaml")
        wait_for(lambda: "standin-model" in terminal.screen() and "hosts 3/3" not in terminal.screen(), 30,
                 what="the host's profile in the host's editor")
        terminal.keys("Escape", ":q", "Enter")
        wait_for(lambda: "hosts 3/3 up" in terminal.screen(), 30, what="back in the app after the editor")
        wait_for(lambda: f"{path} checked" in terminal.screen() or "edit console" in terminal.screen(), 30,
                 what="the profile checked on host-a")
        terminal.keys("q")
        wait_for(terminal.dead, 20, what="the app quitting")
        assert _state(hosts, "host-a", "console") == "ready"  # detaching stopped nothing


async def test_hosts_yaml_is_read_again_when_it_changes(hosts_env: HostsEnv) -> None:
    hosts_env.dirs["host-a"].write_profile("later")
    path = hosts_env.settings.config_dir / "hosts.yaml"
    text = path.read_text()
    path.unlink()  # the TUI starts on one machine
    app = VllmtuiApp(hosts_env.settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        main = app.main
        await until(pilot, lambda: main.polls > 1, what="the first polls")
        assert "host" not in [c.key for c in app.query_one(ServerTable)._columns]
        path.write_text(text)  # a host added while it runs
        await until(pilot, lambda: main.state_of("later@host-a") == "stopped", timeout=20,
                    what="host-a's rows after hosts.yaml appeared")
        assert "host" in [c.key for c in app.query_one(ServerTable)._columns]
        path.write_text("hosts: [host-a]\n")  # a mistake: said in the header, nothing lost
        await until(pilot, lambda: "hosts.yaml:1" in str(app.query_one("#topbar", Static).render()),
                    timeout=20, what="the mistake in the header")
        await pilot.press("q")
