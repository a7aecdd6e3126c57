"""The slash commands of a plain-terminal chat (`/new`, `/system`, `/set`, ...): what each
does to the session, told through `say`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllmtui.chat.conversation import Conversation, find_conversation, list_conversations, open_conversation
from vllmtui.chat.export import export_markdown
from vllmtui.chat.session import ChatSession
from vllmtui.chat.tools import parse_settings
from vllmtui.core.errors import UsageError

Say = Callable[[str], Any]


def new_conversation(session: ChatSession, folder: Path | None) -> Conversation:
    """A fresh conversation with the same target, system prompt and settings."""
    old = session.conversation
    chat = Conversation(old.target, old.model, system=old.system, settings=dict(old.settings))
    if folder is not None and old.path is not None:
        chat.save_to(folder)
    session.conversation = chat
    session.always.clear()
    return chat


def run_command(text: str, session: ChatSession, found: Any, folders: list[Path], say: Say) -> str | None:
    """Run one `/command`; returns "quit" for /quit. A mistake is a UsageError."""
    name, _, rest = text.strip().partition(" ")
    rest = rest.strip()
    chat = session.conversation
    if name in ("/quit", "/exit", "/q"):
        return "quit"
    if name == "/new":
        chat = new_conversation(session, found.folder)
        say(f"new conversation {chat.id}")
    elif name == "/system":
        chat.set_system(rest or None)
        say(f"system prompt: {rest}" if rest else "system prompt cleared")
    elif name == "/set":
        chat.set_settings(parse_settings(chat.settings, rest))
        say(f"settings: {json.dumps(chat.settings)}")
    elif name == "/settings":
        say(f"settings: {json.dumps(chat.settings)}; system: {chat.system or '(none)'}")
    elif name == "/tools":
        specs = session.offered()
        say("\n".join(f"  {s.name} ({s.source}): {s.description}" for s in specs) or "no tools offered")
    elif name == "/list":
        saved = list_conversations(folders)
        say("\n".join(f"  {c.id}  {c.messages:3d} messages  {c.title}" for c in saved) or "none saved yet")
    elif name == "/open":
        session.conversation = open_conversation(find_conversation(folders, rest or "latest"))
        say(f"reopened {session.conversation.id}: {len(session.conversation.entries)} messages")
    elif name == "/export":
        if chat.path is None and not rest:
            raise UsageError("this conversation is not saved: /export FILE")
        say(f"written: {export_markdown(chat, Path(rest).expanduser() if rest else None)}")
    else:
        raise UsageError(f"{name}: unknown command; {', '.join(COMMANDS)}")
    return None


COMMANDS = ("/new", "/system", "/set", "/settings", "/tools", "/list", "/open", "/export", "/quit")
