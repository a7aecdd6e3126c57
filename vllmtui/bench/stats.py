"""A benchmark's results and their statistics: one request's timings, the distribution of a level's
latencies (numpy-compatible percentiles), a level's result and a saved report, to and from JSON."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestResult:
    """One request as the client saw it; times in seconds from just before the POST."""

    success: bool
    prompt_len: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    itl: tuple[float, ...] = ()
    latency: float = 0.0
    start_time: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Dist:
    """mean, std, median, p90, p99 of one figure, in milliseconds (0 without samples,
    as vLLM reports them)."""

    mean: float
    std: float
    median: float
    p90: float
    p99: float


@dataclass(frozen=True)
class BenchStats:
    completed: int
    failed: int
    total_input: int
    total_output: int
    duration: float
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    ttft_ms: Dist
    tpot_ms: Dist
    itl_ms: Dist
    e2el_ms: Dist
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class LevelResult:
    concurrency: int | None
    request_rate: float
    stats: BenchStats


def percentile(values: Sequence[float], p: float) -> float:
    """numpy's default percentile (linear interpolation between closest ranks)."""
    if not values:
        return 0.0
    data = sorted(values)
    pos = (len(data) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def dist_ms(values: Sequence[float]) -> Dist:
    """Distribution of seconds, reported in ms; numpy's population std (ddof=0)."""
    if not values:
        return Dist(0.0, 0.0, 0.0, 0.0, 0.0)
    return Dist(
        statistics.fmean(values) * 1000,
        statistics.pstdev(values) * 1000,
        statistics.median(values) * 1000,
        percentile(values, 90) * 1000,
        percentile(values, 99) * 1000,
    )


def calculate_stats(results: Sequence[RequestResult], duration: float) -> BenchStats:
    """The figures of one level, as vLLM's `calculate_metrics` computes them. A result
    without a usage count counts one token per streamed choice chunk."""
    ttfts: list[float] = []
    tpots: list[float] = []
    itls: list[float] = []
    e2els: list[float] = []
    total_input = total_output = completed = 0
    errors: list[str] = []
    for r in results:
        if not r.success:
            if r.error and len(errors) < 10:
                errors.append(r.error)
            continue
        output_len = r.output_tokens or (len(r.itl) + 1)
        total_input += r.prompt_len
        total_output += output_len
        if output_len > 1:
            tpots.append((r.latency - r.ttft) / (output_len - 1))
        itls.extend(r.itl)
        ttfts.append(r.ttft)
        e2els.append(r.latency)
        completed += 1
    dur = duration if duration > 0 else math.inf
    return BenchStats(
        completed=completed,
        failed=len(results) - completed,
        total_input=total_input,
        total_output=total_output,
        duration=duration,
        request_throughput=completed / dur,
        output_throughput=total_output / dur,
        total_token_throughput=(total_input + total_output) / dur,
        ttft_ms=dist_ms(ttfts),
        tpot_ms=dist_ms(tpots),
        itl_ms=dist_ms(itls),
        e2el_ms=dist_ms(e2els),
        errors=tuple(errors),
    )


def level_to_json(level: LevelResult) -> dict[str, Any]:
    data = asdict(level)
    data["request_rate"] = None if math.isinf(level.request_rate) else level.request_rate
    return data


def level_from_json(data: dict[str, Any]) -> LevelResult:
    s = dict(data["stats"])
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        s[key] = Dist(**s[key])
    s["errors"] = tuple(s.get("errors", ()))
    rate = data.get("request_rate")
    return LevelResult(data.get("concurrency"), math.inf if rate is None else float(rate),
                       BenchStats(**s))


@dataclass(frozen=True)
class BenchReport:
    """A saved benchmark (one JSON file): its settings and one result per level."""

    profile: str
    started: float
    config: dict[str, Any]
    levels: tuple[LevelResult, ...]
    server_run: str | None = None
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
