"""Numbers for people to read, shared by the CLI and the TUI."""

from __future__ import annotations


def fmt_duration(seconds: float | None) -> str:
    """12s, 3m05s, 2h10m, 1d3h05m; '-' when unknown."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}h{rest % 3600 // 60:02d}m"
    return f"{days}d{text}" if days else text
