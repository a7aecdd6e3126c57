"""Pure text formatting for the screen (no I/O): durations, states, row cells."""

from __future__ import annotations

from rich.text import Text

from vllmtui.core.humanize import fmt_duration
from vllmtui.servers.status import ServerStatus

# Colour names from the 16-colour ANSI palette, so a basic terminal shows them as meant;
# every state is also spelled out, so colour is never the only signal.
STATE_STYLES = {
    "stopped": "",
    "starting": "yellow",
    "ready": "bold green",
    "asleep": "cyan",
    "unhealthy": "bold red",
    "stopping": "magenta",
    "exited": "",
    "crashed": "bold red",
    "invalid": "red",
}


def fmt_uptime(seconds: float | None) -> str:
    """Like fmt_duration but to the minute after the first minute: the table then changes
    (and is redrawn, over SSH too) once a minute instead of every second."""
    if seconds is not None and 60 <= seconds < 3600:
        return f"{int(seconds) // 60}m"
    return fmt_duration(seconds)


def state_words(status: ServerStatus, stop_progress: str | None = None) -> str:
    """The status column: state, phase and ETA while starting, the countdown while stopping."""
    if stop_progress is not None:
        return f"stopping: {stop_progress}"
    if status.state == "starting" and status.phase == "downloading" and status.detail:
        return status.detail  # `downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left`: the pull's own line
    if status.state == "starting":
        text = f"starting: {status.phase_label or 'importing'}"
        if status.eta is not None:
            text += f" ~{fmt_duration(status.eta)} left"
        return text
    if status.state in ("crashed", "unhealthy", "exited") and status.detail:
        return f"{status.state}{restarts_note(status)}: {status.detail}"
    if status.state == "stopping":
        return "stopping: " + (status.detail or "stop requested")
    return status.state + restarts_note(status)


def restarts_note(status: ServerStatus) -> str:
    """' (restarted 2x)' for a server the gateway restarted after crashes, else ''."""
    return f" (restarted {status.restarts}x)" if status.restarts else ""


def state_cell(status: ServerStatus, stop_progress: str | None = None, width: int = 48) -> Text:
    words = state_words(status, stop_progress)
    if len(words) > width:
        words = words[: width - 3] + "..."
    state = "stopping" if stop_progress is not None else status.state
    return Text(words, style=STATE_STYLES.get(state, ""))


def countdown_words(progress: str) -> str:
    """Fleet.stop's progress line, shortened for a table cell."""
    if "still running;" in progress:
        return progress.split("still running;", 1)[1].strip()
    if progress.startswith("sending SIGINT"):
        return "SIGINT sent"
    return progress[:40]
