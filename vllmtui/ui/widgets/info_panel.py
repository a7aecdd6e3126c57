"""The Info tab: resolved command (secrets masked), env names, run directory, time to ready,
exit status and the root-cause line with its hint, earlier runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import var
from textual.widgets import Static

from vllmtui.core.humanize import fmt_duration
from vllmtui.core.settings import Settings
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.status import ServerStatus
from vllmtui.ui import readings
from vllmtui.ui.messages import InfoRead, InfoSnapshot
from vllmtui.ui.selection import Display, Selection
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.work import worker


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _runs(out: Text, info: InfoSnapshot, scrub: Callable[[str], str] | None) -> None:
    out.append("\nearlier runs\n", style="bold")
    for run in info.runs:
        ttr = (
            f"ready in {fmt_duration(run.time_to_ready)}"
            if run.time_to_ready
            else "never ready"
        )
        how = ""
        if run.exit:
            how = str(run.exit.get("how", ""))
            if run.exit.get("exit_status") not in (None, 0):
                how += f" (exit {run.exit.get('exit_status')})"
        row = f"  {_when(run.started)}  {ttr:<16} {how or 'running or unknown'}"
        out.append((scrub(row) if scrub else row) + "\n")


def info_text(
    status: ServerStatus | None,
    info: InfoSnapshot | None,
    scrub: Callable[[str], str] | None = None,
    host: str | None = None,
) -> Text:
    """Everything the Info tab says, as one Rich Text (pure); `host`: the other host the
    server is on (its paths are that host's)."""
    out = Text()

    def line(label: str, value: str, style: str = "") -> None:
        out.append(f"{label:<14}", style="bold")
        out.append((scrub(value) if scrub else value) + "\n", style=style)

    if status is None:
        out.append(f"{host}: no server on this row\n" if host else "no server selected\n", style="dim")
        return out
    line("server", f"{status.name} ({status.state})")
    if host:
        line("host", f"{host} (its tmux session, run dir and profile are there: `vllmtui runs"
                     f" {status.name} --host {host}`)")
    if status.session:
        line("tmux session", status.session + (f"  pane pid {status.pid}" if status.pid else ""))
    if info is not None and info.error:
        line("profile", info.error, "red")
    if info is not None and info.command:
        line("command", info.command)
    if info is not None and info.env_names:
        line("env names", ", ".join(info.env_names))
    if status.run_dir:
        line("run dir", str(status.run_dir))
    line("time to ready", fmt_duration(status.time_to_ready) if status.time_to_ready else "-")
    if status.exit_status is not None:
        line("exit status", str(status.exit_status))
    if status.failure is not None:
        line("root cause", status.failure.line, "bold red")
        line("hint", status.failure.hint, "yellow")
    elif status.state in ("crashed", "exited", "unhealthy") and status.detail:
        line("detail", status.detail)
    if info is not None and info.runs:
        _runs(out, info, scrub)
    return out


class InfoPanel(VerticalScroll):
    """Shows `info_text` for the selected server; reads the profile's command and the run
    history in its own worker whenever the server, its state or its run changes."""

    selection: var[Selection] = var(Selection(), init=False, always_update=True)

    def __init__(self, settings: Settings, look: Display, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.look = look
        self._key: tuple[str, str, str | None] | None = None
        self._info: InfoSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="info-body")

    def watch_selection(self, selection: Selection) -> None:
        if selection.key == self._key:
            return
        self._key = selection.key
        if selection.name and not selection.remote:  # another host's runs are read there
            self.read_info(selection.name, selection.loaded)
        self._refresh_view()

    def reread(self) -> None:
        """The profile file changed: read it again at the next selection."""
        self._key = None

    @worker("reading the server's info", group="info", exclusive=True)
    def read_info(self, name: str, loaded: LoadedProfile | None) -> None:
        self.post_message(InfoRead(readings.read_info(self.settings, name, loaded)))

    def on_info_read(self, message: InfoRead) -> None:
        message.stop()
        if message.info.name == self.selection.name:
            self._info = message.info
            self._refresh_view()

    def _refresh_view(self) -> None:
        status = self.selection.status
        info = self._info if self._info and status and self._info.name == status.name else None
        if self.selection.remote:
            info = None
        self.show(info_text(status, info, self.look.scrub, self.selection.host))

    def show(self, text: Text) -> None:
        update_body(self, "info-body", text)
