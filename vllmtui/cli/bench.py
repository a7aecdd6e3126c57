"""`vllmtui bench|metrics`: benchmark a running server; read its /metrics."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vllmtui.bench import report as bench_report
from vllmtui.bench.load import BenchOptions, BenchProgress, run_bench
from vllmtui.bench.run import check_ready, make_config, resolve_target
from vllmtui.bench.stats import level_to_json
from vllmtui.cli.common import AddCommand
from vllmtui.cli.options import (
    concurrency_levels,
    non_negative_int,
    positive_float,
    positive_int,
)
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.servers.metrics import MetricsPoller, MetricsSnapshot, fmt_rate


def _concurrency(levels: tuple[int | None, ...] | None, rate: float | None) -> tuple[int | None, ...]:
    if not levels:
        return (None,) if rate else (1,)
    return levels


def _progress_printer() -> Callable[[BenchProgress], None]:
    last_key: list[tuple[str, int]] = []
    last_at = [0.0]

    def show(p: BenchProgress) -> None:
        key = (p.phase, p.level)
        now = time.monotonic()
        if last_key and key == last_key[0] and now - last_at[0] < 1.0 and p.done < p.total:
            return
        last_key[:] = [key]
        last_at[0] = now
        conc = "inf" if p.concurrency is None else p.concurrency
        print(f"  [{p.level + 1}/{p.levels}] concurrency {conc}: {p.phase} {p.done}/{p.total}",
              file=sys.stderr, flush=True)

    return show


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.compare:
        if not args.name:
            raise UsageError("--compare needs a profile name")
        reports = bench_report.reports_of(settings, args.name, limit=args.limit)
        if not reports:
            print(f"no saved benchmarks for {args.name} (run `vllmtui bench {args.name}` first)")
            return 0
        for line in bench_report.compare_table(reports):
            print(line)
        print()
        for line in bench_report.plot_throughput(reports):
            print(line)
        return 0
    target = resolve_target(settings, args.name, args.url, args.model)
    check_ready(target)
    rate = args.request_rate
    options = BenchOptions(
        input_len=args.input_len, output_len=args.output_len, num_prompts=args.num_prompts,
        concurrency=_concurrency(args.concurrency, rate),
        request_rate=math.inf if rate is None else rate, burstiness=args.burstiness,
        warmups=args.warmups, seed=args.seed, max_duration=args.max_duration,
    )
    cfg = make_config(target, options)
    started = time.time()
    levels = run_bench(cfg, None if args.json else _progress_printer())
    path = None
    if not args.no_save:
        where = Path(args.out) if args.out else target.run_dir or settings.state_dir / "bench" / target.name
        path = bench_report.save_report(where, target.name, cfg, levels, started)
    if args.json:
        print(json.dumps({"saved": str(path) if path else None,
                          "levels": [level_to_json(lv) for lv in levels]}, indent=2))
    else:
        print(f"{target.name}: in {cfg.input_len} / out {cfg.output_len} tokens, {cfg.num_prompts} prompts"
              f"{'' if math.isinf(cfg.request_rate) else f', Poisson {cfg.request_rate:g} req/s'}")
        for line in bench_report.level_table(levels):
            print(line)
        for lv in levels:
            for err in lv.stats.errors[:3]:
                print(f"  failed: {err}")
        if path:
            print(f"saved {path}  (compare: vllmtui bench {target.name} --compare)")
    return 1 if any(lv.stats.completed == 0 for lv in levels) else 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def snapshot_line(s: MetricsSnapshot) -> str:
    """One text line for a metrics snapshot (the `vllmtui metrics` output)."""
    if s.stale:
        age = f" for {s.stale_for:.0f} s" if s.stale_for is not None else ""
        return f"stale{age}: {s.error}"
    kv = "-" if s.kv_cache_usage is None else f"{s.kv_cache_usage * 100:.1f}%"
    return (f"running {s.running:.0f} waiting {s.waiting:.0f}  kv {kv}  "
            f"prompt {fmt_rate(s.prompt_tps)} tok/s  gen {fmt_rate(s.generation_tps)} tok/s  "
            f"TTFT p50/p90/p99 {_ms(s.ttft.p50)}/{_ms(s.ttft.p90)}/{_ms(s.ttft.p99)} ms  "
            f"ITL p50 {_ms(s.itl.p50)} ms  E2E p50 {_ms(s.e2el.p50)} ms  "
            f"preemptions {s.preemptions_total or 0:.0f}")


def _snapshot_json(s: MetricsSnapshot) -> dict[str, Any]:
    data = asdict(s)
    data.pop("history")
    return data


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    target = resolve_target(settings, args.name, args.url, None)
    count = 0
    try:
        with MetricsPoller(target.base_url) as poller:
            snap = poller.poll()  # the baseline for rates
            while args.watch or count < args.count:
                time.sleep(args.interval)
                snap = poller.poll()
                count += 1
                if args.json:
                    print(json.dumps(_snapshot_json(snap)), flush=True)
                else:
                    print(f"{time.strftime('%H:%M:%S')} {snapshot_line(snap)}", flush=True)
    except KeyboardInterrupt:
        return 0
    return 0 if snap.ok else 1


def add_parsers(add: AddCommand) -> None:
    """Register bench and metrics."""
    p = add("bench", cmd_bench, "benchmark a running server (streamed requests, vLLM's figures)")
    p.add_argument("name", nargs="?", help="profile name (its server must be running)")
    p.add_argument("--url", help="benchmark this base URL instead of a profile's server")
    p.add_argument("--model", help="model name to request (default: the profile's, or /v1/models)")
    p.add_argument("--input-len", type=positive_int("tokens"), default=128,
                   help="prompt tokens, exact (128)")
    p.add_argument("--output-len", type=positive_int("tokens"), default=64,
                   help="output tokens, exact: ignore_eos (64)")
    p.add_argument("--num-prompts", type=positive_int("requests"), default=50,
                   help="requests per level (50)")
    p.add_argument("--concurrency", type=concurrency_levels,
                   help="levels to run, e.g. 1,4,16; inf: no limit (default 1)")
    p.add_argument("--request-rate", type=positive_float("requests/s"),
                   help="Poisson arrivals, requests/s (default: all at once)")
    p.add_argument("--burstiness", type=positive_float(""), default=1.0,
                   help="gamma shape; 1 = Poisson")
    p.add_argument("--warmups", type=non_negative_int("requests"), default=2,
                   help="unmeasured requests before each level (2)")
    p.add_argument("--seed", type=non_negative_int(), default=0)
    p.add_argument("--max-duration", type=positive_float(), default=600.0,
                   help="seconds per level at most (600)")
    p.add_argument("--out", help="directory for the JSON (default: the server's run directory)")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--compare", action="store_true",
                   help="show saved benchmarks of this profile: a table and throughput vs concurrency")
    p.add_argument("--limit", type=positive_int("benchmarks"), default=8,
                   help="how many saved benchmarks --compare shows (8)")
    p = add("metrics", cmd_metrics, "read a running server's /metrics: load, tokens/s, latency percentiles")
    p.add_argument("name", nargs="?", help="profile name")
    p.add_argument("--url", help="a base URL instead of a profile's server")
    p.add_argument("--interval", type=positive_float(), default=1.0,
                   help="seconds between readings (1)")
    p.add_argument("--count", type=positive_int("lines"), default=1, help="lines to print (1)")
    p.add_argument("--watch", action="store_true", help="keep printing until Ctrl-C")
    p.add_argument("--json", action="store_true")
