"""Log files: tail by byte offset, clean terminal output, recognise vLLM's phases, and keep
the root cause of the failures `servers.failures` reads in its lines.

A log can be gigabytes: nothing here reads a whole file. Readers seek to an offset and
read forward, or read backwards from the end in blocks.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from vllmtui.servers.failures import _STOP, _SUMMARY, EXCEPTION, Failure, _message, failure_of

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")
PREFIX_RE = re.compile(
    r"^\((?P<proc>[A-Za-z_]+)(?: [A-Za-z_]+)* pid=(?P<pid>\d+)\)\s+"
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)?"
)
LEVEL_RE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback \(most recent call last\)|Error:")


def clean_line(raw: str) -> str:
    """One display line: ANSI codes removed, a tqdm `\\r` redraw collapsed to its last state."""
    text = raw.rstrip("\r\n")
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return ANSI_RE.sub("", text)


def is_problem_line(line: str) -> bool:
    """Warnings and errors (for the TUI's filter)."""
    return bool(LEVEL_RE.search(line))


# ---------------------------------------------------------------- phases

@dataclass(frozen=True)
class Phase:
    key: str
    label: str
    pattern: re.Pattern[str]


# In start order. The last phase whose pattern has been seen is the current one.
PHASES: tuple[Phase, ...] = (
    Phase("importing", "importing", re.compile(r"vLLM API server version|non-default args")),
    Phase(
        "loading",
        "loading weights",
        # "Starting to load model" (0.30+ and CPU), "Loading model from scratch" (0.26 V2 runner)
        re.compile(
            r"Starting to load model|Loading model from scratch|Loading weights|Loading safetensors"
            r"|Loading pt checkpoint"
        ),
    ),
    Phase(
        "profiling",
        "profiling / KV cache",
        re.compile(
            r"Model loading took|Memory profiling takes|Available KV cache memory|KV cache size:"
        ),
    ),
    Phase(
        "compiling",
        "compiling / CUDA graphs",
        re.compile(
            r"torch\.compile takes|torch\.compile took|Dynamo bytecode transform|Compiling a graph"
            r"|Capturing CUDA graph|Graph capturing"
        ),
    ),
    Phase(
        "api",
        "starting API server",
        re.compile(r"init engine \(profile|Starting vLLM (?:API )?server on|Available routes are"),
    ),
    Phase("ready", "ready", re.compile(r"Application startup complete\.")),
)
PHASE_LABELS = {p.key: p.label for p in PHASES}


def phase_of(line: str) -> str | None:
    """The start phase a log line marks, if any (the latest phase wins)."""
    for phase in reversed(PHASES):
        if phase.pattern.search(line):
            return phase.key
    return None


@dataclass
class LogState:
    """What the log has said so far: the current phase, the root cause (the best-ranked
    failure, the first of its rank), vLLM's own figures. Feed it lines in order."""

    phase: str | None = None
    failure: Failure | None = None
    lines_seen: int = 0
    last_stamp: str | None = None  # vLLM's "MM-DD HH:MM:SS" of the latest prefixed line
    ready_stamp: str | None = None  # the stamp in force when the readiness line came
    _stopped: bool = field(default=False, repr=False)  # a stop was asked for (SIGINT/SIGTERM)
    _summary: Failure | None = field(default=None, repr=False)  # pydantic's, its reason next

    def feed(self, line: str) -> None:
        self.lines_seen += 1
        stamp = STAMP_RE.search(line)
        if stamp:
            self.last_stamp = stamp.group(1)
        phase = phase_of(line)
        if phase is not None and (
            self.phase is None or _order(phase) >= _order(self.phase)
        ):
            if phase == "ready" and self.phase != "ready":
                self.ready_stamp = self.last_stamp
            self.phase = phase
        self._feed_failure(line)

    def _feed_failure(self, line: str) -> None:
        """Argparse errors beat everything, specific causes beat an exception's bare message,
        which beats "Engine core initialization failed" and the like, which beat a bare ERROR
        line; among equals the first wins. After a requested stop, the engine's death is no
        cause (only specific ones still count)."""
        found = failure_of(line)
        summary, self._summary = self._summary, None
        if found is None:
            if summary is not None and self.failure is summary:
                message = _message(line)[1]
                if message.startswith("  ") and message.strip():  # pydantic's reason, indented
                    self.failure = replace(summary, line=line.strip())
            elif ("signal=SIG" in line or "KeyboardInterrupt" in line) and _STOP.search(line):
                self._stopped = True
            return
        if self._stopped and found.rank >= EXCEPTION:
            return
        if self.failure is None or found.rank < self.failure.rank:
            self.failure = found
            if found.rank == EXCEPTION and _SUMMARY.search(found.line):
                self._summary = found


def _order(key: str) -> int:
    return [p.key for p in PHASES].index(key)


STAMP_RE = re.compile(r"^\(\w+ pid=\d+\) [A-Z]+ (\d\d-\d\d \d\d:\d\d:\d\d) ")


def stamp_to_epoch(stamp: str, near: float) -> float | None:
    """vLLM's local-time "MM-DD HH:MM:SS" (no year) as epoch seconds, taking the year that
    puts it closest to `near`."""
    import datetime as dt

    base = dt.datetime.fromtimestamp(near)
    best: float | None = None
    for year in (base.year - 1, base.year, base.year + 1):
        try:
            value = dt.datetime.strptime(f"{year}-{stamp}", "%Y-%m-%d %H:%M:%S").timestamp()
        except ValueError:
            continue
        if best is None or abs(value - near) < abs(best - near):
            best = value
    return best


# ---------------------------------------------------------------- reading files


def read_lines_from(path: Path, offset: int, limit: int = 4 << 20) -> tuple[list[str], int]:
    """Complete lines from `offset` (at most `limit` bytes); returns (lines, new offset).
    A partial last line is left for the next call."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if offset > size:  # truncated or replaced
                offset = 0
            fh.seek(offset)
            data = fh.read(limit)
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    chunk = data[: end + 1]
    return chunk.decode("utf-8", "replace").splitlines(), offset + len(chunk)


def tail_lines(path: Path, count: int, block: int = 64 << 10) -> tuple[list[str], int]:
    """The last `count` lines, reading backwards from the end; returns (lines, end offset)."""
    try:
        with path.open("rb") as fh:
            end = os.fstat(fh.fileno()).st_size
            pos = end
            data = b""
            while pos > 0 and data.count(b"\n") <= count:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return [], 0
    # only complete lines: the end offset is after the last newline
    last_nl = data.rfind(b"\n")
    if last_nl < 0:
        return [], end - len(data)
    complete_end = end - (len(data) - last_nl - 1)
    lines = data[: last_nl + 1].decode("utf-8", "replace").splitlines()
    return lines[-count:] if count else [], complete_end


def scan(path: Path, head_bytes: int = 8 << 20, tail_bytes: int = 1 << 20) -> LogState:
    """Phase and failure of a log without reading all of it: the start (phases) and the end
    (the crash). Enough for a one-shot status; followers feed LogState incrementally."""
    state = LogState()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return state
    lines, offset = read_lines_from(path, 0, head_bytes)
    for line in lines:
        state.feed(clean_line(line))
    if size > offset:
        start = max(offset, size - tail_bytes)
        more, _ = read_lines_from(path, start, tail_bytes + 1)
        for line in more[1:] if start > offset else more:
            state.feed(clean_line(line))
    return state


READY_LINE = b"Application startup complete."  # what the "ready" phase's pattern matches


def ready_stamp(path: Path, limit: int = 8 << 20) -> str | None:
    """What `LogState.ready_stamp` would say after the whole log, found fast: the stamp in
    force when the log first said it was ready (searched in its first `limit` bytes); None
    when it did not say so there, or had no stamps before it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit)
    except FileNotFoundError:
        return None
    end = data.find(READY_LINE)
    if end < 0 or data.find(b"\n", end) < 0:  # not there, or on a line not complete yet
        return None
    for line in reversed(data[:end].decode("utf-8", "replace").splitlines()):
        stamp = STAMP_RE.search(clean_line(line))
        if stamp:
            return stamp.group(1)
    return None


class LogStates:
    """What each log has said so far, read incrementally: each call reads only the bytes added
    since the last one (a log too big to read at once is `scan`ned). Thread-safe."""

    def __init__(self, big: int = 16 << 20) -> None:
        self._big = big
        self._seen: dict[Path, tuple[int, LogState]] = {}
        self._lock = threading.Lock()

    def state(self, path: Path) -> LogState:
        """The phase, failure and stamps of the log at `path` up to its last complete line."""
        with self._lock:
            offset, state = self._seen.get(path, (0, LogState()))
            if offset == 0 and path.exists() and path.stat().st_size > self._big:
                state = scan(path)
                offset = path.stat().st_size
            else:
                lines, offset = read_lines_from(path, offset)
                for line in lines:
                    state.feed(clean_line(line))
            self._seen[path] = (offset, state)
            return state


def follow(
    path: Path, from_end_lines: int = 20, poll: float = 0.25, stop: float | None = None
) -> Iterator[str]:
    """Yield the last lines, then new lines as they are appended (like `tail -F`)."""
    lines, offset = tail_lines(path, from_end_lines)
    yield from lines
    deadline = None if stop is None else time.monotonic() + stop
    while deadline is None or time.monotonic() < deadline:
        new, offset = read_lines_from(path, offset)
        if new:
            yield from new
        else:
            time.sleep(poll)
