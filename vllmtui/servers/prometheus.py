"""Prometheus text from a vLLM server's `/metrics`, parsed into one `Scrape`.

Only the families vllmtui reads are parsed (vLLM exports about 55), each summed over its
label sets (engines, models); histograms keep their cumulative buckets for the percentiles
that `metrics` computes from deltas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
REQUEST_SUCCESS = "vllm:request_success_total"
PREEMPTIONS = "vllm:num_preemptions_total"
CACHE_INFO = "vllm:cache_config_info"
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
E2EL = "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"
HISTOGRAMS = (TTFT, ITL, E2EL, QUEUE)
COUNTERS = (PROMPT_TOKENS, GENERATION_TOKENS, REQUEST_SUCCESS, PREEMPTIONS)
GAUGES = (RUNNING, WAITING)
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Histogram:
    """A cumulative Prometheus histogram: `buckets` are (upper bound, cumulative count)
    sorted by bound, the last one +Inf."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    total: float

    def minus(self, older: Histogram) -> Histogram:
        """The observations made since `older` (this histogram, if the server restarted)."""
        if older.count > self.count or len(older.buckets) != len(self.buckets):
            return self
        old = dict(older.buckets)
        return Histogram(
            tuple((le, c - old.get(le, 0.0)) for le, c in self.buckets),
            self.count - older.count,
            self.total - older.total,
        )

    def quantile(self, q: float) -> float | None:
        """Prometheus `histogram_quantile`: linear interpolation inside the bucket that holds
        the q-th observation; None without observations; the highest finite bound when it
        falls in the +Inf bucket."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank and cumulative > lower_count:
                if math.isinf(le):
                    return lower_bound
                return lower_bound + (le - lower_bound) * (rank - lower_count) / (
                    cumulative - lower_count
                )
            lower_bound, lower_count = (le if not math.isinf(le) else lower_bound), cumulative
        return lower_bound

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None


@dataclass(frozen=True)
class Scrape:
    """One parsed `/metrics` text, summed over every label set (engines, models)."""

    gauges: dict[str, float]
    counters: dict[str, float]
    histograms: dict[str, Histogram]
    kv_cache_usage: float | None
    cache_info: dict[str, str]


FAMILIES = frozenset({*GAUGES, KV_USAGE, CACHE_INFO, *(c.removesuffix("_total") for c in COUNTERS),
                      *HISTOGRAMS})
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in FAMILIES:
            return name[: -len(suffix)]
    return name


def _wanted_lines(text: str) -> str:
    """Only the families this module reads (a few KiB of vLLM's ~55): the parser's cost is
    per line, and a poll of many servers every second should stay cheap."""
    keep = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) > 2 and parts[2] in FAMILIES:
                keep.append(line)
        elif _family(line.split("{", 1)[0].split(" ", 1)[0]) in FAMILIES:
            keep.append(line)
    return "\n".join(keep) + "\n"


def parse_metrics(text: str) -> Scrape:
    """Parse Prometheus text with `prometheus_client`'s parser (after dropping the lines of
    families not read here). A family that is missing is simply absent from the result."""
    gauges: dict[str, float] = {}
    counters: dict[str, float] = {}
    kv: list[float] = []
    cache_info: dict[str, str] = {}
    buckets: dict[str, dict[float, float]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(_wanted_lines(text)):
        for sample in family.samples:
            name = sample.name
            if name in GAUGES:
                gauges[name] = gauges.get(name, 0.0) + sample.value
            elif name in COUNTERS:
                counters[name] = counters.get(name, 0.0) + sample.value
            elif name == KV_USAGE:
                kv.append(sample.value)
            elif name == CACHE_INFO:
                cache_info.update(sample.labels)
            elif family.name in HISTOGRAMS:
                base = family.name
                if name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    per = buckets.setdefault(base, {})
                    per[le] = per.get(le, 0.0) + sample.value
                elif name.endswith("_count"):
                    counts[base] = counts.get(base, 0.0) + sample.value
                elif name.endswith("_sum"):
                    sums[base] = sums.get(base, 0.0) + sample.value
    histograms = {
        base: Histogram(tuple(sorted(per.items())), counts.get(base, 0.0), sums.get(base, 0.0))
        for base, per in buckets.items()
    }
    return Scrape(gauges, counters, histograms, sum(kv) / len(kv) if kv else None, cache_info)
