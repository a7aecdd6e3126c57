"""Conversations: saved line by line as they happen, read back (also after a crash mid-line),
listed newest first, found by id or prefix, exported as Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vllmtui.chat.conversation import (
    Conversation,
    Entry,
    ReplyStats,
    find_conversation,
    list_conversations,
    open_conversation,
)
from vllmtui.chat.export import export_markdown, to_markdown
from vllmtui.core.errors import UsageError


def _chat(folder: Path, text: str = "hello there", created: float = 1000.0) -> Conversation:
    chat = Conversation("tiny", "tiny-model", system="be brief", settings={"temperature": 0.5},
                        created=created)
    chat.save_to(folder)
    chat.add(Entry({"role": "user", "content": text}))
    chat.add(Entry({"role": "assistant", "content": "**hi**", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        ReplyStats(completion_tokens=12, time_to_first_token=0.25, tokens_per_second=40.0, seconds=0.6,
                   finish_reason="tool_calls")))
    chat.add(Entry({"role": "tool", "tool_call_id": "c1", "content": "Paris: sunny"},
                   tool={"name": "get_weather", "matches": True, "is_error": False, "answer": "once"}))
    return chat


def test_saved_as_it_happens_and_read_back(tmp_path: Path) -> None:
    chat = _chat(tmp_path)
    chat.set_system("be verbose")
    chat.set_settings({"temperature": 0.1})
    assert chat.path is not None
    lines = [json.loads(line) for line in chat.path.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["meta", "message", "message", "message", "system", "settings"]
    again = open_conversation(chat.path)
    assert again.messages() == chat.messages()
    assert again.messages()[0] == {"role": "system", "content": "be verbose"}
    assert again.settings == {"temperature": 0.1}
    assert again.entries[1].stats == chat.entries[1].stats
    assert again.entries[2].tool == {"name": "get_weather", "matches": True, "is_error": False, "answer": "once"}
    assert again.title == "hello there" and again.damaged == 0
    assert oct(chat.path.stat().st_mode & 0o777) == "0o600"


def test_a_line_cut_by_a_crash_is_skipped_not_fatal(tmp_path: Path) -> None:
    chat = _chat(tmp_path)
    assert chat.path is not None
    with chat.path.open("a") as f:
        f.write('{"type": "message", "message": {"role": "user", "cont')
    again = open_conversation(chat.path)
    assert len(again.entries) == 3 and again.damaged == 1
    again.add(Entry({"role": "user", "content": "more"}))  # appends after the damaged line
    assert open_conversation(chat.path).entries[-1].message["content"] == "more"


def test_not_a_conversation_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"type": "message"}\n')
    with pytest.raises(UsageError, match="not a vllmtui conversation"):
        open_conversation(bad)
    with pytest.raises(UsageError, match="cannot read"):
        open_conversation(tmp_path / "missing.jsonl")


def test_listed_newest_first_and_found_by_id_prefix_or_latest(tmp_path: Path) -> None:
    old = _chat(tmp_path / "run1", "first question", created=1000)
    new = _chat(tmp_path / "run2", "second question", created=2000)
    (tmp_path / "run2" / "junk.jsonl").write_text("not json\n")
    saved = list_conversations([tmp_path / "run1", tmp_path / "run2", tmp_path / "nowhere"])
    assert [c.id for c in saved] == [new.id, old.id]
    assert saved[0].title == "second question" and saved[0].messages == 3
    folders = [tmp_path / "run1", tmp_path / "run2"]
    assert find_conversation(folders, "latest") == new.path
    assert find_conversation(folders, old.id) == old.path
    assert find_conversation(folders, str(old.path)) == old.path
    with pytest.raises(UsageError, match="is not a saved conversation"):
        find_conversation(folders, "nope")


def test_markdown_export(tmp_path: Path) -> None:
    chat = _chat(tmp_path, "what is ```this```?")
    text = to_markdown(chat)
    assert text.startswith("# Chat with tiny-model (tiny)")
    assert "**System:**\n\nbe brief" in text
    assert "**You:** what is ```this```?" in text
    assert "**tiny-model:**\n\n**hi**" in text
    assert 'Tool call `get_weather`:\n```json\n{"city": "Paris"}\n```' in text
    assert "*12 tokens · TTFT 0.25 s · 40.0 tok/s · 0.6 s · finish_reason tool_calls*" in text
    assert "**Tool result** (get_weather):\n```\nParis: sunny\n```" in text
    path = export_markdown(chat)
    assert path.suffix == ".md" and path.read_text() == text
