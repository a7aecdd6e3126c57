"""One streamed reply: the request, the server-sent events as they arrive (text pieces, tool
call pieces by index, usage), a stop that works at once from any thread, and the figures."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from vllmtui.chat.conversation import ReplyStats
from vllmtui.probes.explain import explain_connect, explain_http
from vllmtui.probes.spec import ProbeTarget
from vllmtui.probes.stream import sse_events
from vllmtui.probes.toolcheck import short

TextCallback = Callable[[str], None]


class Stopper:
    """Stops a reply from another thread (Esc, Ctrl-C): sets the flag and closes the open
    response, so a read that waits for the next token returns at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None

    def stop(self) -> None:
        self.event.set()
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # closing from another thread may race the reader
                response.close()

    def reset(self) -> None:
        self.event.clear()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def hold(self, response: httpx.Response | None) -> None:
        with self._lock:
            self._response = response


@dataclass
class Reply:
    """What came back: the text, the tool calls (OpenAI shape), figures, or why it failed."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    stats: ReplyStats = field(default_factory=ReplyStats)
    error: str | None = None
    hint: str | None = None

    def message(self) -> dict[str, Any]:
        """The assistant message to keep in the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


class _Stream:
    """The state of a stream being read."""

    def __init__(self, on_text: TextCallback | None):
        self.on_text = on_text
        self.began = time.monotonic()
        self.first: float | None = None
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] = {}
        self.finish: str | None = None
        self.error: str | None = None

    def take(self, data: dict[str, Any]) -> None:
        if "error" in data:
            err = data["error"]
            self.error = short(err.get("message") if isinstance(err, dict) else err)
            return
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            self._text(delta.get("content"))
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                self._seen()
                self.reasoning.append(thought)
            for piece in delta.get("tool_calls") or []:
                self._call_piece(piece)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _seen(self) -> None:
        if self.first is None:
            self.first = time.monotonic() - self.began

    def _text(self, piece: Any) -> None:
        if isinstance(piece, str) and piece:
            self._seen()
            self.text.append(piece)
            if self.on_text is not None:
                self.on_text(piece)

    def _call_piece(self, piece: Any) -> None:
        if not isinstance(piece, dict):
            return
        self._seen()
        index: int = piece["index"] if isinstance(piece.get("index"), int) else len(self.calls)
        call = self.calls.setdefault(index, {"id": "", "type": "function",
                                             "function": {"name": "", "arguments": ""}})
        if piece.get("id"):
            call["id"] = str(piece["id"])
        function = piece.get("function") or {}
        if isinstance(function.get("name"), str):
            call["function"]["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]

    def reply(self, stopped: bool) -> Reply:
        total = time.monotonic() - self.began
        completion = self.usage.get("completion_tokens")
        tps = None
        if completion and completion > 1 and self.first is not None and total > self.first:
            tps = round((completion - 1) / (total - self.first), 2)
        calls = [self.calls[i] for i in sorted(self.calls)]
        for n, call in enumerate(calls):
            call["id"] = call["id"] or f"call_{n}"
        stats = ReplyStats(
            completion_tokens=completion if isinstance(completion, int) else None,
            prompt_tokens=self.usage.get("prompt_tokens"),
            time_to_first_token=None if self.first is None else round(self.first, 4),
            tokens_per_second=tps, seconds=round(total, 3), finish_reason=self.finish, stopped=stopped,
        )
        return Reply("".join(self.text), "".join(self.reasoning), calls, stats, self.error)


def stream_reply(
    client: httpx.Client,
    target: ProbeTarget,
    body: dict[str, Any],
    on_text: TextCallback | None = None,
    stopper: Stopper | None = None,
) -> Reply:
    """POST a streamed chat completion and read it to the end (or until stopped). Never
    raises for what a server or network does: the Reply's `error` and `hint` say it."""
    stopper = stopper or Stopper()
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    state = _Stream(on_text)
    try:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            stopper.hold(response)
            if response.status_code != 200:
                text = response.read().decode(errors="replace")
                explained = explain_http(response.status_code, text, target)
                return Reply(error=explained.error, hint=explained.hint, stats=state.reply(False).stats)
            for data in sse_events(response.iter_lines()):
                state.take(data)
                if stopper.stopped:
                    break
    except (httpx.HTTPError, httpx.StreamError, OSError, RuntimeError) as exc:
        if not stopper.stopped:
            explained = explain_connect(exc, target)
            reply = state.reply(False)
            reply.error, reply.hint = explained.error, explained.hint
            return reply
    finally:
        stopper.hold(None)
    return state.reply(stopper.stopped)
