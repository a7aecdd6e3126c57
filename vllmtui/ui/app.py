"""The Textual app: settings, the fleet, the main screen, quitting, and the one place a
failed worker becomes a notification. Everything else lives in the screen and its panels."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from textual.app import App, SystemCommand
from textual.screen import Screen

from vllmtui.core.settings import Settings
from vllmtui.core.tmux import Tmux
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.keys import KEYS, Key
from vllmtui.ui.screens.main import MainScreen
from vllmtui.ui.selection import Display
from vllmtui.ui.work import WorkerFailed

WORKER_THREADS = 32  # pollers (7) + probes, benchmarks, plans and server actions at once


class VllmtuiApp(App[int]):
    """One screen to run a GPU box's vLLM servers; they keep running when it quits."""

    TITLE = "vllmtui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, settings: Settings, display: Display | None = None, fleet: Fleet | None = None):
        super().__init__()
        self.settings = settings
        # the status poll reads tmux each second: through one control-mode client, not a process
        self.fleet = fleet or Fleet(settings, Tmux(settings.tmux_socket, persistent=True))
        self.main = MainScreen(settings, self.fleet, display or Display())

    async def on_load(self) -> None:
        # Thread workers run in the event loop's default executor, which asyncio sizes at
        # cpu_count + 4: 6 threads on a 2-core box, fewer than the pollers that live as long as
        # the app (status, log, GPU, metrics, probes, tunnels, gateway). A key's worker then waited
        # for a free thread forever. Give every long-lived poller and a few actions a thread of their own.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="vllmtui-worker")
        )

    def on_unmount(self) -> None:
        self.fleet.tmux.close()

    def get_default_screen(self) -> MainScreen:
        return self.main  # the bottom of the screen stack: dialogs open above it

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """Any worker's uncaught error: said once, and the app goes on."""
        self.notify(f"{message.what} failed: {message.error}", severity="error")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key in KEYS:
            yield SystemCommand(f"{key.label} ({key.shown})", key.help, lambda key=key: self._run_key(key))

    def _run_key(self, key: Key) -> None:
        if key.tab is not None:  # a tab's own key: on its tab
            self.main.show_tab(key.tab)
        target = self if key.action == "quit" else self.main
        self.call_later(target.run_action, key.action)

    async def action_quit(self) -> None:
        running = self.main.running_names()
        if running:
            names = ", ".join(running)
            self.exit(
                0,
                message=(
                    f"vllmtui: {len(running)} server(s) keep running in tmux: {names}.\n"
                    "Run `vllmtui` again to see them, `vllmtui stop NAME` to stop one."
                ),
            )
        else:
            self.exit(0)


def run_app(settings: Settings) -> int:
    """Run the TUI until the user quits; servers keep running."""
    return VllmtuiApp(settings).run() or 0
