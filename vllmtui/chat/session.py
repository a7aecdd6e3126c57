"""A chat session: sends the conversation, streams the reply, and runs the tool loop (the
model's calls checked against each tool's schema, allowed by the user once or always, run
through MCP, their results sent back) until the model answers in words.

The CLI and the TUI drive the same session; what happens is told through `events` (plain
dataclasses) and the user's answer to a tool call comes from `approve`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import jsonschema

from vllmtui.chat.conversation import Conversation, Entry
from vllmtui.chat.reply import Reply, Stopper, stream_reply
from vllmtui.probes.spec import ProbeTarget
from vllmtui.probes.toolcheck import ToolSpec, call_left_as_text, short, strict_json

Answer = Literal["once", "always", "deny"]
CHOICES = ("auto", "required", "none")
MAX_ROUNDS = 8  # model -> tools -> model rounds in one turn before it is cut off


class ToolRunner(Protocol):
    """What the session needs of an MCP hub (`chat.mcp_hub.McpHub`)."""

    def specs(self) -> list[ToolSpec]: ...

    def run(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]: ...


@dataclass(frozen=True)
class ToolCall:
    """A call the model made, as checked: its arguments parsed and held against the schema."""

    id: str
    name: str
    arguments: str
    parsed: Any = None
    known: bool = True
    problem: str | None = None  # why it does not match its tool (None: it matches)

    @property
    def matches(self) -> bool:
        return self.problem is None


# -- what the session tells its caller


@dataclass(frozen=True)
class TextArrived:
    text: str


@dataclass(frozen=True)
class ReplyFinished:
    entry: Entry
    reply: Reply


@dataclass(frozen=True)
class ToolCalled:
    call: ToolCall


@dataclass(frozen=True)
class ToolAnswered:
    call: ToolCall
    result: str
    is_error: bool
    answer: str  # once | always | deny


@dataclass(frozen=True)
class Noticed:
    text: str


Event = TextArrived | ReplyFinished | ToolCalled | ToolAnswered | Noticed


def check_call(raw: dict[str, Any], tools: dict[str, ToolSpec]) -> ToolCall:
    """A tool call of a reply, checked: known name, JSON arguments, valid against the schema."""
    function: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else {}
    name = str(function.get("name") or "")
    arguments = function.get("arguments")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call_id = str(raw.get("id") or "")
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(tools) or "none"
        return ToolCall(call_id, name, text, known=False,
                        problem=f"no tool named {name!r} was offered ({known})")
    try:
        parsed = strict_json(text) if text.strip() else {}
    except ValueError as exc:
        return ToolCall(call_id, name, text, problem=f"the arguments are not JSON ({exc})")
    problem = None
    if not isinstance(parsed, dict):
        problem = f"the arguments are {short(parsed, 40)}, not an object"
    else:
        try:
            jsonschema.validate(parsed, tool.parameters or {"type": "object"})
        except jsonschema.ValidationError as exc:
            problem = f"{'/'.join(str(p) for p in exc.absolute_path) or 'arguments'}: {exc.message}"
        except jsonschema.SchemaError as exc:
            problem = f"the tool's own schema is invalid ({exc.message})"
    return ToolCall(call_id, name, text, parsed, problem=problem)


def sendable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as a server takes them back: a tool call whose arguments are not a JSON
    object goes back with `{}` (vLLM 0.26 parses them and answers 400 `Unterminated string
    starting at ...` for the whole request, seen on the H200 run of 2026-12-04); the saved
    conversation keeps what the model wrote, and the tool's result says what was wrong."""
    out: list[dict[str, Any]] = []
    for message in messages:
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if calls:
            message = {**message, "tool_calls": [_json_arguments(c) for c in calls]}
        out.append(message)
    return out


def _json_arguments(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    try:
        ok = isinstance(json.loads(arguments), dict) if isinstance(arguments, str) else False
    except ValueError:
        ok = False
    return call if ok else {**call, "function": {**function, "arguments": "{}"}}


class ChatSession:
    """One conversation with one server. Not thread-safe: one turn at a time; `stop()` may
    be called from any thread."""

    def __init__(
        self,
        target: ProbeTarget,
        conversation: Conversation,
        tools: ToolRunner | None = None,
        events: Callable[[Event], None] | None = None,
        approve: Callable[[ToolCall], Answer] | None = None,
        tool_choice: str = "auto",
        timeout: float = 120.0,
    ):
        self.target = target
        self.conversation = conversation
        self.tools = tools
        self.events = events or (lambda event: None)
        self.approve = approve
        self.tool_choice = tool_choice
        self.always: set[str] = set()
        self.stopper = Stopper()
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        self.client = httpx.Client(base_url=target.base_url, headers=headers,
                                   timeout=httpx.Timeout(timeout, connect=5.0))

    def close(self) -> None:
        self.client.close()

    def stop(self) -> None:
        """Stop the reply being streamed, at once (what Esc and Ctrl-C do)."""
        self.stopper.stop()

    def offered(self) -> list[ToolSpec]:
        return self.tools.specs() if self.tools is not None else []

    def body(self, choice: str | None) -> dict[str, Any]:
        """The request for the conversation so far (`choice`: this round's tool_choice)."""
        messages = sendable(self.conversation.messages())
        body: dict[str, Any] = {"model": self.target.model, "messages": messages,
                                **self.conversation.settings}
        specs = self.offered()
        if specs and choice != "none":
            body["tools"] = [s.to_openai() for s in specs]
            if choice in ("auto", "required"):
                body["tool_choice"] = choice
            elif choice:
                body["tool_choice"] = {"type": "function", "function": {"name": choice}}
        return body

    def send(self, text: str) -> Reply:
        """The user's message, then rounds of reply and tools until the model answers in
        words (or is stopped, fails, or runs past MAX_ROUNDS). Returns the last reply."""
        self.stopper.reset()
        self.conversation.add(Entry({"role": "user", "content": text}))
        choice: str | None = self.tool_choice
        reply = Reply()
        for _ in range(MAX_ROUNDS):
            reply = stream_reply(self.client, self.target, self.body(choice),
                                 lambda piece: self.events(TextArrived(piece)), self.stopper)
            if reply.error and not (reply.content or reply.tool_calls):
                self.events(Noticed(reply.error + (f"\n{reply.hint}" if reply.hint else "")))
                return reply
            entry = self.conversation.add(Entry(reply.message(), reply.stats))
            self.events(ReplyFinished(entry, reply))
            left = call_left_as_text(reply.content) if not reply.tool_calls and self.offered() else None
            if left:
                self.events(Noticed("the model wrote a tool call as text, which the server's tool parser "
                                    f"did not turn into tool_calls: {short(left, 120)}"))
            if reply.stats.stopped or reply.error or not reply.tool_calls:
                return reply
            if reply.stats.finish_reason == "length":
                return self._cut_off(reply)
            if not self._run_calls(reply):
                return reply
            choice = "auto"  # a named or required choice is for the first round: then the model answers
        self.events(Noticed(f"stopped after {MAX_ROUNDS} rounds of tool calls without an answer"))
        return reply

    def _run_calls(self, reply: Reply) -> bool:
        """Run (or decline) each call and add its result; False when the user stopped."""
        tools = {s.name: s for s in self.offered()}
        for raw in reply.tool_calls:
            call = check_call(raw, tools)
            self.events(ToolCalled(call))
            answer: Answer = "always" if call.name in self.always else self._ask(call)
            if answer == "always":
                self.always.add(call.name)
            if self.stopper.stopped:
                return False
            result, failed = self._result(call, answer)
            self.conversation.add(Entry(
                {"role": "tool", "tool_call_id": call.id, "content": result},
                tool={"name": call.name, "matches": call.matches, "problem": call.problem,
                      "answer": answer, "is_error": failed},
            ))
            self.events(ToolAnswered(call, result, failed, answer))
        return not self.stopper.stopped

    def _cut_off(self, reply: Reply) -> Reply:
        """A reply that ran out of max_tokens inside its tool calls: their arguments are cut off,
        so none is run; each gets an error result (the conversation stays one a server takes)."""
        limit = self.conversation.settings.get("max_tokens")
        for raw in reply.tool_calls:
            call = check_call(raw, {s.name: s for s in self.offered()})
            self.events(ToolCalled(call))
            result = "Error: the call was cut off at max_tokens; it was not run."
            self.conversation.add(Entry(
                {"role": "tool", "tool_call_id": call.id, "content": result},
                tool={"name": call.name, "matches": False, "problem": "cut off at max_tokens",
                      "answer": "deny", "is_error": True},
            ))
            self.events(ToolAnswered(call, result, True, "deny"))
        reply.error = (f"the reply ran out of tokens (max_tokens {limit or 'of the server'}) in the middle of"
                       " its tool call: the arguments are cut off, so the tool was not run")
        reply.hint = "raise max_tokens: --set max_tokens=1024 (in a chat: /set max_tokens=1024)"
        self.events(Noticed(f"{reply.error}\n{reply.hint}"))
        return reply

    def _ask(self, call: ToolCall) -> Answer:
        if self.approve is None:
            return "deny"
        return self.approve(call)

    def _result(self, call: ToolCall, answer: Answer) -> tuple[str, bool]:
        if answer == "deny":
            return "The user declined to run this tool call.", True
        if not call.known or self.tools is None:
            return f"Error: {call.problem}", True
        if not isinstance(call.parsed, dict):
            return f"Error: {call.problem}", True
        # arguments that do not match the schema still go to the tool (the user allowed it):
        # its own error, sent back, is what the model can learn from
        return self.tools.run(call.name, call.parsed)
