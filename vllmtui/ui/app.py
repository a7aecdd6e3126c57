"""The Textual app: one screen to run a GPU box's vLLM servers.

The app never does I/O itself: pollers and actions run domain functions in thread workers
(`ui/workers.py`) that post typed messages (`ui/messages.py`); handlers render them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import find_profile
from vllmtui.profiles.model import BrokenProfile, LoadedProfile
from vllmtui.servers import runs
from vllmtui.servers.fleet import Fleet, ServerStatus
from vllmtui.ui import features
from vllmtui.ui import workers as w
from vllmtui.ui.actions import LogKeys, ProfileActions
from vllmtui.ui.format import countdown_words, fmt_uptime, state_cell
from vllmtui.ui.keys import KEYS, help_text
from vllmtui.ui.messages import (
    ForceTargetsRead,
    InfoRead,
    InfoSnapshot,
    LogLinesRead,
    ServerStarted,
    ServerStopped,
    StartRefused,
    StatusesRead,
    StopProgressed,
)
from vllmtui.ui.plan_bench import PlanBenchMixin
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PickDialog
from vllmtui.ui.widgets.info_panel import InfoPanel, info_text
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.widgets.server_table import Row, ServerTable

LOG_POLL = 0.25
LOG_POLL_IDLE = 1.0
PROFILE_RELOAD = 5.0


@dataclass(frozen=True)
class Display:
    """What tests freeze so snapshots are deterministic: the host name, uptime-like text
    and a scrubber for volatile text (pids, times, temp paths) in the log and Info tabs."""

    hostname: str | None = None
    uptime: Callable[[ServerStatus], str] | None = None
    scrub: Callable[[str], str] | None = None
    gpu_summary: str | None = None


class VllmtuiApp(features.FeatureMixin, PlanBenchMixin, ProfileActions, LogKeys, App[int]):
    """Server table, detail tabs (Log, Info, GPU, Metrics, Probe, Tunnels), keys."""

    TITLE = "vllmtui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [Binding(k.key, k.action, k.label, show=k.footer) for k in KEYS]

    def __init__(self, settings: Settings, display: Display | None = None, fleet: Fleet | None = None):
        super().__init__()
        self.settings = settings
        self.view = display or Display()
        self.fleet = fleet or Fleet(settings)
        self.statuses: dict[str, ServerStatus] = {}
        self.order: list[str] = []
        self.profiles: dict[str, LoadedProfile] = {}
        self.broken: dict[str, BrokenProfile] = {}
        self.stop_progress: dict[str, str] = {}
        self.poll_error: str | None = None
        self.polls = 0
        self._poke = threading.Event()
        self._reload = threading.Event()
        self._log_path: Path | None | bool = False  # False: nothing followed yet
        self._info_key: tuple[str, str, str | None] | None = None
        self._info: InfoSnapshot | None = None
        self._topbar_text = ""
        self._hostname = display.hostname if display and display.hostname else os.uname().nodename
        self.found = features.available()
        self._selected_for_workers: str | None = None
        self._side_poke = threading.Event()
        self._feature_init()

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        yield ServerTable(columns=features.table_columns(self.found), id="servers")
        with TabbedContent(id="detail", initial="tab-log"):
            with TabPane("Log", id="tab-log"), Vertical():
                yield Static(id="log-banner")
                yield LogView(id="log")
                yield Input(placeholder="search the log; Enter finds, Escape closes", id="search")
            with TabPane("Info", id="tab-info"):
                yield InfoPanel(id="info")
            for tab_id, title, widget in features.panels(self.found):
                with TabPane(title, id=tab_id):
                    yield widget
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        self.query_one("#log-banner", Static).display = False
        self.query_one(LogView).scrub = self.view.scrub
        self._render_topbar()
        self.query_one(ServerTable).focus()
        self.poll_statuses()
        self._feature_start()

    def on_unmount(self) -> None:
        self._poke.set()
        self._side_poke.set()
        self._gpu_poke.set()
        if self._probe_cancel is not None:
            self._probe_cancel.set()

    # ---------------------------------------------------------------- helpers

    @property
    def selected(self) -> str | None:
        try:
            return self.query_one(ServerTable).selected_name
        except NoMatches:  # shutting down
            return None

    def status_of(self, name: str | None) -> ServerStatus | None:
        return self.statuses.get(name) if name else None

    def state_of(self, name: str) -> str | None:
        """The state the table shows for `name` (tests and benchmarks read it)."""
        if name in self.broken and name not in self.statuses:
            return "invalid"
        status = self.statuses.get(name)
        return None if status is None else status.state

    def running_names(self) -> list[str]:
        return [s.name for s in self.statuses.values() if s.running]

    def refresh_now(self, reload_profiles: bool = False) -> None:
        if reload_profiles:
            self._reload.set()
        self._poke.set()

    def _uptime(self, status: ServerStatus) -> str:
        if not status.running:
            return "-"
        if self.view.uptime is not None:
            return self.view.uptime(status)
        return fmt_uptime(status.uptime)

    def _rows(self) -> list[Row]:
        # the status column gets what the other columns leave, within reason
        width = max(24, min(60, self.size.width // 3))
        rows = []
        for name in self.order:
            status = self.statuses[name]
            loaded = self.profiles.get(name)
            progress = self.stop_progress.get(name)
            cells: dict[str, str | Text] = {
                "name": name if status.has_profile else f"{name} (no profile)",
                "status": state_cell(status, progress, width),
                "port": str(status.port or ""),
                "uptime": self._uptime(status),
                "model": loaded.profile.model if loaded else "",
                "gpus": ",".join(map(str, loaded.profile.gpus)) if loaded and loaded.profile.gpus else "-",
            }
            cells.update(self.feature_cells(status))
            rows.append(Row(name, cells))
        for name, bad in self.broken.items():
            if name in self.statuses:
                continue
            first = bad.error.problems[0] if bad.error.problems else "invalid"
            first = first.split(": ", 1)[-1]
            rows.append(Row(name, {"name": name, "status": Text(f"invalid: {first}"[:width], style="red")}))
        return rows

    def _render_table(self) -> None:
        self.query_one(ServerTable).show(self._rows())

    def _render_topbar(self) -> None:
        total = len(self.order) + len([b for b in self.broken if b not in self.statuses])
        running = len(self.running_names())
        bar = Text()
        bar.append(" vllmtui ", style="bold reverse")
        bar.append(f"  host {self._hostname}")
        bar.append(f"  servers {running}/{total} running")
        bar.append(f"  {self.gpu_summary()}")
        if self.poll_error:
            bar.append(f"  ! {self.poll_error}", style="bold red")
        if bar.plain != self._topbar_text:  # an unchanged bar costs no repaint
            self._topbar_text = bar.plain
            self.query_one("#topbar", Static).update(bar)

    # ---------------------------------------------------------------- pollers (workers)

    @work(thread=True, exclusive=True, group="poll", name="status poller")
    def poll_statuses(self) -> None:
        worker = get_current_worker()
        profiles: list[LoadedProfile] = []
        broken: list[BrokenProfile] = []
        last_load = 0.0
        while not worker.is_cancelled:
            error = None
            if self._reload.is_set() or time.monotonic() - last_load > PROFILE_RELOAD:
                self._reload.clear()
                profiles, broken, error = w.read_profiles(self.settings)
                last_load = time.monotonic()
            statuses, status_error = w.read_statuses(self.fleet, profiles)
            if worker.is_cancelled:
                return
            self.post_message(StatusesRead(statuses, profiles, broken, error or status_error))
            self._poke.wait(self.settings.poll_interval)
            self._poke.clear()

    @work(thread=True, exclusive=True, group="log", name="log follower")
    def follow_log(self, path: Path | None) -> None:
        worker = get_current_worker()
        if path is None:
            self.post_message(LogLinesRead(None, [], True, 0))
            return
        tail = w.LogTail(path)
        lines, size = tail.start()
        self.post_message(LogLinesRead(path, lines, True, size))
        delay = LOG_POLL
        while not worker.is_cancelled:
            time.sleep(delay)
            lines, reset = tail.more()
            if (lines or reset) and not worker.is_cancelled:
                self.post_message(LogLinesRead(path, lines, reset, tail.offset))
                delay = LOG_POLL
            else:  # a quiet log is looked at less and less often, up to once a second
                delay = min(LOG_POLL_IDLE, delay * 2)

    @work(thread=True, exclusive=True, group="info", name="info reader")
    def read_info(self, name: str, loaded: LoadedProfile | None) -> None:
        self.post_message(InfoRead(w.read_info(self.settings, name, loaded)))

    # ---------------------------------------------------------------- snapshots in

    def on_statuses_read(self, message: StatusesRead) -> None:
        if not self._on_screen():
            return
        self.polls += 1
        self.poll_error = message.error
        if message.profiles or not message.error:
            self.profiles = {p.profile.name: p for p in message.profiles}
            self.broken = {b.name: b for b in message.broken}
        if message.statuses or not message.error:
            self.statuses = {s.name: s for s in message.statuses}
            self.order = [s.name for s in message.statuses]
        for name in list(self.stop_progress):
            status = self.statuses.get(name)
            if status is None or status.session is None:
                self.stop_progress.pop(name, None)
        self._render_table()
        if self._select_after_reload and self.query_one(ServerTable).select(self._select_after_reload):
            self._select_after_reload = None
        self._render_topbar()
        self._selection_changed()

    @on(DataTable.RowHighlighted, "#servers")
    def _row_highlighted(self) -> None:
        if self._on_screen():  # a highlight can arrive while the app shuts down
            self._selection_changed()

    def _selection_changed(self) -> None:
        name = self.selected
        status = self.status_of(name)
        path = status.run_dir / runs.LOG if status and status.run_dir else None
        if path != self._log_path:
            self._log_path = path
            self.query_one(LogView).clear_lines(self._no_log_text(path))
            self.follow_log(path)
        key = (name or "", status.state if status else "", str(status.run_dir) if status else None)
        if key != self._info_key:
            self._info_key = key
            if name:
                self.read_info(name, self.profiles.get(name))
            self._render_info()
            self._render_banner()
            self._selected_for_workers = name
            self.feature_selection_changed(name)  # only on a change: it reads files

    def _on_screen(self) -> bool:
        """False while the app shuts down (a late snapshot has nowhere to go)."""
        try:  # widgets go away one by one during shutdown
            self.query_one(ServerTable)
            self.query_one(LogView)
        except NoMatches:
            return False
        return self.is_running

    def on_log_lines_read(self, message: LogLinesRead) -> None:
        if message.path != self._log_path or not self._on_screen():
            return  # a follower of an earlier selection
        view = self.query_one(LogView)
        if message.reset:
            view.clear_lines(self._no_log_text(message.path, reading=False))
        view.append(message.lines)

    def _no_log_text(self, path: Path | None, reading: bool = True) -> str:
        if path is not None:
            return "reading the log..." if reading else "the log is empty so far"
        if not self.order and not self.broken:
            where = str(self.settings.profiles_dirs[0]) if self.settings.profiles_dirs else "?"
            text = f"no profiles yet: put NAME.yaml in {where} (see profiles/ for examples)"
            return self.view.scrub(text) if self.view.scrub else text
        return "no runs yet: press s to start"

    def _render_banner(self) -> None:
        status = self.status_of(self.selected)
        banner = self.query_one("#log-banner", Static)
        if status is None or status.failure is None:
            banner.display = False
            return
        text = Text()
        text.append("cause ", style="bold red")
        text.append(status.failure.line + "\n")
        text.append("hint  ", style="bold yellow")
        text.append(status.failure.hint)
        banner.update(text)
        banner.display = True

    def on_info_read(self, message: InfoRead) -> None:
        if message.info.name == self.selected:
            self._info = message.info
            self._render_info()

    def _render_info(self) -> None:
        status = self.status_of(self.selected)
        info = self._info if self._info and status and self._info.name == status.name else None
        self.query_one(InfoPanel).show(info_text(status, info, self.view.scrub))

    # ---------------------------------------------------------------- start

    def _stopped_profiles(self) -> list[str]:
        names = [n for n in self.order if n in self.profiles and not self.statuses[n].running]
        return names + [b for b in self.broken if b not in self.statuses]

    def action_start(self) -> None:
        name = self.selected
        status = self.status_of(name)
        startable = name is not None and (name in self.profiles or name in self.broken)
        if name and startable and (status is None or not status.running):
            self.start_server(name)
            return
        choices = self._stopped_profiles()
        if not choices:
            self.notify(
                "every profile is running already"
                if self.order
                else "no profiles found: put a profile YAML in "
                + ", ".join(str(d) for d in self.settings.profiles_dirs[:2]),
                severity="warning",
            )
            return

        def picked(name: str | None) -> None:
            if name:
                self.start_server(name)

        self.push_screen(PickDialog("Start which profile?", choices), picked)

    @work(thread=True, group="actions")
    def start_server(self, name: str) -> None:
        self._start(name)

    def _start(self, name: str) -> None:
        try:
            loaded = find_profile(self.settings, name)
            others, _, _ = w.read_profiles(self.settings)
            result = self.fleet.start(loaded, others)
        except VllmtuiError as exc:
            self.post_message(StartRefused(name, str(exc)))
            return
        except OSError as exc:
            self.post_message(StartRefused(name, f"{name} was not started: {exc}"))
            return
        self.post_message(ServerStarted(result))

    def on_server_started(self, message: ServerStarted) -> None:
        result = message.result
        text = f"{result.name}: started in tmux session {result.session}"
        if result.warnings:
            text += "\nwarnings:\n" + "\n".join(result.warnings)
        self.notify(text, severity="warning" if result.warnings else "information")
        self.refresh_now()

    def on_start_refused(self, message: StartRefused) -> None:
        self.push_screen(MessageDialog(f"{message.name}: not started (nothing was started)", message.message))
        self.refresh_now()

    # ---------------------------------------------------------------- stop / restart

    def _needs_session(self, verb: str) -> ServerStatus | None:
        status = self.status_of(self.selected)
        if status is None or status.session is None:
            self.notify(
                f"{self.selected or 'nothing'} is not running: nothing to {verb}",
                severity="warning",
            )
            return None
        return status

    def action_stop(self) -> None:
        status = self._needs_session("stop")
        if status is None:
            return
        if status.name in self.stop_progress:
            self.notify(f"{status.name} is being stopped already", severity="warning")
            return
        self._begin_stop(status.name, force=False)

    def _begin_stop(self, name: str, force: bool, restart: bool = False) -> None:
        self.stop_progress[name] = "killing (SIGKILL)" if force else "sending SIGINT"
        self._render_table()
        self.stop_server(name, force, restart)

    @work(thread=True, group="actions")
    def stop_server(self, name: str, force: bool, restart: bool = False) -> None:
        def progress(text: str) -> None:
            self.post_message(StopProgressed(name, text))

        try:
            result = self.fleet.stop(name, force=force, on_progress=progress)
        except VllmtuiError as exc:
            self.post_message(ServerStopped(name, None, str(exc), restart))
            return
        self.post_message(ServerStopped(name, result, None, restart))
        if restart:
            self._start(name)

    def on_stop_progressed(self, message: StopProgressed) -> None:
        if message.name in self.stop_progress:
            self.stop_progress[message.name] = countdown_words(message.text)
            self._render_table()

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.stop_progress.pop(message.name, None)
        if message.error:
            self.notify(message.error, severity="error")
        elif message.result is not None:
            self.notify(message.result.summary(), severity="error" if message.result.left else "information")
        self.refresh_now()
        self._render_table()

    def action_force_stop(self) -> None:
        status = self._needs_session("kill")
        if status is not None:
            self.read_force_targets(status.name, status.pid)

    @work(thread=True, group="actions")
    def read_force_targets(self, name: str, pid: int | None) -> None:
        try:
            self.post_message(ForceTargetsRead(name, w.force_targets(pid)))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog instead
            self.post_message(ForceTargetsRead(name, [], f"could not list the processes: {exc}"))

    def on_force_targets_read(self, message: ForceTargetsRead) -> None:
        name = message.name
        targets = (
            "\n".join(f"  {t}" for t in message.targets) or "  (no live process; the session is removed)"
        )
        body = (
            f"Force-stop {name}: SIGKILL, no graceful shutdown. This kills:\n{targets}\n"
            f"and removes the tmux session vllmtui-{name}."
        )
        if message.error:
            body += f"\n({message.error})"

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_stop(name, force=True)

        self.push_screen(ConfirmDialog(f"Kill {name}?", body, yes="Kill"), answered)

    def action_restart(self) -> None:
        name = self.selected
        status = self.status_of(name)
        if name is None:
            return
        if status is not None and status.session is not None:
            if name in self.stop_progress:
                self.notify(f"{name} is being stopped already", severity="warning")
                return
            self._begin_stop(name, force=False, restart=True)
        else:
            self.start_server(name)

    # ---------------------------------------------------------------- feature keys

    def action_probe_chat(self) -> None:
        self.feature_probe("chat")

    def action_probe_tool(self) -> None:
        self.feature_probe("tools")

    def action_tunnel(self) -> None:
        self.feature_tunnel()

    # ---------------------------------------------------------------- help, palette, quit

    def action_help(self) -> None:
        self.push_screen(MessageDialog("vllmtui keys", help_text(), error=False))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key in KEYS:
            yield SystemCommand(
                f"{key.label} ({key.shown})",
                key.help,
                lambda action=key.action: self.run_action(action),
            )

    async def action_quit(self) -> None:
        running = self.running_names()
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
