"""A pull's progress: bytes done of the total and of the current file, the rate over the last
seconds, the time left; told as one line (`downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left`)
and written as `pull.json` in a server's run directory, where its status reads it.

Pure bookkeeping (no network, no threads): the download calls `advance`, whoever shows it
calls `snapshot`.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vllmtui.core.humanize import fmt_duration

PROGRESS_FILE = "pull.json"
"""The pull's progress in a server's run directory (written by `pull_step`)."""
RATE_WINDOW = 10.0
"""Seconds of samples the rate is measured over (a recent rate, not the average since start)."""
STALE_AFTER = 30.0
"""A `downloading` progress file not rewritten for this long is read as stalled."""
_UNITS = (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def fmt_size(count: float, scale_of: float | None = None) -> tuple[str, str]:
    """(number, unit) in decimal units, as download tools count: 3.2, GB. `scale_of`: pick the
    unit of this (larger) figure instead, so `3.2/15.2 GB` share one."""
    ref = abs(scale_of if scale_of is not None else count)
    for unit, size in _UNITS:
        if ref >= size:
            value = count / size
            return (f"{value:.1f}" if value < 100 else f"{value:.0f}"), unit
    return f"{count:.0f}", "B"


def fmt_pair(done: float, total: float) -> str:
    """`3.2/15.2 GB`."""
    a, unit = fmt_size(done, total)
    b, _ = fmt_size(total, total)
    return f"{a}/{b} {unit}"


def fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "measuring rate"
    value, unit = fmt_size(rate)
    return f"{value} {unit}/s"


@dataclass(frozen=True)
class Snapshot:
    """One reading of a pull: what `pull.json` holds."""

    state: str  # checking | downloading | done | failed
    repo: str
    revision: str
    done_bytes: int = 0
    total_bytes: int = 0
    files_done: int = 0
    files_total: int = 0
    file: str | None = None
    file_done: int = 0
    file_total: int = 0
    rate: float | None = None  # bytes per second over the last RATE_WINDOW s
    eta: float | None = None  # seconds left at that rate
    commit: str | None = None
    error: str | None = None
    updated: float = 0.0

    def line(self) -> str:
        """`downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left` (or what the pull is doing)."""
        if self.state == "checking":
            return f"checking {self.repo} on the hub"
        if self.state == "failed":
            return f"download failed: {self.error or 'unknown error'}"
        if self.state == "done":
            return f"downloaded {fmt_pair(self.done_bytes, self.total_bytes)}"
        text = f"downloading {fmt_pair(self.done_bytes, self.total_bytes)}, {fmt_rate(self.rate)}"
        if self.eta is not None:
            text += f", ~{fmt_duration(self.eta)} left"
        return text

    def file_line(self) -> str:
        """`model.safetensors 12.0/50.0 MB (file 3 of 5)`."""
        if not self.file:
            return ""
        return (f"{self.file} {fmt_pair(self.file_done, self.file_total)}"
                f" (file {min(self.files_done + 1, self.files_total)} of {self.files_total})")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Tracker:
    """Counts a pull's bytes. `clock`: time.monotonic (a test's own clock)."""

    def __init__(self, repo: str, revision: str, total_bytes: int, files_total: int,
                 done_bytes: int = 0, clock: Callable[[], float] = time.monotonic):
        self.repo, self.revision = repo, revision
        self.total_bytes, self.files_total = total_bytes, files_total
        self.done_bytes = done_bytes  # already in the cache count as done, not towards the rate
        self.files_done = 0
        self.file: str | None = None
        self.file_done = self.file_total = 0
        self.clock = clock
        self.commit: str | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._fetched = 0  # bytes this pull fetched (the rate's)

    def start_file(self, name: str, size: int, already: int = 0) -> None:
        self.file, self.file_total, self.file_done = name, size, already

    def advance(self, count: int) -> None:
        """`count` bytes arrived (negative: a server ignored a Range and they start again)."""
        self.done_bytes += count
        self.file_done += count
        self._fetched += count
        now = self.clock()
        self._samples.append((now, self._fetched))
        while len(self._samples) > 2 and self._samples[0][0] < now - RATE_WINDOW:
            self._samples.popleft()

    def resumed(self, count: int) -> None:
        """`count` bytes of the current file were there from an interrupted pull."""
        self.done_bytes += count
        self.file_done += count

    def end_file(self, size: int) -> None:
        """The current file is complete (`size` bytes, whatever was counted for it)."""
        self.done_bytes += size - self.file_done
        self.files_done += 1
        self.file, self.file_done, self.file_total = None, 0, 0

    def skip_file(self) -> None:
        """A file already in the cache (its bytes were counted as done from the start)."""
        self.files_done += 1

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.5:
            return None
        return max(0.0, (b1 - b0) / (t1 - t0))

    def snapshot(self, state: str = "downloading", error: str | None = None) -> Snapshot:
        rate = self.rate()
        left = max(0, self.total_bytes - self.done_bytes)
        eta = left / rate if rate else None
        return Snapshot(state, self.repo, self.revision, self.done_bytes, self.total_bytes,
                        self.files_done, self.files_total, self.file, self.file_done, self.file_total,
                        rate, eta, self.commit, error, time.time())


class ProgressFile:
    """Writes snapshots to a file atomically (readers never see half of one), at most every
    `every` seconds unless forced."""

    def __init__(self, path: Path, every: float = 0.5):
        self.path, self.every = path, every
        self._last = 0.0

    def write(self, snap: Snapshot, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(snap.to_json()))
            os.replace(tmp, self.path)
        except OSError:
            pass  # progress is for people: a full disk must not stop the pull here


def read_progress(path: Path) -> Snapshot | None:
    """The snapshot in a progress file, or None (absent, half-written, not one)."""
    try:
        data = json.loads(path.read_text())
        return Snapshot(**{k: data[k] for k in Snapshot.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def status_line(snap: Snapshot, now: float | None = None) -> str:
    """What a server's status says while its pull runs: the line, or that it stalled."""
    now = time.time() if now is None else now
    if snap.state == "downloading" and snap.updated and now - snap.updated > STALE_AFTER:
        return (f"downloading {fmt_pair(snap.done_bytes, snap.total_bytes)}, stalled"
                f" (no progress for {fmt_duration(now - snap.updated)})")
    return snap.line()
