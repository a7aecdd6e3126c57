"""The Tunnels panel: renders tunnel snapshots it is given. No I/O.

Interface for the app (which owns the worker, the `T` key and the messages):

- Read: in a thread worker, `Tunnels(settings).statuses(profiles)` returns
  `list[TunnelStatus]` (never raises for a broken config; it probes through each running
  forward, so run it off the UI thread, every few seconds). Post it in a message, e.g.
  `TunnelsRead(statuses)`, and call `panel.show(statuses, laptop)` from the handler.
- Laptop command: `laptop_command(profile.host, profile.port)` (pure: reads
  $SSH_CONNECTION) gives a `LaptopCommand`; pass the selected server's one to `show`.
  To copy it, call Textual's `App.copy_to_clipboard(cmd.text)` (OSC 52), or write
  `tunnels.osc52(cmd.text)` to the terminal when outside Textual.
- `T` on a profile row: in a thread worker, `Tunnels(settings).toggle(profile_name)`
  brings the profile's tunnels down when one runs, up otherwise; it returns the new
  statuses, and raises `VllmtuiError` with a user message (port in use and by whom, a
  server's port, no tunnel configured for this profile) to show as a notification.
  `Tunnels(settings).wait(name)` then polls until up/failed if you want to follow it.
- `tunnel_marks(statuses)` maps profile name -> a short mark (e.g. "⇄ up") for the
  server table's row.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from vllmtui.tunnels.manager import LaptopCommand, TunnelStatus

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

    def __init__(self, **kwargs: object) -> None:
        super().__init__(tunnels_text([]), **kwargs)  # type: ignore[arg-type]
        self.statuses: tuple[TunnelStatus, ...] = ()
        self.laptop: LaptopCommand | None = None

    def show(self, statuses: Sequence[TunnelStatus], laptop: LaptopCommand | None = None) -> None:
        """Render a new snapshot (call from the message handler, on the UI thread)."""
        self.statuses = tuple(statuses)
        self.laptop = laptop
        self.update(tunnels_text(self.statuses, laptop))
