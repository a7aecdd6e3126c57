"""The probe runner: the chat stream (tests/data/probe: recorded from the real CPU server),
the chat checks, results saved and read back, and a real socket that never answers."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from tests.support.helpers import DATA as TESTS_DATA
from vllmtui.probes.report import report_lines
from vllmtui.probes.runner import (
    ChatStats,
    ProbeResult,
    ProbeStep,
    last_probe,
    latest_probes,
    run_probe,
    save_result,
)
from vllmtui.probes.spec import ProbeOptions, ProbeTarget
from vllmtui.probes.stream import chat_checks, sse_events, take_chunk
from vllmtui.probes.toolcheck import Check

DATA = TESTS_DATA / "probe"


def by_name(checks: tuple[Check, ...]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_sse_chunks_accumulate_text_usage_and_finish() -> None:
    lines = (DATA / "vllm-0.32-chat-stream.txt").read_text().splitlines()
    acc: dict[str, Any] = {"text": [], "first": None, "last": None, "usage": None,
                           "finish": None, "chunks": 0, "error": None}
    pieces: list[str] = []
    for data in sse_events(iter(lines)):
        take_chunk(data, acc, 0.0, pieces.append)
    assert "".join(pieces) == "".join(acc["text"]) != ""
    assert acc["finish"] in ("stop", "length")
    assert acc["usage"]["completion_tokens"] >= 1


def test_chat_checks() -> None:
    stats = ChatStats(0.01, 0.2, 50.0, 10, 8, "length", 9)
    checks = by_name(chat_checks("hi", stats, None, 8))
    assert checks["text streamed"].passed and checks["finished before max_tokens"].outcome == "warn"
    broken = by_name(chat_checks("", ChatStats(None, 0.2, None, None, None, None, 1), None, 8))
    assert broken["text streamed"].outcome == "fail" and broken["stream ended cleanly"].outcome == "fail"


def _result(kind: str, at: float, ok: bool = True) -> ProbeResult:
    step = ProbeStep("x", ok, (Check("c", ok, "d"),), status_code=200, seconds=0.1)
    return ProbeResult(kind, "tiny", "http://h:1", "tiny", at, 0.1, ok, (step,))


def test_results_round_trip_through_json_and_latest_per_kind(tmp_path: Path) -> None:
    first = save_result(tmp_path, _result("tools", 1000.0, ok=False))
    save_result(tmp_path, _result("tools", 2000.0))
    chat = save_result(tmp_path, replace_chat(_result("chat", 1500.0)))
    latest = latest_probes(tmp_path)
    assert set(latest) == {"tools", "chat"}
    assert latest["tools"].started_at == 2000.0 and latest["tools"].ok
    assert latest["chat"] == chat
    assert last_probe(tmp_path).started_at == 2000.0  # type: ignore[union-attr]
    assert Path(first.saved_to or "").name.startswith("probe-tools-")
    assert latest_probes(None) == {} and last_probe(tmp_path / "missing") is None
    assert any("FAIL" in line for line in report_lines(first))


def replace_chat(result: ProbeResult) -> ProbeResult:
    from dataclasses import replace

    return replace(result, chat=ChatStats(0.05, 0.5, 40.0, 12, 20, "stop", 21), text="hello")


def test_cancel_returns_at_once_and_read_timeout_bounds_a_silent_server() -> None:
    """A real listening socket that never answers (what a wedged server looks like)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        target = ProbeTarget("silent", f"http://127.0.0.1:{port}", "m")
        cancel = threading.Event()
        box: dict[str, ProbeResult] = {}
        worker = threading.Thread(target=lambda: box.setdefault("r", run_probe("chat", target, cancel=cancel)))
        worker.start()
        conn, _ = listener.accept()  # the probe's request arrived and waits for an answer
        cancel.set()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert box["r"].cancelled and not box["r"].ok and "cancelled" in box["r"].summary()
        conn.close()
        timed = run_probe("chat", target, ProbeOptions(read_timeout=0.5))
        assert not timed.ok and "sent nothing within the read timeout" in timed.steps[-1].error
