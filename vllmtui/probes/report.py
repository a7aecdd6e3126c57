"""Plain-text report of a probe result (for the CLI): one line per check, PASS/FAIL/WARN,
with what was received, then the figures and the fix for a failed request."""

from __future__ import annotations

from vllmtui.probes.results import ProbeResult

MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN"}


def report_lines(result: ProbeResult) -> list[str]:
    """The lines `vllmtui probe` prints after a probe (the streamed text comes before)."""
    lines = [f"== {result.kind} probe of {result.server} ({result.model} at {result.base_url})"]
    for step in result.steps:
        took = f" {step.seconds:.2f} s" if step.seconds is not None else ""
        code = f" HTTP {step.status_code}" if step.status_code else ""
        lines.append(f"-- {step.label}:{code}{took}")
        for check in step.checks:
            lines.append(f"   {MARK[check.outcome]}  {check.name}: {check.detail}")
        if step.error:
            lines.append(f"   FAIL  {step.error}")
            if step.received and step.received not in step.error:
                lines.append(f"         received: {step.received}")
            if step.hint:
                lines.append(f"   fix:  {step.hint}")
    if result.chat is not None:
        c = result.chat
        ttft = f"{c.time_to_first_token:.3f} s" if c.time_to_first_token is not None else "-"
        tps = f"{c.tokens_per_second:.1f}" if c.tokens_per_second is not None else "-"
        lines.append(
            f"   time to first token {ttft}, {tps} tokens/s, total {c.total_seconds:.3f} s,"
            f" tokens prompt {c.prompt_tokens} / completion {c.completion_tokens},"
            f" finish_reason {c.finish_reason}"
        )
    lines.append(("ok: " if result.ok else "") + result.summary())
    if result.saved_to:
        lines.append(f"saved: {result.saved_to}")
    return lines
