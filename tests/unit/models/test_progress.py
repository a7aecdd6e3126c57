"""A pull's progress figures: bytes, rate over the recent seconds, time left, the lines."""

from __future__ import annotations

import io
import time
from pathlib import Path

from vllmtui.models.progress import ProgressFile, Snapshot, Tracker, fmt_pair, read_progress, status_line
from vllmtui.models.pull_step import Console


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_and_eta_follow_the_bytes_of_the_last_seconds() -> None:
    clock = Clock()
    tracker = Tracker("org/m", "main", total_bytes=15_200_000_000, files_total=3,
                      done_bytes=200_000_000, clock=clock)
    tracker.start_file("model-00001-of-00002.safetensors", 10_000_000_000)
    assert tracker.snapshot().rate is None  # one sample: no rate yet
    for _ in range(25):  # 120 MB every second
        clock.now += 1
        tracker.advance(120_000_000)
    snap = tracker.snapshot()
    assert snap.done_bytes == 3_200_000_000
    assert snap.rate is not None and abs(snap.rate - 120e6) < 1
    assert snap.eta is not None and abs(snap.eta - 100.0) < 0.01
    assert snap.line() == "downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left"
    assert snap.file_line() == "model-00001-of-00002.safetensors 3.0/10.0 GB (file 1 of 3)"
    for _ in range(12):  # the rate is the recent one: it halves within the window
        clock.now += 1
        tracker.advance(60_000_000)
    assert 55e6 < (tracker.rate() or 0) < 70e6


def test_resumed_bytes_count_as_done_but_not_towards_the_rate() -> None:
    clock = Clock()
    tracker = Tracker("org/m", "main", 1000, 1, clock=clock)
    tracker.start_file("w.safetensors", 1000)
    tracker.resumed(600)
    clock.now += 1
    tracker.advance(100)
    clock.now += 1
    tracker.advance(100)
    snap = tracker.snapshot()
    assert snap.done_bytes == 800 and snap.file_done == 800
    assert snap.rate == 100.0 and snap.eta == 2.0
    tracker.advance(-200)  # a server ignored the Range: those bytes come again
    assert tracker.snapshot().done_bytes == 600
    tracker.end_file(1000)
    assert tracker.snapshot().done_bytes == 1000 and tracker.snapshot().files_done == 1


def test_units_share_the_total_s() -> None:
    assert fmt_pair(3_200_000, 15_200_000_000) == "0.0/15.2 GB"
    assert fmt_pair(512, 2048) == "0.5/2.0 kB"
    assert fmt_pair(10, 20) == "10/20 B"


def test_progress_file_round_trip_and_stall(tmp_path: Path) -> None:
    path = tmp_path / "pull.json"
    writer = ProgressFile(path, every=10.0)
    snap = Snapshot("downloading", "org/m", "main", 5_000_000, 10_000_000, rate=1e6, eta=5.0,
                    updated=time.time())
    writer.write(snap, force=True)
    writer.write(Snapshot("downloading", "org/m", "main", 6_000_000, 10_000_000))  # throttled
    back = read_progress(path)
    assert back == snap
    assert status_line(back) == "downloading 5.0/10.0 MB, 1.0 MB/s, ~5s left"
    assert "stalled (no progress for 1m00s)" in status_line(back, now=snap.updated + 60)
    path.write_text("{half")
    assert read_progress(path) is None
    failed = Snapshot("failed", "org/m", "main", error="no space")
    assert failed.line() == "download failed: no space"


def test_console_prints_lines_to_a_log_and_redraws_a_terminal() -> None:
    clock = Clock()
    log = io.StringIO()
    console = Console(log, tty=False, clock=clock)
    snap = Snapshot("downloading", "org/m", "main", 1_000_000, 4_000_000, 0, 2, "a.safetensors",
                    1_000_000, 4_000_000, 1e6, 3.0)
    console.show(snap)
    clock.now += 1
    console.show(snap)  # within PRINT_EVERY: not printed again
    clock.now += 10
    console.show(snap)
    assert log.getvalue().count("\n") == 2
    assert log.getvalue().splitlines()[0] == (
        "downloading 1.0/4.0 MB, 1.0 MB/s, ~3s left | a.safetensors 1.0/4.0 MB (file 1 of 2)")
    tty = io.StringIO()
    console = Console(tty, tty=True, clock=clock)
    console.show(snap)
    clock.now += 1
    console.show(snap)
    console.end()
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith("\n")

