"""Probe results: frozen dataclasses, saved as JSON in the server's run directory
(`probe-<kind>-<UTC>.json`) and read back per kind for the TUI's Probe tab and the
server table's "last probe" column."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vllmtui.probes.toolcheck import Check
from vllmtui.servers import runs

FILE_PREFIX = "probe-"


@dataclass(frozen=True)
class ChatStats:
    """Figures of one streamed chat: times in seconds from just before the POST."""

    time_to_first_token: float | None
    total_seconds: float
    tokens_per_second: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    chunks: int


@dataclass(frozen=True)
class ProbeStep:
    """One request of a probe and its checks; `error`/`hint` explain a failed request."""

    label: str
    ok: bool
    checks: tuple[Check, ...] = ()
    error: str = ""
    hint: str = ""
    status_code: int | None = None
    seconds: float | None = None
    received: str = ""
    message: dict[str, Any] | None = None  # the reply's message and finish_reason, as sent


@dataclass(frozen=True)
class ProbeResult:
    """A whole probe: its steps, and for chat the streamed text and figures."""

    kind: str
    server: str
    base_url: str
    model: str
    started_at: float
    seconds: float
    ok: bool
    steps: tuple[ProbeStep, ...]
    text: str = ""
    chat: ChatStats | None = None
    cancelled: bool = False
    saved_to: str | None = None

    @property
    def failure(self) -> ProbeStep | None:
        """The first step that failed, if any."""
        return next((s for s in self.steps if not s.ok), None)

    def summary(self) -> str:
        """One line: `chat ok: 31 tokens, ttft 0.05 s, 80.1 tok/s` / `tools FAILED: ...`."""
        if self.cancelled:
            return f"{self.kind} cancelled after {self.seconds:.1f} s"
        if self.ok:
            if self.chat is not None:
                c = self.chat
                tps = f", {c.tokens_per_second:.1f} tok/s" if c.tokens_per_second else ""
                ttft = f"ttft {c.time_to_first_token:.2f} s" if c.time_to_first_token else "no ttft"
                return f"chat ok: {c.completion_tokens} tokens in {c.total_seconds:.2f} s, {ttft}{tps}"
            checks = [c for s in self.steps for c in s.checks]
            warns = sum(1 for c in checks if c.outcome == "warn")
            return f"{self.kind} ok: {len(checks)} checks passed" + (f", {warns} warnings" if warns else "")
        step = self.failure
        if step is None:
            return f"{self.kind} FAILED"
        if step.error:
            return f"{self.kind} FAILED at {step.label}: {step.error}"
        failed = [c.name for c in step.checks if c.outcome == "fail"]
        return f"{self.kind} FAILED at {step.label}: {', '.join(failed)}"

    def short_label(self) -> str:
        """A few characters for a table column: `chat ok`, `tools FAIL`."""
        return f"{self.kind} {'cancelled' if self.cancelled else 'ok' if self.ok else 'FAIL'}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        steps = tuple(
            ProbeStep(**{**s, "checks": tuple(Check(**c) for c in s.get("checks", ()))})
            for s in data.get("steps", ())
        )
        chat = ChatStats(**data["chat"]) if data.get("chat") else None
        return cls(**{**data, "steps": steps, "chat": chat})


def save_result(run_dir: Path, result: ProbeResult) -> ProbeResult:
    """Write `probe-<kind>-<UTC>.json` into the run directory; returns it with `saved_to`."""
    stamp = datetime.fromtimestamp(result.started_at, UTC).strftime(runs.TIME_FORMAT)
    path = run_dir / f"{FILE_PREFIX}{result.kind}-{stamp}.json"
    result = replace(result, saved_to=str(path))
    runs.write_json(path, result.to_json())
    return result


def probe_results(run_dir: Path) -> list[ProbeResult]:
    """Every probe result saved in a run directory, oldest first (unreadable files skipped)."""
    out = []
    for path in sorted(run_dir.glob(f"{FILE_PREFIX}*.json")) if run_dir.is_dir() else []:
        try:
            out.append(ProbeResult.from_json(json.loads(path.read_text())))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    out.sort(key=lambda r: r.started_at)
    return out


def latest_probes(run_dir: Path | None) -> dict[str, ProbeResult]:
    """The newest result per probe kind in a run (for the TUI's Probe tab)."""
    latest: dict[str, ProbeResult] = {}
    for result in probe_results(run_dir) if run_dir else []:
        latest[result.kind] = result
    return latest


def last_probe(run_dir: Path | None) -> ProbeResult | None:
    """The newest probe of any kind in a run (the server table's "last probe" column)."""
    results = probe_results(run_dir) if run_dir else []
    return results[-1] if results else None
