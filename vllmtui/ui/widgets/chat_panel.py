"""The Chat tab: talk to the selected server (or, toggled, to its model through the gateway),
streamed and multi-turn, with tools from the MCP servers of mcp.yaml.

Each server keeps its own chat while the app runs (`ChatState`: its transcript, target,
conversation and `ChatSession`): selecting another row shows that row's chat, and a reply
still streaming for the row left keeps going into its own transcript. The domain does the
work in thread workers: `chat_target` finds the server when the tab is shown or the row's
state changes, `open_tools` starts the MCP servers once (the first time the tab is shown),
`ChatSession.send` streams a turn and runs its tool loop; what the session tells comes back as
the panel's own messages (`ChatPanel.TextArrived`, ...). Before a tool runs, the worker
thread asks the user in a `ToolCallDialog` and waits for the answer."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import var
from textual.widgets import ContentSwitcher, Input, Static

from vllmtui.chat import session as chat_session
from vllmtui.chat import tools as chat_tools
from vllmtui.chat.commands import run_command
from vllmtui.chat.conversation import Conversation, ReplyStats
from vllmtui.chat.session import Answer, ChatSession, ToolCall
from vllmtui.chat.target import ChatTarget, chat_target
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.ui.screens.dialogs import ToolCallDialog
from vllmtui.ui.selection import Selection
from vllmtui.ui.widgets.chat_files import ChatFiles
from vllmtui.ui.widgets.chat_log import ChatLog, approval_text, call_text, note_text, result_text, user_text
from vllmtui.ui.widgets.chat_state import (
    ChatKey,
    ChatState,
    ChatTools,
    Opener,
    ask_user,
    head_text,
    session_for,
)
from vllmtui.ui.work import worker

PLACEHOLDER = "message (Enter sends)  /system TEXT  /set NAME=VALUE  /settings  /tools  /new  /export"


class ChatPanel(Vertical):
    """The Chat tab (see the module docstring): a head line, one transcript per server, an input."""

    DEFAULT_CSS = """
    ChatPanel { height: 1fr; }
    ChatPanel > #chat-head { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    ChatPanel > #chat-logs { height: 1fr; }
    ChatPanel > #chat-input { dock: bottom; }
    """

    @dataclass
    class TargetResolved(Message):
        """The server of chat `key` was looked up: `found`, or why not (`problem`)."""

        key: ChatKey
        found: ChatTarget | None
        problem: str | None

    @dataclass
    class ToolsOpened(Message):
        """The MCP servers started: the tools they offer and the problems of those that did not."""

        names: tuple[str, ...]
        problems: list[str]

    @dataclass
    class TextArrived(Message):
        """A piece of the reply being streamed."""

        key: ChatKey
        text: str

    @dataclass
    class ReplyFinished(Message):
        """A reply is complete or was stopped: its figures, and an error that cut it short."""

        key: ChatKey
        stats: ReplyStats | None
        error: str | None

    @dataclass
    class ToolCalled(Message):
        """The model called a tool (checked against its schema)."""

        key: ChatKey
        call: ToolCall

    @dataclass
    class ToolAnswered(Message):
        """A tool call ran (or was declined): what goes back to the model."""

        key: ChatKey
        result: str
        is_error: bool
        answer: str

    @dataclass
    class Noticed(Message):
        """Something to say in the transcript (a failed request, a command's answer)."""

        key: ChatKey
        text: str
        error: bool = False

    @dataclass
    class TurnEnded(Message):
        """A turn (or a command) of chat `key` is over: it takes a message again."""

        key: ChatKey

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, opener: Opener | None = None, *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.opener = opener  # None: chat.tools.open_tools, looked up when the tools start
        self.via_gateway = False
        self.chats: dict[ChatKey, ChatState] = {}
        self.tool_names: tuple[str, ...] | None = None  # None: not started yet
        self.tools = ChatTools()

    def compose(self) -> ComposeResult:
        yield Static(head_text(None, None, None), id="chat-head")
        yield ContentSwitcher(id="chat-logs")
        yield Input(placeholder=PLACEHOLDER, id="chat-input")
        yield ChatFiles()

    def on_unmount(self) -> None:
        self.tools.close([c.session for c in self.chats.values() if c.session is not None])

    # ---------------------------------------------------------------- what is shown

    @property
    def key(self) -> ChatKey | None:
        """The chat shown: the selected server's, directly or through the gateway."""
        return (self.selection.name, self.via_gateway) if self.selection.name else None

    @property
    def current(self) -> ChatState | None:
        key = self.key
        return self.chats.get(key) if key else None

    def watch_selection(self, old: Selection, new: Selection) -> None:
        if old.key != new.key:
            self._follow()

    def watch_shown(self, shown: bool) -> None:
        if shown and not self.tools.started and self.settings is not None:
            self.tools.started = True
            self.open_mcp(self.settings)
        if shown:
            self._follow()

    @property
    def _files(self) -> ChatFiles:
        return self.query_one(ChatFiles)

    def focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def _follow(self) -> None:
        """Show the selected server's chat (made the first time) and look its server up."""
        key = self.key
        if key is None:
            self._render_head()
            return
        chat = self.chats.get(key)
        if chat is None:
            chat = self.chats[key] = ChatState(key, ChatLog(id=f"chat-log-{len(self.chats)}"))
            self.query_one("#chat-logs", ContentSwitcher).mount(chat.log)
        self.query_one("#chat-logs", ContentSwitcher).current = chat.log.id
        if self.shown and self.settings is not None:
            self.resolve(self.settings, key)
        self._render_head()

    def _render_head(self) -> None:
        head = head_text(self.selection.name, self.current, self.tool_names)
        self.query_one("#chat-head", Static).update(head)

    def _chat_of(self, message: Message, key: ChatKey) -> ChatState | None:
        message.stop()  # the panel's own: nothing above it reads them
        return self.chats.get(key)

    # ---------------------------------------------------------------- the server, the tools

    @worker("finding the chat's server", group="chat-target")
    def resolve(self, settings: Settings, key: ChatKey) -> None:
        try:
            found = chat_target(settings, key[0], gateway=key[1])
        except VllmtuiError as exc:
            self.post_message(self.TargetResolved(key, None, str(exc)))
            return
        self.post_message(self.TargetResolved(key, found, None))

    def on_chat_panel_target_resolved(self, message: ChatPanel.TargetResolved) -> None:
        chat = self._chat_of(message, message.key)
        if chat is None:
            return
        chat.found, chat.problem = message.found, message.problem
        found = message.found
        if found is not None and chat.conversation is None:
            chat.conversation = Conversation(found.target.name, found.target.model,
                                             settings=dict(found.generation))
        self._render_head()

    @worker("starting the MCP servers", group="chat-tools")
    def open_mcp(self, settings: Settings) -> None:
        names, problems = self.tools.open(self.opener or chat_tools.open_tools, settings)
        if not self.tools.closed.is_set():
            self.post_message(self.ToolsOpened(names, problems))

    def on_chat_panel_tools_opened(self, message: ChatPanel.ToolsOpened) -> None:
        message.stop()
        self.tool_names = message.names
        for problem in message.problems:
            self.notify(problem, title="MCP", severity="warning", timeout=10)
        self._render_head()

    # ---------------------------------------------------------------- a turn

    @on(Input.Submitted, "#chat-input")
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        chat = self.current
        if not text or chat is None:
            return
        if chat.busy:
            self.notify("a reply is on its way: Esc stops it", severity="warning")
            return
        if chat.found is None or chat.conversation is None:
            self.notify(chat.problem or "still looking the server up", severity="warning")
            if self.settings is not None:
                self.resolve(self.settings, chat.key)
            return
        event.input.value = ""
        chat.busy = True
        self._render_head()
        if text.startswith("/"):
            self.command(chat, text)
            return
        await chat.log.add(user_text(text), "user")
        self.send(chat, text)

    def _session(self, chat: ChatState) -> ChatSession | None:
        return session_for(chat, self.tools, self._tell, self._approve,
                           lambda key, text: self.post_message(self.Noticed(key, text, error=True)))

    @worker("chatting", group="chat-send")
    def send(self, chat: ChatState, text: str) -> None:
        try:
            session = self._session(chat)
            if session is None:
                return
            found = chat.found
            if session.conversation.path is None and found is not None and found.folder is not None:
                session.conversation.save_to(found.folder)  # saved from its first message
            session.send(text)
        finally:
            self.post_message(self.TurnEnded(chat.key))

    @worker("running a chat command", group="chat-send")
    def command(self, chat: ChatState, text: str) -> None:
        said: list[str] = []
        try:
            session = self._session(chat)
            if session is None or chat.found is None:
                return
            before = session.conversation
            try:
                if run_command(text, session, chat.found, list(chat.found.history), said.append) == "quit":
                    said.append("q quits the app (from outside the input); Ctrl+N starts a new conversation")
            except VllmtuiError as exc:
                self.post_message(self.Noticed(chat.key, str(exc), error=True))
            now = session.conversation
            if now is not before:  # /new, /open: the log shows it, then what was said
                self.post_message(ChatFiles.ConversationOpened(chat.key, now, "\n".join(said)))
            elif said:
                self.post_message(self.Noticed(chat.key, "\n".join(said)))
        finally:
            self.post_message(self.TurnEnded(chat.key))

    def _tell(self, key: ChatKey, event: chat_session.Event) -> None:
        """What the session tells (on the worker's thread), as the panel's messages."""
        if isinstance(event, chat_session.TextArrived):
            self.post_message(self.TextArrived(key, event.text))
        elif isinstance(event, chat_session.ReplyFinished):
            self.post_message(self.ReplyFinished(key, event.entry.stats, event.reply.error))
        elif isinstance(event, chat_session.ToolCalled):
            self.post_message(self.ToolCalled(key, event.call))
        elif isinstance(event, chat_session.ToolAnswered):
            self.post_message(self.ToolAnswered(key, event.result, event.is_error, event.answer))
        elif isinstance(event, chat_session.Noticed):
            self.post_message(self.Noticed(key, event.text, error=True))

    def _approve(self, key: ChatKey, call: ToolCall) -> Answer:
        """Ask the user in a dialog (the worker's thread waits for the answer)."""
        body = approval_text(key[0], call.name, call.arguments, call.parsed, call.problem)
        value = ask_user(self.app, ToolCallDialog(f"Run {call.name or 'this tool call'}?", body, call.name),
                         self.tools.closed)
        return "always" if value == "always" else "once" if value == "once" else "deny"

    async def on_chat_panel_text_arrived(self, message: ChatPanel.TextArrived) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            await chat.log.add_text(message.text)

    async def on_chat_panel_reply_finished(self, message: ChatPanel.ReplyFinished) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            await chat.log.end_reply(message.stats)
            if message.error:
                await chat.log.add(note_text(message.error, error=True), "note")

    async def on_chat_panel_tool_called(self, message: ChatPanel.ToolCalled) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            call = message.call
            await chat.log.add(call_text(call.name, call.arguments, call.problem), "tool")

    async def on_chat_panel_tool_answered(self, message: ChatPanel.ToolAnswered) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            await chat.log.add(result_text(message.result, message.is_error, message.answer), "tool")

    async def on_chat_panel_noticed(self, message: ChatPanel.Noticed) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            await chat.log.add(note_text(message.text, message.error), "note")

    async def on_chat_panel_turn_ended(self, message: ChatPanel.TurnEnded) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            await chat.log.end_reply(None)
            chat.busy = False
            chat.turns += 1
            self._render_head()

    # ---------------------------------------------------------------- the tab's keys

    def key_pressed(self, what: str) -> None:
        """One of the tab's keys: new, open, export, gateway, stop."""
        if what == "gateway":
            self.via_gateway = not self.via_gateway
            self.notify("chat through the gateway" if self.via_gateway else "chat with the server directly")
            self._follow()
            return
        chat = self.current
        if chat is None:
            self.notify("no server selected", severity="warning")
        elif what == "stop":
            if chat.busy and chat.session is not None:
                chat.session.stop()
        elif what == "export":
            self._files.export(chat.conversation)
        elif chat.busy:
            self.notify("a reply is on its way: Esc stops it first", severity="warning")
        elif what == "new":
            self._files.new(chat)
        elif what == "open" and self.settings is not None:
            self._files.pick(self.settings, chat)

    async def on_chat_files_conversation_opened(self, message: ChatFiles.ConversationOpened) -> None:
        chat = self._chat_of(message, message.key)
        if chat is not None:
            chat.use(message.conversation)
            await chat.log.show_conversation(message.conversation, message.note or None)
            self._render_head()
