"""The model files as rows for people to read: what `vllmtui models` prints and the Models tab
shows (the tab styles the same cells). Pure: a `CacheReport` and the time in, text out."""

from __future__ import annotations

from dataclasses import dataclass

from vllmtui.core.humanize import fmt_bytes, fmt_duration
from vllmtui.models.cache import CachedModel, CacheReport

HEADERS = ("MODEL", "REVISION", "SIZE", "LAST USED", "PROFILES")


@dataclass(frozen=True)
class Row:
    """One line of the listing: a model, or (`revision_of` set) one of its revisions."""

    model: str
    revision: str
    size: str
    last_used: str
    profiles: str
    kind: str = "hub"
    revision_of: str | None = None

    @property
    def cells(self) -> tuple[str, str, str, str, str]:
        return (self.model, self.revision, self.size, self.last_used, self.profiles)


def ago(when: float | None, now: float) -> str:
    """`3m05s ago`, `just now`, or `-` when unknown."""
    if when is None:
        return "-"
    seconds = now - when
    return "just now" if seconds < 1 else f"{fmt_duration(seconds)} ago"


def _profiles(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "-"


def model_rows(model: CachedModel, now: float) -> list[Row]:
    """A model's row, then one row per revision when it has several."""
    used = ago(model.last_used, now)
    size = fmt_bytes(model.size_on_disk)
    if model.kind == "local":
        return [Row(model.repo_id, "local directory", size, used, _profiles(model.profiles), "local")]
    revs = model.revisions
    if len(revs) == 1:
        label = revs[0].label
        if model.incomplete_bytes:
            label += f" +{fmt_bytes(model.incomplete_bytes)} partial"
        return [Row(model.repo_id, label, size, used, _profiles(model.profiles))]
    head = f"{len(revs)} revisions" if revs else "no snapshot"
    if model.incomplete_bytes:
        head += f" +{fmt_bytes(model.incomplete_bytes)} partial"
    rows = [Row(model.repo_id, head, size, used, _profiles(model.profiles))]
    rows += [Row("", r.label, fmt_bytes(r.size_on_disk), "", _profiles(r.profiles), revision_of=model.repo_id)
             for r in revs]
    return rows


def report_rows(report: CacheReport, now: float) -> list[Row]:
    """Every row of the listing, hub models first (the report's order)."""
    return [row for model in report.models for row in model_rows(model, now)]


def table(rows: list[Row]) -> list[str]:
    """The rows as aligned text lines under a header (the CLI's table)."""
    cells = [HEADERS, *(r.cells for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS) - 1)]
    out = []
    for row in cells:
        line = "  ".join(
            (cell.rjust(widths[i]) if i == 2 else cell.ljust(widths[i])) if i < len(widths) else cell
            for i, cell in enumerate(row))
        out.append(line.rstrip())
    return out


def totals_text(report: CacheReport) -> str:
    """`3 models, 12.4 GiB on disk; 80.1 GiB free of 250.0 GiB (where the cache is)`."""
    hub = sum(1 for m in report.models if m.kind == "hub")
    local = len(report.models) - hub
    what = f"{hub} in the cache"
    if local:
        what += f", {local} local director{'y' if local == 1 else 'ies'}"
    text = f"total: {fmt_bytes(report.total_bytes)} on disk ({what})"
    for disk in report.disks:
        text += f"; {fmt_bytes(disk.free_bytes)} free of {fmt_bytes(disk.total_bytes)} at {disk.path}"
    if not report.disks:
        text += "; free disk space unknown"
    return text


def not_cached_lines(report: CacheReport) -> list[str]:
    """One line for each model profiles use that no cache here holds, with the fix."""
    lines = []
    for entry in report.not_cached:
        first = entry.profiles[0]
        lines.append(f"not in the cache: {entry.repo_id} (profile {', '.join(entry.profiles)}):"
                     f" `vllmtui pull {first}` fetches it")
    return lines
