"""One chat's transcript in the Chat tab: the user's messages, each reply streamed into a
Markdown widget (through Textual's `MarkdownStream`, which folds pieces that arrive faster
than it can render) and followed by its figures, tool calls with their schema check, tool
results, and notes. The texts are pure functions (tested without a screen); `ChatLog` only
mounts them."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from vllmtui.chat.conversation import Conversation, Entry, ReplyStats
from vllmtui.probes.toolcheck import printable

RESULT_SHOWN = 600  # characters of a tool result on screen (the conversation keeps all of it)
ANSWERS = {"once": "ran once", "always": "ran (always allowed)", "deny": "declined: not run"}


def user_text(text: str) -> Text:
    """The user's message: `you  TEXT` (never read as markup)."""
    return Text.assemble(("you  ", "bold cyan"), printable(text).replace("\\n", "\n"))


def stats_text(stats: ReplyStats) -> Text:
    """A reply's figures: `42 tokens · TTFT 0.12 s · 85.3 tok/s · 0.6 s`."""
    return Text(stats.line(), style="yellow" if stats.stopped else "dim")


def call_text(name: str, arguments: str, problem: str | None = None, checked: bool = True) -> Text:
    """A tool call: its name and arguments, and whether they match the tool's schema
    (`checked` False: a saved call, whose check is on its result)."""
    out = Text.assemble(("tool call ", "bold magenta"), (name or "?", "bold"), " ")
    out.append(printable(arguments or "{}")[:RESULT_SHOWN])
    if checked and problem is None:
        out.append("\n  ✓ matches its schema", style="green")
    elif checked:
        out.append(f"\n  ✗ does not match its schema: {printable(problem or '')}", style="bold red")
    return out


def result_text(result: str, is_error: bool, answer: str, problem: str | None = None) -> Text:
    """What came of a tool call: declined, failed or its result (`problem`: a saved call
    that did not match its schema)."""
    out = Text()
    if problem:
        out.append(f"  ✗ did not match its schema: {printable(problem)}\n", style="bold red")
    if answer == "deny":
        out.append(f"  {ANSWERS['deny']}", style="yellow")
        return out
    label = f"  {ANSWERS.get(answer, 'ran')}, {'failed' if is_error else 'result'}: "
    out.append(label, style="bold red" if is_error else "bold green")
    shown = printable(result).replace("\\n", "\n")
    out.append(shown[:RESULT_SHOWN] + ("…" if len(shown) > RESULT_SHOWN else ""))
    return out


def note_text(text: str, error: bool = False) -> Text:
    """A line of the chat's own (a notice of the session, a command's answer)."""
    return Text(printable(text).replace("\\n", "\n"), style="bold red" if error else "italic yellow")


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else "" if content is None else json.dumps(content)


def entry_widgets(entry: Entry) -> list[Widget]:
    """The widgets of one saved message (a reopened conversation), as they looked live."""
    message = entry.message
    if entry.role == "user":
        return [Static(user_text(_content(message)), classes="chat-user")]
    if entry.role == "tool":
        tool = entry.tool or {}
        problem = None if tool.get("matches", True) else str(tool.get("problem") or "")
        shown = result_text(_content(message), bool(tool.get("is_error")), str(tool.get("answer") or "once"),
                            problem)
        return [Static(shown, classes="chat-tool")]
    if entry.role != "assistant":
        return []
    widgets: list[Widget] = []
    if _content(message):
        widgets.append(Markdown(_content(message), classes="chat-reply"))
    if entry.stats is not None:
        widgets.append(Static(stats_text(entry.stats), classes="chat-stats"))
    for call in message.get("tool_calls") or []:
        function = (call.get("function") or {}) if isinstance(call, dict) else {}
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        widgets.append(Static(call_text(str(function.get("name") or ""), text, checked=False),
                              classes="chat-tool"))
    return widgets


class ChatLog(VerticalScroll):
    """The transcript of one chat; it stays at the bottom while a reply streams, unless
    scrolled up."""

    DEFAULT_CSS = """
    ChatLog { height: 1fr; padding: 0 1; }
    ChatLog > .chat-user { margin: 1 0 0 0; }
    ChatLog > Markdown { padding: 0 0 0 2; margin: 0; }
    ChatLog > .chat-stats { padding: 0 0 0 2; }
    ChatLog > .chat-tool { padding: 0 0 0 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._reply: Markdown | None = None
        self._stream: MarkdownStream | None = None

    def on_mount(self) -> None:
        self.anchor()

    @property
    def streaming(self) -> bool:
        """A reply is being streamed into the log."""
        return self._stream is not None

    def transcript(self) -> str:
        """Everything the log shows, as plain text (tests and the snapshot read it)."""
        parts = []
        for child in self.children:
            if isinstance(child, Markdown):
                parts.append(child.source)
            elif isinstance(child, Static):
                content = child.content
                parts.append(content.plain if isinstance(content, Text) else str(content))
        return "\n".join(parts)

    async def show_conversation(self, chat: Conversation, note: str | None = None) -> None:
        """Replace the log by a conversation's messages (a reopened or a new one)."""
        await self._end_stream()
        await self.remove_children()
        widgets = [w for entry in chat.entries for w in entry_widgets(entry)]
        if note:
            widgets.append(Static(note_text(note), classes="chat-note"))
        if widgets:
            await self.mount_all(widgets)
        self.scroll_end(animate=False)

    async def add(self, content: Text, kind: str) -> None:
        """A line of `kind` (user, stats, tool, note): any reply being streamed ends first."""
        await self._end_stream()
        await self.mount(Static(content, classes=f"chat-{kind}"))

    async def add_text(self, piece: str) -> None:
        """A piece of the reply being streamed (the first one starts the reply)."""
        if self._stream is None:
            self._reply = Markdown(classes="chat-reply")
            await self.mount(self._reply)
            self._stream = Markdown.get_stream(self._reply)
        await self._stream.write(piece)

    async def end_reply(self, stats: ReplyStats | None) -> None:
        """The reply is complete (or stopped): its figures follow it."""
        await self._end_stream()
        if stats is not None:
            await self.add(stats_text(stats), "stats")

    async def _end_stream(self) -> None:
        stream, self._stream, self._reply = self._stream, None, None
        if stream is not None:
            await stream.stop()


def approval_text(server: str, name: str, arguments: str, parsed: Any, problem: str | None) -> str:
    """What the tool-call dialog asks: the call, its arguments laid out, its schema check."""
    shown = json.dumps(parsed, indent=2, ensure_ascii=False) if isinstance(parsed, dict) else arguments
    lines = [f"The model on {server} wants to run the tool {name or '?'} with:", "", printable(shown).replace(
        "\\n", "\n"), ""]
    if problem is None:
        lines.append("✓ the arguments match the tool's schema")
    else:
        lines += [f"✗ they do not match the tool's schema: {printable(problem)}",
                  "  (allowed, the tool gets them anyway and its error goes back to the model)"]
    return "\n".join(lines)
