"""Saved bench reports: round trip through JSON, the comparison table and the throughput plot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from vllmtui.bench import report as bench_report
from vllmtui.bench.load import BenchConfig
from vllmtui.bench.stats import BenchStats, Dist, LevelResult
from vllmtui.core.settings import Settings


def _level(conc: int, tput: float) -> LevelResult:
    d = Dist(1.0, 0.0, 1.0, 1.0, 1.0)
    stats = BenchStats(10, 0, 100, 50, 1.0, 10.0, tput, tput + 100, d, d, d, d)
    return LevelResult(conc, float("inf"), stats)


def test_reports_round_trip_compare_and_plot(tmp_path: Path) -> None:
    settings = replace(Settings(), state_dir=tmp_path / "state")
    run_dir = settings.runs_dir / "p" / "20260101T000000.000000Z"
    run_dir.mkdir(parents=True)
    (run_dir / "launch.json").write_text(json.dumps({"profile": "p", "started": 1.0}))
    cfg = BenchConfig(base_url="http://x", model="m", concurrency=(1, 2, 4), api_key="secret")
    levels = [_level(1, 10.0), _level(2, 20.0), _level(4, 40.0)]
    path = bench_report.save_report(run_dir, "p", cfg, levels, started=1_700_000_000.0)
    assert "secret" not in path.read_text()
    older = bench_report.save_report(run_dir, "p", cfg, [_level(1, 5.0), _level(4, 8.0)], 1_600_000_000.0)
    reports = bench_report.reports_of(settings, "p")
    assert [r.path for r in reports] == [str(path), str(older)]
    assert reports[0].levels == tuple(levels)
    assert reports[0].server_run == str(run_dir)
    table = bench_report.compare_table(reports)
    assert len(table) == 1 + 3 + 2
    assert table[1].startswith("A ") and table[4].startswith("B ")
    plot = bench_report.plot_throughput(reports, width=41, height=11)
    grid = plot[1:12]
    assert grid[0].rstrip().endswith("A")  # 40 tok/s at concurrency 4: top right
    assert sum(line.count("A") for line in grid) == 3
    assert sum(line.count("B") for line in grid) == 2
    assert "concurrency" in plot[-1]
    (run_dir / "bench-broken.json").write_text("{not json")
    assert len(bench_report.reports_of(settings, "p")) == 2
