"""`bench_server`, the TUI worker's one call, against the real tiny-model vLLM server."""

from __future__ import annotations


def test_bench_server_reports_progress_and_cancels(vllm_server) -> None:
    """The TUI worker's one call: progress arrives level by level; setting `cancel` ends the
    run early with the rest counted as cancelled, and nothing is saved."""
    import threading

    from vllmtui.bench.load import BenchOptions
    from vllmtui.bench.run import bench_server

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
