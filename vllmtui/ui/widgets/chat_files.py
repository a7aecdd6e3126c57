"""The Chat tab's saved conversations: a new one (Ctrl+N), a saved one picked and reopened
(Ctrl+O), the shown one written as Markdown (Ctrl+S). A widget with nothing to show: it runs
the file work in its own workers, asks in a picker, says how it went in notifications and
posts `ChatFiles.ConversationOpened` up for the panel to show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message
from textual.widget import Widget

from vllmtui.chat.commands import new_conversation
from vllmtui.chat.conversation import Conversation, SavedChat, list_conversations, open_conversation
from vllmtui.chat.export import export_markdown
from vllmtui.chat.target import ChatTarget, chat_history
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.ui.screens.dialogs import PickDialog
from vllmtui.ui.widgets.chat_state import ChatKey, ChatState
from vllmtui.ui.work import worker


def saved_label(saved: SavedChat) -> str:
    """One line of the picker: `20261203-183022-3fa2    4 messages  the first message`."""
    return f"{saved.id}  {saved.messages:3d} messages  {saved.title}"


class ChatFiles(Widget):
    """Runs the Chat tab's conversation keys for the chat it is handed."""

    DEFAULT_CSS = "ChatFiles { display: none; }"

    @dataclass
    class ConversationOpened(Message):
        """Chat `key` goes on with `conversation` (new or reopened); `note` is said under it."""

        key: ChatKey
        conversation: Conversation
        note: str

    @dataclass
    class SavedListed(Message):
        """The saved conversations of chat `key`, newest first, to pick one from."""

        key: ChatKey
        saved: list[SavedChat]

    @dataclass
    class Exported(Message):
        """A conversation was written as Markdown at `path`."""

        path: Path

    def new(self, chat: ChatState) -> None:
        """A new conversation with the same server, system prompt and settings."""
        self.renew(chat)

    def pick(self, settings: Settings, chat: ChatState) -> None:
        """List the chat's saved conversations, and reopen the one picked."""
        self.list_saved(settings, chat.key, chat.found)

    def export(self, conversation: Conversation | None) -> None:
        """Write `conversation` as Markdown beside its JSONL file."""
        if conversation is None or conversation.path is None:
            self.notify("nothing to export yet: a conversation is saved from its first message",
                        severity="warning")
        else:
            self.write_markdown(conversation)

    @worker("starting a new conversation", group="chat-files")
    def renew(self, chat: ChatState) -> None:
        old = chat.conversation
        if chat.session is not None and chat.found is not None:
            fresh = new_conversation(chat.session, chat.found.folder)
        elif old is not None:
            fresh = Conversation(old.target, old.model, system=old.system, settings=dict(old.settings))
        else:
            return
        self.post_message(self.ConversationOpened(chat.key, fresh, "new conversation"))

    @worker("listing the saved conversations", group="chat-files")
    def list_saved(self, settings: Settings, key: ChatKey, found: ChatTarget | None) -> None:
        try:
            folders = list(found.history if found is not None else chat_history(settings, key[0], key[1]))
        except VllmtuiError as exc:
            self.notify(str(exc), severity="error")
            return
        self.post_message(self.SavedListed(key, list_conversations(folders)))

    def on_chat_files_saved_listed(self, message: ChatFiles.SavedListed) -> None:
        message.stop()
        key, saved = message.key, message.saved
        if not saved:
            self.notify(f"no saved conversations of {key[0]}{' through the gateway' if key[1] else ''} yet")
            return
        labels = [saved_label(c) for c in saved]

        def picked(label: str | None) -> None:
            if label is not None:
                self.reopen(key, saved[labels.index(label)].path)

        self.app.push_screen(PickDialog(f"Reopen a conversation with {key[0]}", labels), picked)

    @worker("reopening a conversation", group="chat-files")
    def reopen(self, key: ChatKey, path: Path) -> None:
        try:
            chat = open_conversation(path)
        except VllmtuiError as exc:
            self.notify(str(exc), severity="error")
            return
        damaged = f" ({chat.damaged} unreadable lines left out)" if chat.damaged else ""
        note = f"reopened: {len(chat.entries)} messages{damaged}"
        self.post_message(self.ConversationOpened(key, chat, note))

    @worker("exporting the conversation", group="chat-files")
    def write_markdown(self, conversation: Conversation) -> None:
        self.post_message(self.Exported(export_markdown(conversation)))

    def on_chat_files_exported(self, message: ChatFiles.Exported) -> None:
        message.stop()
        self.notify(f"exported: {message.path}")
