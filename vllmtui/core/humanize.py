"""Numbers for people to read (durations, byte counts, sparklines), shared by the CLI and the TUI."""

from __future__ import annotations

from collections.abc import Iterable


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


SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(
    values: Iterable[float | None],
    width: int | None = None,
    top: float | None = None,
    pad: bool = False,
) -> str:
    """The last `width` values (all of them without it) as block characters: ▁ for 0 up to █
    for `top` (default: the largest value; all ▁ when that is 0). A gap (None) is a space.
    `pad`: spaces on the left up to `width`, so the newest value keeps to the right edge."""
    data = list(values)
    if width is not None:
        data = data[-width:]
    if top is None:
        top = max((v for v in data if v is not None), default=0.0)
    text = "".join(" " if v is None else _block(v, top) for v in data)
    return text.rjust(width) if pad and width else text


def _block(value: float, top: float) -> str:
    if top <= 0:
        return SPARK_BLOCKS[0]
    last = len(SPARK_BLOCKS) - 1
    return SPARK_BLOCKS[min(last, max(0, int(value / top * last + 0.5)))]


def fmt_bytes(count: int | float | None) -> str:
    """512 B, 12.0 KiB, 3.4 MiB, 15.2 GiB, 1.1 TiB (binary units, as `du -h` and the planner);
    '-' when unknown."""
    if count is None:
        return "-"
    value = float(count)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{value:.1f} TiB"  # not reached
