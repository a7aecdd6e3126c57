"""Chat against the real vLLM (CPU build, tiny random-weight model, hermes parser; the shared
session server): a streamed multi-turn conversation, a reply stopped mid-stream, a saved and
reopened conversation, and a tool offered from a real MCP server over stdio, whose call (whatever
the random weights make of it) is shown and checked against the tool's schema."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.support.helpers import ROOT, VllmServer
from vllmtui.chat import session as s
from vllmtui.chat.conversation import Conversation, open_conversation
from vllmtui.chat.target import chat_target
from vllmtui.chat.tools import open_tools
from vllmtui.probes.toolcheck import strict_json

MCP_SERVER = ROOT / "tests" / "support" / "mcp_server.py"


def _session(server: VllmServer, tmp_path: Path, **kw: Any) -> tuple[s.ChatSession, list[Any]]:
    found = chat_target(server.settings, server.name)
    events: list[Any] = []
    chat = Conversation(found.target.name, found.target.model, settings={**found.generation, "max_tokens": 12})
    chat.save_to(tmp_path)
    return s.ChatSession(found.target, chat, events=events.append, **kw), events


def test_streamed_multi_turn_saved_and_reopened(vllm_server: VllmServer, tmp_path: Path) -> None:
    session, events = _session(vllm_server, tmp_path)
    # random weights may end a reply at once with tokens that decode to nothing (seen on CI:
    # 3 tokens, content ''): a reply of 12 tokens is what this test is about
    session.conversation.set_settings({**session.conversation.settings, "ignore_eos": True})
    first = session.send("Say hello.")
    second = session.send("And once more, please.")
    session.close()
    for reply in (first, second):
        assert reply.error is None and reply.content and reply.stats.completion_tokens
        assert reply.stats.time_to_first_token is not None and reply.stats.tokens_per_second
    pieces = [e.text for e in events if isinstance(e, s.TextArrived)]
    assert len(pieces) > 2 and "".join(pieces) == first.content + second.content  # token by token
    assert second.stats.prompt_tokens > first.stats.prompt_tokens  # the history went along
    chat = session.conversation
    assert chat.path is not None
    again = open_conversation(chat.path)
    assert [e.role for e in again.entries] == ["user", "assistant", "user", "assistant"]
    assert again.messages() == chat.messages()
    assert again.entries[1].stats == first.stats


def test_stop_mid_stream_returns_at_once(vllm_server: VllmServer, tmp_path: Path) -> None:
    session, events = _session(vllm_server, tmp_path)
    session.conversation.set_settings({"max_tokens": 900, "ignore_eos": True})
    seen = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, s.TextArrived):
            seen.set()

    session.events = on_event
    stopped_at: list[float] = []

    def press_esc() -> None:
        seen.wait(60)
        stopped_at.append(time.monotonic())
        session.stop()

    threading.Thread(target=press_esc, daemon=True).start()
    reply = session.send("Count to a thousand.")
    returned = time.monotonic()
    session.close()
    assert reply.stats.stopped and reply.error is None
    assert returned - stopped_at[0] < 2.0
    assert len(reply.content) > 0
    assert session.conversation.entries[-1].stats is not None and session.conversation.entries[-1].stats.stopped


def test_a_tool_from_a_real_mcp_server_offered_to_the_real_model(vllm_server: VllmServer, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "mcp.yaml").write_text(yaml.safe_dump(
        {"mcpServers": {"weather": {"command": sys.executable, "args": [str(MCP_SERVER)]}}}))
    tools, problems = open_tools(replace(vllm_server.settings, config_dir=config))
    assert tools is not None and problems == []
    try:
        schema = next(t.parameters for t in tools.specs() if t.name == "get_weather")
        session, events = _session(vllm_server, tmp_path, tools=tools, approve=lambda call: "once",
                                   tool_choice="get_weather")
        session.conversation.set_settings({"max_tokens": 200})
        reply = session.send("What is the weather in Paris?")
        session.close()
    finally:
        tools.close()
    assert reply.error is None
    called = [e.call for e in events if isinstance(e, s.ToolCalled)]
    print("the model's calls:", [(c.name, c.arguments, c.problem) for c in called])
    assert called, "a named tool_choice must produce a call"
    for call in called:
        assert call.name == "get_weather"
        try:  # vllmtui's verdict agrees with the schema, whatever the weights produced
            jsonschema.validate(strict_json(call.arguments), schema)
            valid = True
        except (ValueError, jsonschema.ValidationError):
            valid = False
        assert call.matches == valid
    answered = [e for e in events if isinstance(e, s.ToolAnswered)]
    assert len(answered) == len(called)  # each call ran through MCP and its result went back
    roles = [e.role for e in session.conversation.entries]
    assert roles[:2] == ["user", "assistant"] and "tool" in roles and roles[-1] == "assistant"
