"""The Log tab: the root-cause banner, the log view and its search box. It follows the
selected server's log in its own worker (from the end, then what is appended, by offset)
and owns the Log keys (/, n, N, w, !, G)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Key
from textual.reactive import var
from textual.widgets import Input, Static
from textual.worker import Worker, get_current_worker

from vllmtui.core.settings import Settings
from vllmtui.ui.messages import LogLinesRead
from vllmtui.ui.readings import LogTail
from vllmtui.ui.selection import Display, Selection
from vllmtui.ui.widgets.log_view import LogView
from vllmtui.ui.work import worker

if TYPE_CHECKING:  # the hosts' modules load with the first other host
    from vllmtui.hosts.fleet import Hosts
    from vllmtui.hosts.remote_log import RemoteTail

_UNSET = Path("\0unset")  # no log followed yet (None means: this server has no log)


class LogPanel(Vertical):
    """Follows `selection`'s log; says why there is none."""

    selection: var[Selection] = var(Selection(), init=False, always_update=True)

    def __init__(self, settings: Settings, look: Display, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.look = look
        self._path: Path | str | None = _UNSET
        self._failure_key: tuple[str, str, str | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="log-banner")
        yield LogView(id="log")
        yield Input(placeholder="search the log; Enter finds, Escape closes", id="search")

    def on_mount(self) -> None:
        self.query_one("#search", Input).display = False
        self.query_one("#log-banner", Static).display = False
        self.query_one(LogView).scrub = self.look.scrub

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    # ---------------------------------------------------------------- following

    def watch_selection(self, selection: Selection) -> None:
        path: Path | str | None = selection.log_path
        status = selection.status
        remote = selection.remote and status is not None and status.run_dir is not None
        if remote:
            path = f"{selection.host}:{status.run_dir}"  # type: ignore[union-attr]
        if path != self._path:
            self._path = path
            self.view.clear_lines(self._no_log_text(selection, path))
            if remote and selection.hosts is not None and selection.host is not None:
                self.follow_remote_log(selection.hosts, selection.host, str(status.run_dir))  # type: ignore[union-attr]
            else:
                self.follow_log(path if isinstance(path, Path) else None)
        if selection.key != self._failure_key:
            self._failure_key = selection.key
            self._render_banner(selection)

    @worker("following the log", group="log", exclusive=True)
    def follow_log(self, path: Path | None) -> None:
        this = get_current_worker()
        if path is None:
            self.post_message(LogLinesRead(None, [], True, 0))
            return
        tail = LogTail(path)
        lines, size = tail.start()
        self.post_message(LogLinesRead(path, lines, True, size))
        self._follow(tail, path, this)

    @worker("following a log on another host", group="log", exclusive=True)
    def follow_remote_log(self, hosts: Hosts, host: str, run_dir: str) -> None:
        """As `follow_log`, the host reading its own file over its ssh connection."""
        from vllmtui.hosts.remote_log import RemoteTail

        this = get_current_worker()
        key = f"{host}:{run_dir}"
        tail = RemoteTail(hosts, host, run_dir)
        lines, size = tail.start()
        self.post_message(LogLinesRead(key, lines or ([f"({tail.error})"] if tail.error else []), True, size))
        self._follow(tail, key, this)

    def _follow(self, tail: LogTail | RemoteTail, key: Path | str, this: Worker[None]) -> None:
        """What is appended to the log, until the follower is cancelled; a quiet log (or a
        host that does not answer) is looked at less and less often."""
        delay = self.settings.log_poll
        while not this.is_cancelled:
            time.sleep(delay)
            lines, reset = tail.more()
            if (lines or reset) and not this.is_cancelled:
                self.post_message(LogLinesRead(key, lines, reset, tail.offset))
                delay = self.settings.log_poll
            else:
                delay = min(self.settings.log_poll_idle, delay * 2)

    def on_log_lines_read(self, message: LogLinesRead) -> None:
        message.stop()
        if message.path != self._path:
            return  # a follower of an earlier selection
        if message.reset:
            self.view.clear_lines(self._no_log_text(self.selection, message.path, reading=False))
        self.view.append(message.lines)

    def _no_log_text(self, selection: Selection, path: Path | str | None, reading: bool = True) -> str:
        if path is not None:
            return "reading the log..." if reading else "the log is empty so far"
        if selection.remote:
            if selection.status is None:
                return f"{selection.host}: no servers read from this host (see its row)"
            return f"{selection.status.name} on {selection.host}: no runs yet: press s to start"
        if not selection.any_profiles:
            where = str(self.settings.profiles_dirs[0]) if self.settings.profiles_dirs else "?"
            text = f"no profiles yet: put NAME.yaml in {where} (see profiles/ for examples)"
            return self.look.scrubbed(text)
        return "no runs yet: press s to start"

    def _render_banner(self, selection: Selection) -> None:
        status = selection.status
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

    # ---------------------------------------------------------------- keys

    def open_search(self) -> None:
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        found = self.view.find(event.value, forward=True)
        event.input.display = False
        self.view.focus()
        if event.value and not found:
            self.notify(f"not found: {event.value}", severity="warning")

    def on_key(self, event: Key) -> None:
        box = self.query_one("#search", Input)
        if event.key == "escape" and box.has_focus:
            box.display = False
            self.view.focus()

    def next_match(self, forward: bool = True) -> None:
        if self.view.search:
            self.view.find(self.view.search, forward=forward)

    def toggle_problems(self) -> None:
        view = self.view
        view.set_problems_only(not view.problems_only)
        self.notify("log: warnings and errors only" if view.problems_only else "log: every line", timeout=2)

    def first_error(self) -> None:
        status = self.selection.status
        cause = status.failure.line if status and status.failure else None
        if not self.view.first_error(cause):
            self.notify("no error in the log shown", severity="information", timeout=2)
