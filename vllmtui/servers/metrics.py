"""Live metrics from a vLLM server's `/metrics` (Prometheus text).

`prometheus.parse_metrics` turns one scrape into a `Scrape` (sums over engines and models); a
`MetricsTracker` turns a stream of scrapes into `MetricsSnapshot`s: gauges as read, token
rates from counter deltas, latency percentiles from histogram deltas over the last minute, and
a ring of recent values for sparklines. `MetricsPoller` adds the HTTP and never raises: a
server that stops answering yields a snapshot marked `stale` that carries no numbers.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import httpx

from vllmtui.servers.prometheus import (
    E2EL,
    GENERATION_TOKENS,
    HISTOGRAMS,
    ITL,
    PREEMPTIONS,
    PROMPT_TOKENS,
    QUEUE,
    REQUEST_SUCCESS,
    RUNNING,
    TTFT,
    WAITING,
    Histogram,
    Scrape,
    parse_metrics,
)


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
