"""Probe results for the Probe tab's tests: one recorded tool-call reply (tests/data/probe)
and a chat result."""

from __future__ import annotations

import json

from tests.support.helpers import DATA as TESTS_DATA
from vllmtui.probes.runner import ChatStats, ProbeResult, ProbeStep
from vllmtui.probes.toolcheck import BUILTIN_TOOLS, check_tool_reply

DATA = TESTS_DATA / "probe"


def tools_result(ok: bool = False) -> ProbeResult:
    reply = json.loads((DATA / "vllm-0.32-tools-required-number-args.json").read_text())
    checks = check_tool_reply(reply, BUILTIN_TOOLS, "required")
    step = ProbeStep("tool_choice=required", all(c.passed for c in checks), checks, status_code=200, seconds=0.4)
    refused = ProbeStep("tool_choice=auto", False, error="400: tool calls are not enabled [x]",
                        hint="add `enable_auto_tool_choice: true`", status_code=400)
    return ProbeResult("tools", "tiny", "http://127.0.0.1:8100", "tiny", 1000.0, 1.2, ok, (refused, step))


def chat_result() -> ProbeResult:
    step = ProbeStep("chat (streamed)", True, status_code=200, seconds=0.15)
    return ProbeResult("chat", "tiny", "http://127.0.0.1:8100", "tiny", 990.0, 0.2, True, (step,),
                       text="[bold]not markup[/bold]\x1b[31m", chat=ChatStats(0.019, 0.153, 337.6, 34, 46, "stop", 31))
