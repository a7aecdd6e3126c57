"""The metrics poller against the real tiny-model vLLM server."""

from __future__ import annotations

import socket

from vllmtui.servers.metrics import (
    MetricsPoller,
    table_cell,
)


def test_poller_reads_the_real_server_then_goes_stale(vllm_server) -> None:
    with MetricsPoller(vllm_server.base_url) as poller:
        first = poller.poll()
        second = poller.poll()
    assert first.ok and second.ok, (first.error, second.error)
    assert second.running is not None and second.generation_tps is not None
    assert second.kv_cache_usage is not None
    assert "kv_cache_size_tokens" in second.cache_info
    # the same tracker, now pointed at a port where nothing answers
    dead = MetricsPoller(f"http://127.0.0.1:{_closed_port()}")
    dead.tracker = poller.tracker
    stale = dead.poll()
    dead.close()
    assert stale.stale and not stale.ok
    assert "refused" in stale.error
    assert stale.running is None and stale.generation_tps is None and stale.ttft.p50 is None
    assert stale.last_ok_at == second.taken_at and stale.stale_for is not None
    assert stale.history["running"][-1] is None
    assert table_cell(stale) == "stale"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
