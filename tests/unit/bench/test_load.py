"""Bench statistics on synthetic timings with known answers (defined as `vllm bench serve`
defines them), the SSE parsing and the config checks."""

from __future__ import annotations

import json

import pytest

from vllmtui.bench.load import BenchConfig, parse_stream
from vllmtui.bench.stats import Dist, RequestResult, calculate_stats, percentile
from vllmtui.core.errors import UsageError


def test_percentile_is_numpys_linear_interpolation() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([4, 1, 3, 2], 99) == pytest.approx(3.97)
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) == 0.0


def test_stats_known_answers() -> None:
    results = [
        # 4 tokens: TTFT 100 ms, then 3 gaps of 20 ms -> E2EL 160 ms, TPOT 60/3 = 20 ms
        RequestResult(True, prompt_len=10, output_tokens=4, ttft=0.1, itl=(0.02, 0.02, 0.02), latency=0.16),
        # 2 tokens: TTFT 300 ms, one gap of 50 ms -> TPOT 50 ms
        RequestResult(True, prompt_len=10, output_tokens=2, ttft=0.3, itl=(0.05,), latency=0.35),
        # 1 token: no TPOT (vLLM leaves single-token outputs out of TPOT)
        RequestResult(True, prompt_len=10, output_tokens=1, ttft=0.2, itl=(), latency=0.2),
        RequestResult(False, prompt_len=10, error="HTTP 500: boom"),
    ]
    s = calculate_stats(results, duration=2.0)
    assert (s.completed, s.failed, s.total_input, s.total_output) == (3, 1, 30, 7)
    assert s.request_throughput == 1.5
    assert s.output_throughput == 3.5
    assert s.total_token_throughput == 18.5
    assert s.ttft_ms.mean == pytest.approx(200.0)
    assert s.ttft_ms.median == pytest.approx(200.0)
    assert s.ttft_ms.p90 == pytest.approx(280.0)
    assert s.tpot_ms.mean == pytest.approx(35.0)
    assert s.tpot_ms.median == pytest.approx(35.0)
    assert s.itl_ms.median == pytest.approx(20.0)
    assert s.itl_ms.mean == pytest.approx((20 * 3 + 50) / 4)
    assert s.e2el_ms.median == pytest.approx(200.0)
    assert s.e2el_ms.p99 == pytest.approx(200 + (350 - 200) * 0.98)
    assert s.ttft_ms.std == pytest.approx(81.6496580927726)  # population std, as numpy
    assert s.errors == ("HTTP 500: boom",)


def test_no_success_gives_zeros_not_errors() -> None:
    s = calculate_stats([RequestResult(False, error="x")], duration=1.0)
    assert s.completed == 0 and s.failed == 1 and s.ttft_ms == Dist(0.0, 0.0, 0.0, 0.0, 0.0)


def _sse(doc: object) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def test_parse_stream_times_choice_chunks_and_reads_usage() -> None:
    tok = _sse({"choices": [{"text": "a"}]})
    last = _sse({"choices": [{"text": "", "finish_reason": "length"}]})  # empty text still counts
    usage = _sse({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    stream = tok + b": ping\n\n" + tok + last + usage + b"data: [DONE]\n\n"
    # arrivals split at awkward places: a message counts when its last byte arrived
    cut1, cut2 = len(tok) - 5, len(tok) + len(b": ping\n\n") + len(tok)
    chunks = [(10.5, stream[:cut1]), (10.6, stream[cut1:cut2]), (10.9, stream[cut2:])]
    r = parse_stream(10.0, chunks, prompt_len=99)
    assert r.success and r.output_tokens == 3 and r.prompt_len == 7
    assert r.ttft == pytest.approx(0.6)
    assert r.itl == pytest.approx((0.0, 0.3))
    assert r.latency == pytest.approx(0.9)


def test_parse_stream_without_tokens_is_a_failure() -> None:
    r = parse_stream(0.0, [(1.0, b"data: [DONE]\n\n")], prompt_len=5)
    assert not r.success and "without a token" in r.error


def test_config_checks_name_the_option() -> None:
    with pytest.raises(UsageError, match="--concurrency"):
        BenchConfig(base_url="http://x", model="m", concurrency=(0,)).check()
    with pytest.raises(UsageError, match="--request-rate"):
        BenchConfig(base_url="http://x", model="m", request_rate=0).check()
