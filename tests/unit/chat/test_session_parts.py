"""The pure parts of a chat: a stream's events (text, tool calls in pieces, usage), a call
checked against its tool's schema, settings typed in the session."""

from __future__ import annotations

import pytest

from vllmtui.chat.reply import _Stream
from vllmtui.chat.session import check_call
from vllmtui.chat.tools import parse_settings
from vllmtui.core.errors import UsageError
from vllmtui.probes.toolcheck import BUILTIN_TOOLS

TOOLS = {t.name: t for t in BUILTIN_TOOLS}


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_joins_text_and_tool_call_pieces_by_index() -> None:
    pieces: list[str] = []
    stream = _Stream(pieces.append)
    stream.take(_chunk({"role": "assistant", "content": ""}))
    stream.take(_chunk({"content": "Let me "}))
    stream.take(_chunk({"content": "check."}))
    stream.take(_chunk({"tool_calls": [{"index": 0, "id": "chatcmpl-tool-1", "type": "function",
                                        "function": {"name": "get_weather", "arguments": ""}}]}))
    stream.take(_chunk({"tool_calls": [{"index": 1, "id": "t2", "function": {"name": "get_time"}}]}))
    stream.take(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location": '}}]}))
    stream.take(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Oslo"}}'}}]}))
    stream.take(_chunk({}, "tool_calls"))
    stream.take({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 11}})
    reply = stream.reply(stopped=False)
    assert pieces == ["Let me ", "check."]
    assert reply.content == "Let me check."
    assert [c["function"] for c in reply.tool_calls] == [
        {"name": "get_weather", "arguments": '{"location": {"city": "Oslo"}}'},
        {"name": "get_time", "arguments": ""}]
    assert [c["id"] for c in reply.tool_calls] == ["chatcmpl-tool-1", "t2"]
    assert reply.stats.completion_tokens == 11 and reply.stats.prompt_tokens == 30
    assert reply.stats.finish_reason == "tool_calls" and reply.stats.time_to_first_token is not None
    assert reply.message()["tool_calls"] == reply.tool_calls


def test_stream_error_event_is_kept() -> None:
    stream = _Stream(None)
    stream.take({"error": {"message": "engine died", "code": 500}})
    assert stream.reply(stopped=True).error == "engine died"
    assert stream.reply(stopped=True).stats.stopped


@pytest.mark.parametrize(("arguments", "problem"), [
    ('{"location": {"city": "Paris"}, "days": 3}', None),
    ("", "arguments: 'location' is a required property"),
    ("true", "the arguments are true, not an object"),
    ('{"location": {"city": "Paris"}, "days": 9}', "days: 9 is greater than the maximum of 7"),
    ("{bad", "the arguments are not JSON"),
    ('{"location": {"city": NaN}}', "the arguments are not JSON"),
])
def test_a_call_is_checked_against_its_schema(arguments: str, problem: str | None) -> None:
    call = check_call({"id": "x", "function": {"name": "get_weather", "arguments": arguments}}, TOOLS)
    if problem is None:
        assert call.matches and call.parsed == {"location": {"city": "Paris"}, "days": 3}
    else:
        assert not call.matches and call.problem is not None and problem in call.problem


def test_an_unknown_tool_names_the_offered_ones() -> None:
    call = check_call({"id": "x", "function": {"name": "rm_rf", "arguments": "{}"}}, TOOLS)
    assert not call.known and "no tool named 'rm_rf'" in (call.problem or "")
    assert "get_weather" in (call.problem or "")


def test_settings_typed_in_the_session() -> None:
    assert parse_settings({"temperature": 0.7}, "temperature=0.2 max_tokens=50") == {
        "temperature": 0.2, "max_tokens": 50}
    assert parse_settings({"temperature": 0.7, "top_p": 0.9}, "top_p=") == {"temperature": 0.7}
    with pytest.raises(UsageError, match="temperature: .*out of range"):
        parse_settings({}, "temperature=9")
    with pytest.raises(UsageError, match="not a generation setting"):
        parse_settings({}, "temprature=1")
    with pytest.raises(UsageError, match="write NAME=VALUE"):
        parse_settings({}, "temperature")
    with pytest.raises(UsageError, match="max_tokens"):
        parse_settings({}, "max_tokens=lots")
