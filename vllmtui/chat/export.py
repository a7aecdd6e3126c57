"""A conversation as Markdown: what a user pastes into an issue or a notebook."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vllmtui.chat.conversation import Conversation, Entry


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _entry(entry: Entry, model: str) -> list[str]:
    message = entry.message
    role = entry.role
    content = message.get("content")
    text = content if isinstance(content, str) else ("" if content is None else json.dumps(content))
    if role == "user":
        return [f"**You:** {text}" if "\n" not in text else f"**You:**\n\n{text}"]
    if role == "tool":
        tool = entry.tool or {}
        label = f"**Tool result** ({tool.get('name', '?')}{', error' if tool.get('is_error') else ''}):"
        return [label, _fence(text)]
    lines = [f"**{model}:**", "", text] if text else [f"**{model}:**"]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        lines += ["", f"Tool call `{function.get('name')}`:", _fence(str(function.get("arguments")), "json")]
    if entry.stats is not None:
        lines += ["", f"*{entry.stats.line()}*"]
    return lines


def to_markdown(chat: Conversation) -> str:
    """The whole conversation: a heading, the settings, then each message in turn."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(chat.created))
    out = [f"# Chat with {chat.model} ({chat.target}), {when}", ""]
    if chat.settings:
        out += ["Settings: " + ", ".join(f"`{k}={v}`" for k, v in sorted(chat.settings.items())), ""]
    if chat.system:
        out += ["**System:**", "", chat.system, ""]
    for entry in chat.entries:
        out += _entry(entry, chat.model) + [""]
    return "\n".join(out).rstrip() + "\n"


def export_markdown(chat: Conversation, path: Path | None = None) -> Path:
    """Write the Markdown beside the JSONL (or to `path`); returns where it went."""
    if path is None:
        if chat.path is None:
            raise ValueError("an unsaved conversation needs a path to export to")
        path = chat.path.with_suffix(".md")
    path.write_text(to_markdown(chat), encoding="utf-8")
    return path
