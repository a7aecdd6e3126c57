"""A streamed chat completion read as it arrives: server-sent events, the text and the timing
of each chunk, and the checks on the whole stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from vllmtui.probes.results import ChatStats
from vllmtui.probes.spec import TextCallback
from vllmtui.probes.toolcheck import Check, short


def chat_checks(text: str, stats: ChatStats, error: str | None, max_tokens: int | None) -> tuple[Check, ...]:
    """Checks on a streamed chat: text arrived, the stream ended properly, usage counted."""
    checks = [
        Check("text streamed", bool(text), f"{stats.chunks} chunks: {short(text, 80)}"
              if text else f"no text in {stats.chunks} chunks"),
    ]
    if error:
        checks.append(Check("stream ended cleanly", False, error))
    else:
        checks.append(Check("stream ended cleanly", stats.finish_reason is not None,
                            f"finish_reason {stats.finish_reason}" if stats.finish_reason
                            else "the stream ended without a finish_reason"))
    if stats.finish_reason == "length":
        checks.append(Check("finished before max_tokens", False,
                            f"finish_reason length: cut off at max_tokens={max_tokens}", required=False))
    checks.append(Check("token counts reported", stats.completion_tokens is not None,
                        f"prompt {stats.prompt_tokens}, completion {stats.completion_tokens}"
                        if stats.completion_tokens is not None else "no usage in the stream",
                        required=False))
    return tuple(checks)


def chat_stats(acc: dict[str, Any], total: float) -> ChatStats:
    """The figures of a finished stream (`acc` as `take_chunk` filled it; `total` seconds)."""
    usage = acc["usage"] or {}
    completion = usage.get("completion_tokens")
    first = acc["first"]
    tps = None  # 1 / TPOT, as `vllm bench serve` defines it: (n - 1) / (E2EL - TTFT)
    if completion and completion > 1 and first is not None and total > first:
        tps = (completion - 1) / (total - first)
    elif completion and total > 0:
        tps = completion / total
    return ChatStats(
        time_to_first_token=None if first is None else round(first, 4),
        total_seconds=round(total, 4),
        tokens_per_second=None if tps is None else round(tps, 2),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=completion,
        finish_reason=acc["finish"],
        chunks=acc["chunks"],
    )


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of `data:` lines, until `data: [DONE]`; other lines are skipped."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def take_chunk(data: dict[str, Any], acc: dict[str, Any], began: float,
               on_text: TextCallback | None) -> None:
    """Add one event to `acc` (text pieces, first/last text time, usage, finish reason,
    chunk count, an error the server streamed); each text piece also goes to `on_text`."""
    if "error" in data:
        err = data["error"]
        acc["error"] = short(err.get("message") if isinstance(err, dict) else err)
        return
    acc["chunks"] += 1
    if data.get("usage"):
        acc["usage"] = data["usage"]
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        piece = delta.get("content") or ""
        if piece:
            now = time.monotonic() - began
            if acc["first"] is None:
                acc["first"] = now
            acc["last"] = now
            acc["text"].append(piece)
            if on_text is not None:
                on_text(piece)
        if choice.get("finish_reason"):
            acc["finish"] = choice["finish_reason"]
