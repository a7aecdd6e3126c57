"""What the Chat tab keeps of each server's chat (`ChatState`), the MCP tools it shares
between them (`ChatTools`: started once, closed with the app), and the parts that run on a
worker's thread: the session made for a chat, and a question put to the user in a dialog
while that thread waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import App
from textual.screen import ModalScreen

from vllmtui.chat.conversation import Conversation
from vllmtui.chat.session import Answer, ChatSession, Event, ToolCall, ToolRunner
from vllmtui.chat.target import ChatTarget
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.ui.widgets.chat_log import ChatLog

ChatKey = tuple[str, bool]  # (the profile's name, through the gateway)
Opener = Callable[[Settings], tuple[ToolRunner | None, list[str]]]
WAIT = 0.2  # seconds between looks at "is the app closing?" while a worker waits


@dataclass
class ChatState:
    """One server's chat in the tab: its transcript, target (or why it has none), the
    conversation, the session once a message was sent, and whether a turn is running."""

    key: ChatKey
    log: ChatLog
    found: ChatTarget | None = None
    problem: str | None = None  # why it cannot chat now (the server is not ready...)
    conversation: Conversation | None = None
    session: ChatSession | None = None
    busy: bool = False
    turns: int = 0  # turns (and commands) ended
    told: set[str] = field(default_factory=set)  # notes said once (the tools it cannot call)

    def use(self, conversation: Conversation) -> None:
        """Go on with `conversation` (a new or a reopened one)."""
        self.conversation = conversation
        if self.session is not None:
            self.session.conversation = conversation
            self.session.always.clear()


def head_text(name: str | None, chat: ChatState | None, tools: tuple[str, ...] | None) -> Text:
    """The tab's first lines: whom the chat talks to (or why it cannot), its tools, system
    prompt and settings (pure)."""
    if name is None or chat is None:
        return Text("no server selected", style="dim")
    out = Text(name, style="bold")
    found = chat.found
    if found is not None:
        out.append(f"  {found.target.model} at {found.target.base_url}")
    if chat.key[1]:
        out.append(" through the gateway", style="cyan")
    if chat.busy:
        out.append("  replying… (Esc stops)", style="bold cyan")
    out.append("\n")
    if chat.problem:
        out.append(chat.problem + "\n", style="yellow")
    if tools is None:
        details = ["tools: starting the MCP servers…"]
    elif not tools:
        details = ["tools: none (no MCP servers in mcp.yaml)"]
    elif found is not None and not found.can_call_tools:
        details = ["tools: off (this server has no tool parser)"]
    else:
        details = ["tools: " + ", ".join(tools)]
    now = chat.conversation
    if now is not None and now.system:
        details.append(f"system: {now.system[:60]}")
    if now is not None and now.settings:
        details.append("settings: " + " ".join(f"{k}={v}" for k, v in sorted(now.settings.items())))
    out.append(" · ".join(details), style="dim")
    return out


class ChatTools:
    """The MCP servers' tools, shared by every chat of the tab: started once in a worker,
    waited for by a chat's first turn, closed (off the UI thread) when the tab goes."""

    def __init__(self) -> None:
        self.runner: ToolRunner | None = None
        self.started = False
        self.ready = threading.Event()
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def open(self, opener: Opener, settings: Settings) -> tuple[tuple[str, ...], list[str]]:
        """Start them (blocking: a worker's thread); the tools' names and the problems."""
        runner: ToolRunner | None = None
        problems: list[str] = []
        try:
            runner, problems = opener(settings)
        except VllmtuiError as exc:
            problems = [str(exc)]
        finally:
            with self._lock:
                closed = self.closed.is_set()
                if not closed:
                    self.runner = runner
                self.ready.set()
        if closed:
            close_all([], runner)
            return (), []
        return (tuple(s.name for s in runner.specs()) if runner is not None else ()), problems

    def wait(self) -> bool:
        """Wait until they started (False: the tab closes first)."""
        while not self.ready.wait(WAIT):
            if self.closed.is_set():
                return False
        return not self.closed.is_set()

    def close(self, sessions: list[ChatSession]) -> None:
        """Stop every session's reply; close them and the tools in a thread of their own."""
        with self._lock:
            self.closed.set()
            runner, self.runner = self.runner, None
        for session in sessions:
            session.stop()
        threading.Thread(target=close_all, args=(sessions, runner), name="vllmtui-chat-close").start()


def close_all(sessions: list[ChatSession], tools: Any) -> None:
    """Close the sessions and the tools (the MCP servers: it takes a moment)."""
    for session in sessions:
        session.close()
    close = getattr(tools, "close", None)
    if callable(close):
        close()


def session_for(chat: ChatState, tools: ChatTools, tell: Callable[[ChatKey, Event], None],
                approve: Callable[[ChatKey, ToolCall], Answer], note: Callable[[ChatKey, str], object],
                ) -> ChatSession | None:
    """The chat's session (on a worker's thread), made the first time and made again when
    its server moved (a restart, another URL) or its tools changed; None when the tab closes."""
    if not tools.wait():
        return None
    found, conversation = chat.found, chat.conversation
    if found is None or conversation is None:
        return None
    runner = tools.runner
    if runner is not None and runner.specs() and not found.can_call_tools:
        if "tools" not in chat.told:
            chat.told.add("tools")
            note(chat.key, found.tools_problem())
        runner = None
    session = chat.session
    if session is None or session.target != found.target or session.tools is not runner:
        key = chat.key
        made = ChatSession(found.target, conversation, runner, events=lambda event: tell(key, event),
                           approve=lambda call: approve(key, call))
        if session is not None:
            made.always |= session.always
            session.close()
        chat.session = session = made
    return session


def ask_user(app: App[Any], dialog: ModalScreen[str], closed: threading.Event) -> str | None:
    """Push `dialog` from a worker's thread and wait for its answer (None: the app went away)."""
    answer: Future[str | None] = Future()

    def ask() -> None:
        app.push_screen(dialog, answer.set_result)

    try:
        app.call_from_thread(ask)
    except RuntimeError:  # the app is not running any more
        return None
    while True:
        try:
            return answer.result(timeout=WAIT)
        except TimeoutError:
            if closed.is_set():
                return None
