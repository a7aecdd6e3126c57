"""Benchmark results on disk and side by side: `bench-<UTC>.json` files in run directories,
a comparison table across a profile's runs, and a plain-text plot of output throughput
against concurrency (no Rich: the CLI prints it, the TUI shows it in a Static)."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vllmtui import __version__
from vllmtui.bench.load import BenchConfig
from vllmtui.bench.stats import BenchReport, LevelResult, level_from_json, level_to_json
from vllmtui.core.settings import Settings
from vllmtui.servers import runs

PREFIX = "bench-"
KIND = "vllmtui-bench"


def save_report(directory: Path, profile: str, cfg: BenchConfig, levels: list[LevelResult],
                started: float, extra: dict[str, Any] | None = None) -> Path:
    """Write `directory/bench-<UTC>.json` (atomically) and return its path."""
    stamp = datetime.fromtimestamp(started, UTC).strftime(runs.TIME_FORMAT)
    config = {k: v for k, v in cfg.__dict__.items() if k != "api_key"}
    config["concurrency"] = list(cfg.concurrency)
    config["request_rate"] = None if math.isinf(cfg.request_rate) else cfg.request_rate
    data = {
        "kind": KIND,
        "version": 1,
        "profile": profile,
        "started": started,
        "started_utc": datetime.fromtimestamp(started, UTC).isoformat(),
        "finished": time.time(),
        "vllmtui_version": __version__,
        "server_run": str(directory) if (directory / runs.LAUNCH).exists() else None,
        "config": config,
        "levels": [level_to_json(level) for level in levels],
        **(extra or {}),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{PREFIX}{stamp}.json"
    runs.write_json(path, data)
    return path


def read_report(path: Path) -> BenchReport | None:
    """A saved benchmark, or None for a file that is not one (or is damaged)."""
    try:
        data = json.loads(path.read_text())
        if data.get("kind") != KIND:
            return None
        levels = tuple(level_from_json(x) for x in data["levels"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    known = {"kind", "version", "profile", "started", "config", "levels", "server_run"}
    return BenchReport(
        profile=str(data.get("profile", "")),
        started=float(data.get("started", 0)),
        config=dict(data.get("config", {})),
        levels=levels,
        server_run=data.get("server_run"),
        path=str(path),
        extra={k: v for k, v in data.items() if k not in known},
    )


def reports_of(settings: Settings, profile: str, limit: int = 20) -> list[BenchReport]:
    """Saved benchmarks across this profile's runs, newest first."""
    out: list[BenchReport] = []
    places = [run.path for run in runs.runs_of(settings, profile)]
    places.append(settings.state_dir / "bench" / profile)  # a server run elsewhere (--url, another host)
    for place in places:
        for path in sorted(place.glob(f"{PREFIX}*.json"), reverse=True):
            report = read_report(path)
            if report is not None:
                out.append(report)
                if len(out) >= limit:
                    return out
    return out


def _conc(value: int | None) -> str:
    return "inf" if value is None else str(value)


def _rate(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


def level_table(levels: tuple[LevelResult, ...] | list[LevelResult]) -> list[str]:
    """One benchmark's levels as text rows (the `vllmtui bench` summary)."""
    head = (f"{'conc':>5} {'rate':>5} {'ok':>5} {'fail':>4} {'req/s':>7} {'out tok/s':>9} "
            f"{'tot tok/s':>9} {'TTFT med':>9} {'TTFT p99':>9} {'TPOT med':>9} {'ITL med':>8} "
            f"{'E2EL med':>9}")
    rows = [head]
    for lv in levels:
        s = lv.stats
        rows.append(
            f"{_conc(lv.concurrency):>5} {_rate(lv.request_rate):>5} {s.completed:>5} {s.failed:>4} "
            f"{s.request_throughput:>7.2f} {s.output_throughput:>9.1f} {s.total_token_throughput:>9.1f} "
            f"{s.ttft_ms.median:>8.1f}ms {s.ttft_ms.p99:>7.1f}ms {s.tpot_ms.median:>7.1f}ms "
            f"{s.itl_ms.median:>6.1f}ms {s.e2el_ms.median:>7.1f}ms"
        )
    return rows


def label(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index)


def compare_table(reports: list[BenchReport]) -> list[str]:
    """Rows comparing several benchmarks of a profile (one row per benchmark and level)."""
    rows = [f"{'':2}{'when (UTC)':<20} {'in/out':>9} {'n':>4} {'conc':>5} {'req/s':>7} "
            f"{'out tok/s':>9} {'TTFT med':>9} {'TPOT med':>9} {'fail':>4}"]
    for i, rep in enumerate(reports):
        when = datetime.fromtimestamp(rep.started, UTC).strftime("%Y-%m-%d %H:%M:%S")
        io = f"{rep.config.get('input_len', '?')}/{rep.config.get('output_len', '?')}"
        for lv in rep.levels:
            s = lv.stats
            rows.append(
                f"{label(i):<2}{when:<20} {io:>9} {rep.config.get('num_prompts', '?'):>4} "
                f"{_conc(lv.concurrency):>5} {s.request_throughput:>7.2f} {s.output_throughput:>9.1f} "
                f"{s.ttft_ms.median:>7.1f}ms {s.tpot_ms.median:>7.1f}ms {s.failed:>4}"
            )
    return rows


def plot_throughput(reports: list[BenchReport], width: int = 60, height: int = 13) -> list[str]:
    """Output tokens/s (y) against concurrency (x, log2 scale), one letter per benchmark
    (the letters of `compare_table`), dots joining a benchmark's points."""
    series: list[tuple[str, list[tuple[float, float]]]] = []
    for i, rep in enumerate(reports):
        pts = [(math.log2(lv.concurrency), lv.stats.output_throughput)
               for lv in rep.levels if lv.concurrency]
        if pts:
            series.append((label(i), sorted(pts)))
    if not series:
        return ["(no benchmark with a concurrency level to plot)"]
    xs = [x for _, pts in series for x, _ in pts]
    top = max(y for _, pts in series for _, y in pts) or 1.0
    x0, x1 = min(xs), max(xs)
    span = (x1 - x0) or 1.0
    grid = [[" "] * width for _ in range(height)]

    def cell(x: float, y: float) -> tuple[int, int]:
        col = round((x - x0) / span * (width - 1)) if x1 > x0 else width // 2
        row = height - 1 - round(y / top * (height - 1))
        return row, col

    for name, pts in series:
        for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
            steps = max(2, abs(cell(xb, yb)[1] - cell(xa, ya)[1]))
            for k in range(1, steps):
                t = k / steps
                r, c = cell(xa + (xb - xa) * t, ya + (yb - ya) * t)
                if grid[r][c] == " ":
                    grid[r][c] = "·"
        for x, y in pts:
            r, c = cell(x, y)
            grid[r][c] = name
    out = [f"output tok/s (top {top:.0f})"]
    for r, line in enumerate(grid):
        value = top * (height - 1 - r) / (height - 1)
        tick = f"{value:8.0f} ┤" if (height - 1 - r) % 3 == 0 else f"{'':8} │"
        out.append(tick + "".join(line))
    out.append(f"{'':8} └" + "─" * width)
    labels = [" "] * (width + 1)
    for x in sorted(set(xs)):
        text = f"{2 ** x:g}"
        col = round((x - x0) / span * (width - 1)) if x1 > x0 else width // 2
        for k, ch in enumerate(text):
            if col + k < len(labels):
                labels[col + k] = ch
    out.append(f"{'':10}" + "".join(labels).rstrip() + "   concurrency (log2)")
    return out
