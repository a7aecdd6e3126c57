"""Bench statistics on synthetic timings with known answers (defined as `vllm bench serve`
defines them), the SSE parsing, saved reports, and one end-to-end bench against the real
tiny-model vLLM server through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.bench import report as bench_report
from vllmtui.bench.load import (
    BenchConfig,
    BenchStats,
    Dist,
    LevelResult,
    RequestResult,
    calculate_stats,
    parse_stream,
    percentile,
)
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.servers.metrics import GENERATION_TOKENS, parse_metrics

ROOT = Path(__file__).resolve().parent.parent


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


def test_end_to_end_bench_against_real_vllm(vllm_server, tmp_path: Path) -> None:
    """`vllmtui bench` on the real tiny server: token-exact prompts, exact output lengths
    (ignore_eos), the counts agree with the server's own counters, the JSON lands in the
    server's run directory, and --compare reads it back."""
    import httpx

    settings = vllm_server.settings
    env = dict(os.environ, VLLMTUI_TMUX_SOCKET=str(settings.tmux_socket),
               VLLMTUI_STATE_DIR=str(settings.state_dir), VLLMTUI_CONFIG_DIR=str(settings.config_dir),
               VLLMTUI_PROFILES=str(settings.profiles_dirs[0]))

    def generated() -> float:
        text = httpx.get(vllm_server.base_url + "/metrics", timeout=5).text
        return parse_metrics(text).counters[GENERATION_TOKENS]

    before = generated()
    cmd = [sys.executable, "-m", "vllmtui", "bench", vllm_server.name, "--input-len", "32",
           "--output-len", "8", "--num-prompts", "6", "--concurrency", "1,3", "--warmups", "1", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert [lv["concurrency"] for lv in out["levels"]] == [1, 3]
    for lv in out["levels"]:
        s = lv["stats"]
        assert (s["completed"], s["failed"]) == (6, 0), s["errors"]
        assert s["total_input"] == 6 * 32  # token-exact prompts, as the server counted them
        assert s["total_output"] == 6 * 8  # ignore_eos: every request ran to max_tokens
        assert s["ttft_ms"]["median"] > 0 and s["e2el_ms"]["median"] >= s["ttft_ms"]["median"]
        assert s["request_throughput"] > 0
    # what the server generated: 2 levels x (1 warm-up + 6 measured) x 8 tokens
    assert generated() - before == 2 * 7 * 8
    saved = Path(out["saved"])
    assert saved.parent.parent.parent == settings.runs_dir and saved.name.startswith("bench-")
    proc = subprocess.run([sys.executable, "-m", "vllmtui", "bench", vllm_server.name, "--compare"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "out tok/s" in proc.stdout and "concurrency (log2)" in proc.stdout


def test_bench_server_reports_progress_and_cancels(vllm_server) -> None:
    """The TUI worker's one call: progress arrives level by level; setting `cancel` ends the
    run early with the rest counted as cancelled, and nothing is saved."""
    import threading

    from vllmtui.bench.run import BenchOptions, bench_server

    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.phase == "run" and p.done >= 3:
            cancel.set()

    options = BenchOptions(input_len=16, output_len=4, num_prompts=40, concurrency=(1, 2), warmups=0)
    outcome = bench_server(vllm_server.settings, vllm_server.name, options, progress, cancel)
    assert outcome.error is None and outcome.cancelled and outcome.path is None
    assert len(outcome.levels) == 1  # the second level never started
    stats = outcome.levels[0].stats
    assert stats.completed >= 3 and stats.failed > 0 and stats.completed + stats.failed == 40
    assert all("cancelled" in e for e in stats.errors)
    assert [p.phase for p in seen][:2] == ["prompts", "run"]


def test_bench_server_says_what_failed(settings, write_profile) -> None:
    from vllmtui.bench.run import BenchOptions, bench_server

    write_profile("idle", model="m", port=free_port_for_test())
    outcome = bench_server(settings, "idle", BenchOptions())
    assert outcome.error is not None and "not running" in outcome.error


def free_port_for_test() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
