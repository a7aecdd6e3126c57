"""The Tunnels tab: every tunnel with its state and reason, and the laptop command for the
selected server (`laptop_command`: pure, reads $SSH_CONNECTION).

The panel reads the tunnels' states in its own worker every few seconds (a reading probes
through each running forward, so never on the UI thread) and posts them up as
`TunnelsPanel.StatusesRead` (the table's TUNNEL column: `tunnel_marks`); `toggle(name)`
(key T) brings a profile's tunnels down when one runs, up otherwise, in a worker, and says
what happened (or why not: port in use and by whom, no tunnel configured) in a notification.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.tunnels.laptop import laptop_command
from vllmtui.tunnels.manager import LaptopCommand, Tunnels, TunnelStatus
from vllmtui.ui.selection import Selection
from vllmtui.ui.work import worker

STATE_STYLES = {
    "up": "bold green",
    "connecting": "yellow",
    "target-down": "bold yellow",
    "failed": "bold red",
    "down": "dim",
}


def tunnels_text(statuses: Sequence[TunnelStatus], laptop: LaptopCommand | None = None) -> Text:
    """What the panel shows, as one Rich Text (pure: tested without a screen)."""
    out = Text()
    if not statuses:
        out.append("no tunnels configured: add `tunnels:` to a profile or to tunnels.yaml"
                   " (docs/tunnels.md)\n", style="dim")
    for status in statuses:
        out.append(f"{status.name:<20} ", style="bold")
        out.append(f"{status.state:<12}", style=STATE_STYLES.get(status.state, ""))
        if status.tunnel is not None:
            out.append(" " + status.tunnel.describe())
        out.append("\n")
        if status.detail and status.state != "down":
            style = "red" if status.state == "failed" else "dim"
            out.append(f"{'':<21}{status.detail}\n", style=style)
        if status.changed:
            out.append(f"{'':<21}config changed since it started: T twice applies it\n",
                       style="yellow")
        if not status.configured:
            out.append(f"{'':<21}no longer configured (still running)\n", style="yellow")
    if laptop is not None:
        out.append("\non your own machine run:\n", style="bold")
        out.append(f"  {laptop.text}\n", style="bold cyan")
        out.append(f"  then open {laptop.url}\n", style="dim")
        if laptop.note:
            out.append(f"  {laptop.note}\n", style="yellow")
    return out


def tunnel_marks(statuses: Sequence[TunnelStatus]) -> dict[str, str]:
    """Profile name -> a short mark for the server table (the worst state of its tunnels)."""
    order = ["failed", "target-down", "connecting", "up"]
    marks: dict[str, str] = {}
    for status in statuses:
        profile = status.tunnel.profile if status.tunnel else None
        if profile is None or status.state == "down":
            continue
        current = marks.get(profile, "").removeprefix("⇄ ")
        if not current or order.index(status.state) < order.index(current):
            marks[profile] = f"⇄ {status.state}"
    return marks


class TunnelsPanel(Static):
    """Lists every tunnel with its state and reason, and the laptop command."""

    DEFAULT_CSS = """
    TunnelsPanel { padding: 0 1; }
    """

    @dataclass
    class StatusesRead(Message):
        """The tunnels' states were read."""

        statuses: list[TunnelStatus]

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TunnelsPanel.StatusesRead)

    @dataclass
    class Toggled(Message):
        """A toggle finished: the new states and what to say, or why it was refused."""

        statuses: list[TunnelStatus] | None
        summary: str

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        super().__init__(tunnels_text([]), id=id)
        self.settings = settings
        self.statuses: tuple[TunnelStatus, ...] = ()
        self.laptop: LaptopCommand | None = None
        self._poke = threading.Event()
        self._closed = False

    def on_mount(self) -> None:
        if self.settings is not None:
            self.poll_tunnels(self.settings)

    def on_unmount(self) -> None:
        self._closed = True
        self._poke.set()

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if old.key != new.key:
            self._refresh_view()

    def watch_shown(self, shown: bool) -> None:
        self._refresh_view()

    @worker("reading the tunnels", group="tunnels", exclusive=True)
    def poll_tunnels(self, settings: Settings) -> None:
        this = get_current_worker()
        while not this.is_cancelled and not self._closed:
            # a failed reading keeps the last one on screen
            with contextlib.suppress(Exception):
                statuses = Tunnels(settings).statuses(list(self.selection.profiles))
                self.post_message(self.StatusesRead(statuses))
            self._poke.wait(settings.tunnels_poll)
            self._poke.clear()

    def on_tunnels_panel_statuses_read(self, message: TunnelsPanel.StatusesRead) -> None:
        # not stopped: the screen's table marks the tunnelled servers
        self.statuses = tuple(message.statuses)
        self._refresh_view()

    def toggle(self, name: str) -> None:
        """Open the profile's tunnels, or close them when one runs (key T)."""
        if self.settings is not None:
            self.toggle_tunnels(self.settings, name)

    @worker("toggling a tunnel", group="tunnel")
    def toggle_tunnels(self, settings: Settings, name: str) -> None:
        try:
            statuses = Tunnels(settings).toggle(name)
        except VllmtuiError as exc:
            self.post_message(self.Toggled(None, str(exc)))
            return
        mine = [s for s in statuses if s.tunnel and s.tunnel.profile == name]
        states = ", ".join(sorted({s.state for s in mine})) or "none"
        self.post_message(self.Toggled(statuses, f"{name}: tunnel(s) now {states}"))

    def on_tunnels_panel_toggled(self, message: TunnelsPanel.Toggled) -> None:
        message.stop()
        if message.statuses is None:
            self.notify(message.summary, severity="error")
        else:
            self.notify(message.summary)
            self.post_message(self.StatusesRead(message.statuses))
        self._poke.set()

    def _refresh_view(self) -> None:
        if not self.shown:  # hidden tabs are not re-rendered; they catch up when shown
            return
        loaded = self.selection.loaded
        laptop = None
        if loaded is not None:
            try:
                laptop = laptop_command(loaded.profile.host, loaded.profile.port)
            except Exception:  # noqa: BLE001 - the panel shows the tunnels without it
                laptop = None
        self.show(self.statuses, laptop)

    def show(self, statuses: Sequence[TunnelStatus], laptop: LaptopCommand | None = None) -> None:
        """Render a reading."""
        self.statuses = tuple(statuses)
        self.laptop = laptop
        self.update(tunnels_text(self.statuses, laptop))
