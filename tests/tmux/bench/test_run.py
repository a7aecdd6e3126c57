"""`bench_server`, the TUI worker's one call, on a profile that is not running."""

from __future__ import annotations


def test_bench_server_says_what_failed(settings, write_profile) -> None:
    from vllmtui.bench.load import BenchOptions
    from vllmtui.bench.run import bench_server

    write_profile("idle", model="m", port=free_port_for_test())
    outcome = bench_server(settings, "idle", BenchOptions())
    assert outcome.error is not None and "not running" in outcome.error


def free_port_for_test() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
