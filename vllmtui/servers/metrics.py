"""Live metrics from a vLLM server's `/metrics` (Prometheus text).

`parse_metrics` turns one scrape into a `Scrape` (sums over engines and models); a
`MetricsTracker` turns a stream of scrapes into `MetricsSnapshot`s: gauges as read, token
rates from counter deltas, latency percentiles from histogram deltas over the last minute, and
a ring of recent values for sparklines. `MetricsPoller` adds the HTTP and never raises: a
server that stops answering yields a snapshot marked `stale` that carries no numbers.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
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


@dataclass(frozen=True)
class Latency:
    """Percentiles (seconds) of one histogram over the window; None where nothing was seen."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None


NO_LATENCY = Latency(0, None, None, None, None)


def window_latency(now: Histogram | None, then: Histogram | None) -> Latency:
    """Latency over the observations between two scrapes of the same histogram."""
    if now is None:
        return NO_LATENCY
    delta = now.minus(then) if then is not None else now
    return Latency(
        int(delta.count), delta.mean, delta.quantile(0.5), delta.quantile(0.9), delta.quantile(0.99)
    )


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the metrics panel shows for one server at one moment.

    `ok` False means this poll failed: `stale` is then True, `error` says why, every number
    is None, and `last_ok_at` tells how old the last good reading is. Rates need two good
    readings: the first snapshot after a (re)start has `prompt_tps`/`generation_tps` None.
    `history` maps a series name (`generation_tps`, `prompt_tps`, `running`, `waiting`,
    `kv_cache_usage`) to its recent values, oldest first, None for a gap."""

    url: str
    taken_at: float
    ok: bool
    error: str = ""
    last_ok_at: float | None = None
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    prompt_tps: float | None = None
    generation_tps: float | None = None
    requests_total: float | None = None
    preemptions_total: float | None = None
    preemptions_per_min: float | None = None
    ttft: Latency = NO_LATENCY
    itl: Latency = NO_LATENCY
    e2el: Latency = NO_LATENCY
    queue: Latency = NO_LATENCY
    window_s: float = 0.0
    cache_info: dict[str, str] = field(default_factory=dict)
    history: dict[str, tuple[float | None, ...]] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        return not self.ok

    @property
    def stale_for(self) -> float | None:
        """Seconds since the last good reading (None if there never was one or this is good)."""
        if self.ok or self.last_ok_at is None:
            return None
        return max(0.0, self.taken_at - self.last_ok_at)


SERIES = ("generation_tps", "prompt_tps", "running", "waiting", "kv_cache_usage")


def _rate(now: float | None, then: float | None, dt: float) -> float | None:
    if now is None or then is None or dt <= 0:
        return None
    delta = now - then
    return (now if delta < 0 else delta) / dt  # a counter that went down: the server restarted


class MetricsTracker:
    """Turns successive scrapes of one server into snapshots. Not thread-safe: one poller
    (one worker) owns one tracker. `window` seconds of scrapes are kept for the latency
    percentiles; `history` samples for the sparklines."""

    def __init__(self, url: str = "", window: float = 60.0, history: int = 180):
        self.url = url
        self.window = window
        self._scrapes: deque[tuple[float, Scrape]] = deque()
        self._history: dict[str, deque[float | None]] = {k: deque(maxlen=history) for k in SERIES}
        self._last_ok_at: float | None = None

    def _history_view(self) -> dict[str, tuple[float | None, ...]]:
        return {k: tuple(v) for k, v in self._history.items()}

    def ingest(self, text: str, at: float | None = None) -> MetricsSnapshot:
        """Take one `/metrics` text read at time `at` (seconds, default now)."""
        now = time.time() if at is None else at
        scrape = parse_metrics(text)
        prev = self._scrapes[-1] if self._scrapes else None
        if prev is not None and now <= prev[0]:
            prev = None
        while self._scrapes and self._scrapes[0][0] < now - self.window:
            if len(self._scrapes) == 1:
                break
            self._scrapes.popleft()
        oldest = self._scrapes[0] if self._scrapes else None
        self._scrapes.append((now, scrape))
        self._last_ok_at = now
        c = scrape.counters
        prompt_tps = generation_tps = preempt = None
        if prev is not None:
            dt = now - prev[0]
            prompt_tps = _rate(c.get(PROMPT_TOKENS), prev[1].counters.get(PROMPT_TOKENS), dt)
            generation_tps = _rate(
                c.get(GENERATION_TOKENS), prev[1].counters.get(GENERATION_TOKENS), dt
            )
        window_s = 0.0
        lat: dict[str, Latency] = {}
        for name in HISTOGRAMS:
            then = oldest[1].histograms.get(name) if oldest is not None else None
            lat[name] = window_latency(scrape.histograms.get(name), then)
        if oldest is not None:
            window_s = now - oldest[0]
            rate = _rate(c.get(PREEMPTIONS), oldest[1].counters.get(PREEMPTIONS), window_s)
            preempt = rate * 60 if rate is not None else None
        values = {
            "generation_tps": generation_tps,
            "prompt_tps": prompt_tps,
            "running": scrape.gauges.get(RUNNING),
            "waiting": scrape.gauges.get(WAITING),
            "kv_cache_usage": scrape.kv_cache_usage,
        }
        for key, value in values.items():
            self._history[key].append(value)
        return MetricsSnapshot(
            url=self.url,
            taken_at=now,
            ok=True,
            last_ok_at=now,
            running=values["running"],
            waiting=values["waiting"],
            kv_cache_usage=scrape.kv_cache_usage,
            prompt_tps=prompt_tps,
            generation_tps=generation_tps,
            requests_total=c.get(REQUEST_SUCCESS),
            preemptions_total=c.get(PREEMPTIONS),
            preemptions_per_min=preempt,
            ttft=lat[TTFT],
            itl=lat[ITL],
            e2el=lat[E2EL],
            queue=lat[QUEUE],
            window_s=window_s,
            cache_info=dict(scrape.cache_info),
            history=self._history_view(),
        )

    def failed(self, error: str, at: float | None = None) -> MetricsSnapshot:
        """A poll that got no metrics: a stale snapshot without numbers. Rates restart
        from the next good reading (a gap must not be averaged into one rate)."""
        now = time.time() if at is None else at
        self._scrapes.clear()
        for series in self._history.values():
            series.append(None)
        return MetricsSnapshot(
            url=self.url, taken_at=now, ok=False, error=error, last_ok_at=self._last_ok_at,
            history=self._history_view(),
        )


class MetricsPoller:
    """Polls one server's `/metrics`. `poll()` blocks for at most `timeout` seconds and
    never raises: call it from a worker thread, render what it returns."""

    def __init__(self, base_url: str, timeout: float = 2.0, window: float = 60.0,
                 history: int = 180, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.tracker = MetricsTracker(self.base_url, window=window, history=history)
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self.timeout = timeout

    def poll(self) -> MetricsSnapshot:
        """Scrape once and return the snapshot (stale, with the reason, on any failure)."""
        try:
            response = self._client.get(self.base_url + "/metrics", timeout=self.timeout)
        except httpx.ConnectError:
            return self.tracker.failed("connection refused")
        except httpx.TimeoutException:
            return self.tracker.failed(f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return self.tracker.failed(str(exc) or type(exc).__name__)
        if response.status_code != 200:
            return self.tracker.failed(f"/metrics answered HTTP {response.status_code}")
        try:
            return self.tracker.ingest(response.text)
        except ValueError as exc:  # not Prometheus text (some other server on the port)
            return self.tracker.failed(f"/metrics is not Prometheus text: {exc}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> MetricsPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fmt_rate(value: float | None) -> str:
    """Tokens per second, compact: `-`, `12.3`, `845`, `12.1k`."""
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


def table_cell(snapshot: MetricsSnapshot | None) -> str:
    """The server table's compact column: `running/waiting generated-tok/s`, e.g. `3/1 845 tok/s`;
    `stale` when the last poll failed, `-` before the first poll."""
    if snapshot is None:
        return "-"
    if snapshot.stale:
        return "stale"
    running = "-" if snapshot.running is None else f"{snapshot.running:.0f}"
    waiting = "-" if snapshot.waiting is None else f"{snapshot.waiting:.0f}"
    return f"{running}/{waiting} {fmt_rate(snapshot.generation_tps)} tok/s"


def sparkline(values: Iterable[float | None], width: int | None = None) -> str:
    """Unicode block sparkline (plain text, no Rich): gaps as spaces, scaled 0..max."""
    blocks = "▁▂▃▄▅▆▇█"
    data = list(values)
    if width is not None:
        data = data[-width:]
    top = max((v for v in data if v is not None), default=0.0)
    out = []
    for v in data:
        if v is None:
            out.append(" ")
        elif top <= 0:
            out.append(blocks[0])
        else:
            out.append(blocks[min(len(blocks) - 1, int(v / top * (len(blocks) - 1) + 0.5))])
    return "".join(out)
