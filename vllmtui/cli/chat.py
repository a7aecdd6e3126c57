"""`vllmtui chat NAME`: talk to a served model in a plain terminal (streamed, multi-turn,
tools from MCP servers), or send one message and print the reply (`-m TEXT`, for scripts)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from vllmtui.cli.common import AddCommand
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings

HELP = """commands: /new (a new conversation)  /system TEXT  /set NAME=VALUE ...  /settings
          /tools  /list  /open ID  /export [FILE]  /quit   (Ctrl-C stops a reply; Ctrl-D quits)"""


def _printable(text: str) -> str:
    from vllmtui.probes.toolcheck import printable

    return printable(text).replace("\\n", "\n").replace("\\t", "\t")


class _Printer:
    """What the session tells, printed as it happens (JSON mode: collected, printed at the end)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.calls: list[dict[str, Any]] = []
        self.notices: list[str] = []

    def __call__(self, event: Any) -> None:
        from vllmtui.chat import session as s

        if isinstance(event, s.TextArrived):
            if not self.quiet:
                print(_printable(event.text), end="", flush=True)
        elif isinstance(event, s.ReplyFinished):
            if not self.quiet:
                print(f"\n  [{event.entry.stats.line() if event.entry.stats else ''}]", flush=True)
        elif isinstance(event, s.ToolCalled):
            call = event.call
            check = "matches its schema" if call.matches else f"does NOT match its schema: {call.problem}"
            self.calls.append({"id": call.id, "name": call.name, "arguments": call.arguments,
                               "matches": call.matches, "problem": call.problem})
            if not self.quiet:
                print(f"  tool call {call.name}({_printable(call.arguments)}): {check}", flush=True)
        elif isinstance(event, s.ToolAnswered):
            record = next((c for c in reversed(self.calls) if c["id"] == event.call.id), None)
            if record is not None:
                record.update(result=event.result, is_error=event.is_error, answer=event.answer)
            if not self.quiet:
                label = "declined" if event.answer == "deny" else ("failed" if event.is_error else "result")
                print(f"  tool {label}: {_printable(event.result)[:400]}", flush=True)
        elif isinstance(event, s.Noticed):
            self.notices.append(event.text)
            if not self.quiet:
                print(f"  ! {event.text}", file=sys.stderr, flush=True)


def _asker(yes: bool, interactive: bool) -> Any:
    def approve(call: Any) -> str:
        if yes:
            return "always"
        if not interactive:
            print(f"  tool call {call.name} not run: allow tool calls with --yes", file=sys.stderr)
            return "deny"
        while True:
            answer = input(f"  run {call.name}? [y]es once, [a]lways for {call.name}, [n]o: ").strip().lower()
            if answer in ("y", "yes"):
                return "once"
            if answer in ("a", "always"):
                return "always"
            if answer in ("n", "no", ""):
                return "deny"

    return approve


@contextmanager
def _ctrl_c_stops(session: Any) -> Iterator[None]:
    """While a reply streams, Ctrl-C stops the reply instead of the program."""

    def handler(signum: int, frame: FrameType | None) -> None:
        session.stop()

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """Chat with a server (docs/chat.md)."""
    from vllmtui.chat.conversation import find_conversation
    from vllmtui.chat.target import chat_history, chat_target

    if not args.name:
        raise UsageError("name the profile (or, with --gateway, the model) to chat with")
    if args.list or args.export:  # saved conversations: the server need not be running
        folders = list(chat_history(settings, args.name, args.gateway))
        if args.list:
            return _list(folders, args.json)
        return _export(find_conversation(folders, args.export), args.output)
    found = chat_target(settings, args.name, gateway=args.gateway, url=args.url, model=args.model)
    folders = list(found.history)
    tools = _tools(args, settings, found)
    try:
        session = _session(args, found, tools, folders)
        if args.message is not None:
            return _one(args, session)
        return _repl(args, session, found, folders)
    finally:
        if tools is not None:
            tools.close()


def _tools(args: argparse.Namespace, settings: Settings, found: Any) -> Any:
    from vllmtui.chat.tools import open_tools, tool_named

    if args.no_tools:
        return None
    tools, problems = open_tools(settings)
    for problem in problems:
        print(f"vllmtui: {problem}", file=sys.stderr)
    if args.tool:
        tool_named(tools, args.tool)
    if tools is not None and tools.specs() and not found.can_call_tools:
        if args.tool or args.tool_choice == "required":
            tools.close()
            raise UsageError(found.tools_problem())
        print(f"vllmtui: {found.tools_problem()}", file=sys.stderr)
        tools.close()
        return None
    return tools


def _session(args: argparse.Namespace, found: Any, tools: Any, folders: list[Any]) -> Any:
    from vllmtui.chat.conversation import Conversation, find_conversation, open_conversation
    from vllmtui.chat.session import ChatSession
    from vllmtui.chat.tools import parse_settings

    if args.open:
        chat = open_conversation(find_conversation(folders, args.open))
    else:
        chat = Conversation(found.target.name, found.target.model, system=args.system,
                            settings=dict(found.generation))
        if found.folder is not None and not args.no_save:
            chat.save_to(found.folder)
    if args.set:
        chat.set_settings(parse_settings(chat.settings, " ".join(args.set)))
    if args.system and args.open:
        chat.set_system(args.system)
    interactive = sys.stdin.isatty()
    printer = _Printer(quiet=args.json)
    return ChatSession(found.target, chat, tools, printer, _asker(args.yes, interactive),
                       tool_choice=args.tool or args.tool_choice, timeout=args.timeout)


def _one(args: argparse.Namespace, session: Any) -> int:
    with _ctrl_c_stops(session):
        reply = session.send(args.message)
    session.close()
    printer: _Printer = session.events
    chat = session.conversation
    if args.json:
        print(json.dumps({
            "model": chat.model, "reply": reply.content, "tool_calls": printer.calls,
            "stats": None if reply.error and not reply.content else vars(reply.stats),
            "error": reply.error, "hint": reply.hint, "notices": printer.notices,
            "conversation": str(chat.path) if chat.path else None,
        }, indent=2))
    elif chat.path is not None:
        print(f"  saved: {chat.path}", file=sys.stderr)
    return 1 if reply.error else 0


def _repl(args: argparse.Namespace, session: Any, found: Any, folders: list[Any]) -> int:
    from vllmtui.chat.commands import run_command

    chat = session.conversation
    print(f"chat with {chat.model} at {found.target.base_url}"
          f"{' (through the gateway)' if found.via_gateway else ''}; {HELP}")
    if chat.entries:
        print(f"reopened {chat.id}: {len(chat.entries)} messages")
    while True:
        try:
            text = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            break
        if not text.strip():
            continue
        if text.startswith("/"):
            try:
                if run_command(text, session, found, folders, print) == "quit":
                    break
            except UsageError as exc:
                print(f"vllmtui: {exc}", file=sys.stderr)
            continue
        with _ctrl_c_stops(session):
            session.send(text)
    session.close()
    if session.conversation.path is not None:
        print(f"saved: {session.conversation.path}")
    return 0


def _list(folders: list[Any], as_json: bool) -> int:
    from vllmtui.chat.conversation import list_conversations

    saved = list_conversations(folders)
    if as_json:
        print(json.dumps([{"id": c.id, "path": str(c.path), "title": c.title, "created": c.created,
                           "messages": c.messages} for c in saved], indent=2))
        return 0
    if not saved:
        print("no saved conversations yet")
    for c in saved:
        print(f"{c.id}  {c.messages:3d} messages  {c.title}")
    return 0


def _export(path: Any, output: str | None) -> int:
    from pathlib import Path

    from vllmtui.chat.conversation import open_conversation
    from vllmtui.chat.export import export_markdown, to_markdown

    chat = open_conversation(path)
    if output == "-":
        print(to_markdown(chat), end="")
        return 0
    print(export_markdown(chat, Path(output).expanduser() if output else None))
    return 0


def add_parsers(add: AddCommand) -> None:
    """Register chat."""
    from vllmtui.cli.options import positive_float

    p = add("chat", cmd_chat, "talk to a served model: streamed, multi-turn, with tools from MCP servers")
    p.add_argument("name", nargs="?", help="the profile whose server to talk to (with --gateway: a model)")
    p.add_argument("-m", "--message", metavar="TEXT", help="send this one message, print the reply, exit")
    p.add_argument("--gateway", action="store_true", help="through the gateway (starts or wakes the model)")
    p.add_argument("--url", help="this base URL instead of the server's own (e.g. a tunnel's end)")
    p.add_argument("--model", help="model name to send (default: the profile's served model name)")
    p.add_argument("--system", metavar="TEXT", help="the system prompt")
    p.add_argument("--set", nargs="+", metavar="NAME=VALUE",
                   help="generation settings for this chat (default: the profile's generation:)")
    p.add_argument("--tool", metavar="TOOL", help="offer this MCP tool as the named tool_choice")
    p.add_argument("--tool-choice", choices=("auto", "required", "none"), default="auto",
                   help="tool_choice when tools are offered (default auto)")
    p.add_argument("--no-tools", action="store_true", help="do not start the MCP servers of mcp.yaml")
    p.add_argument("--yes", action="store_true", help="run the model's tool calls without asking")
    p.add_argument("--json", action="store_true", help="with -m: print the reply and tool calls as JSON")
    p.add_argument("--timeout", type=positive_float(), default=120.0, help="seconds to wait for tokens")
    p.add_argument("--list", action="store_true", help="list saved conversations")
    p.add_argument("--open", metavar="ID", help="reopen a saved conversation (id, prefix or `latest`)")
    p.add_argument("--export", metavar="ID", help="write a saved conversation as Markdown")
    p.add_argument("--output", metavar="FILE", help="with --export: where (`-`: stdout; default beside it)")
    p.add_argument("--no-save", action="store_true", help="do not save this conversation")
