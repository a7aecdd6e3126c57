"""Probes: real test requests against a running server, the way users check one by hand
(`curl /v1/models`, a chat, a tool call, a tool round trip), timed, checked and saved.

A probe never raises for a failed request and never hangs: connect/read timeouts are
bounded, a `threading.Event` cancels it, and every failure is a step that says what
failed and how to fix it. Results are frozen dataclasses saved as JSON in the server's
run directory (`probe-<kind>-<UTC>.json`); `latest_probes` reads them back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from vllmtui.probes.explain import Explanation, explain_connect, explain_http
from vllmtui.probes.results import (
    ChatStats,
    ProbeResult,
    ProbeStep,
    last_probe,
    latest_probes,
    probe_results,
    save_result,
)
from vllmtui.probes.spec import KINDS, ProbeOptions, ProbeTarget, TextCallback
from vllmtui.probes.stream import chat_checks, chat_stats, sse_events, take_chunk
from vllmtui.probes.toolcheck import (
    BUILTIN_TOOLS,
    DEFAULT_NAMED_TOOL,
    Check,
    ToolSpec,
    check_final_answer,
    check_tool_reply,
    fake_tool_result,
    reply_message,
    short,
)

T = TypeVar("T")
__all__ = [
    "ChatStats", "ProbeResult", "ProbeStep", "last_probe", "latest_probes", "probe_results",
    "run_probe", "save_result",
]


class _Cancelled(Exception):
    pass


class _Failed(Exception):
    def __init__(self, step: ProbeStep):
        super().__init__(step.error)
        self.step = step


# ---------------------------------------------------------------- the runner


class _Probe:
    """One probe's state: client, served models, steps so far."""

    def __init__(
        self,
        target: ProbeTarget,
        options: ProbeOptions,
        cancel: threading.Event | None,
        status_of: Callable[[], Any] | None,
    ):
        self.target = target
        self.options = options
        self.cancel = cancel or threading.Event()
        self.status_of = status_of
        self.served: list[str] = []
        self.max_model_len: int | None = None
        self.steps: list[ProbeStep] = []
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        self.client = httpx.Client(
            base_url=target.base_url,
            headers=headers,
            timeout=httpx.Timeout(options.read_timeout, connect=options.connect_timeout),
        )

    # -- plumbing

    def run_cancellable(self, fn: Callable[[], T]) -> T:
        """Run a blocking request in a helper thread so that `cancel` returns at once; the
        helper ends by itself within the read timeout."""
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=work, daemon=True, name="vllmtui-probe")
        thread.start()
        while thread.is_alive():
            if self.cancel.wait(0.05):
                raise _Cancelled
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    def explain(self, label: str, exc: Exception, began: float) -> _Failed:
        explanation: Explanation = explain_connect(
            exc, self.target, self.status_of() if self.status_of else None
        )
        return _Failed(ProbeStep(label, False, error=explanation.error, hint=explanation.hint,
                                 seconds=time.monotonic() - began))

    def fail_http(self, label: str, response: httpx.Response, began: float) -> _Failed:
        try:
            body = response.text
        except (httpx.HTTPError, httpx.StreamError):
            body = ""
        explanation = explain_http(response.status_code, body, self.target, self.served)
        return _Failed(ProbeStep(label, False, error=explanation.error, hint=explanation.hint,
                                 status_code=response.status_code,
                                 seconds=time.monotonic() - began, received=short(body)))

    def post(self, label: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """POST /v1/chat/completions (not streamed); returns (reply, seconds)."""
        began = time.monotonic()

        def call() -> httpx.Response:
            return self.client.post("/v1/chat/completions", json=body)

        try:
            response = self.run_cancellable(call)
        except httpx.HTTPError as exc:
            raise self.explain(label, exc, began) from None
        if response.status_code != 200:
            raise self.fail_http(label, response, began)
        try:
            reply = response.json()
        except ValueError:
            raise _Failed(ProbeStep(label, False, error="the answer is not JSON",
                                    status_code=200, received=short(response.text))) from None
        return reply, time.monotonic() - began

    def sampling(self, max_tokens: int | None = None) -> dict[str, Any]:
        params = {k: v for k, v in self.target.generation.items() if v is not None}
        if max_tokens is not None:
            params["max_tokens"] = max(max_tokens, int(params.get("max_tokens") or 0))
        if self.max_model_len and params.get("max_tokens"):
            params["max_tokens"] = min(int(params["max_tokens"]), max(16, self.max_model_len // 2))
        return params

    # -- steps

    def models(self) -> None:
        """GET /v1/models: reachable, key accepted, model served."""
        label = "GET /v1/models"
        began = time.monotonic()
        try:
            response = self.run_cancellable(lambda: self.client.get("/v1/models"))
        except httpx.HTTPError as exc:
            raise self.explain(label, exc, began) from None
        if response.status_code != 200:
            raise self.fail_http(label, response, began)
        try:
            cards = [c for c in response.json().get("data", []) if isinstance(c, dict)]
        except (ValueError, AttributeError):
            cards = []
        self.served = [str(c.get("id")) for c in cards]
        card = next((c for c in cards if c.get("id") == self.target.model), None)
        seconds = time.monotonic() - began
        if card is None:
            explanation = explain_http(404, f"The model `{self.target.model}` does not exist.",
                                       self.target, self.served)
            raise _Failed(ProbeStep(label, False, error=explanation.error, hint=explanation.hint,
                                    status_code=200, seconds=seconds,
                                    received=", ".join(self.served) or "(no models)"))
        if isinstance(card.get("max_model_len"), int):
            self.max_model_len = card["max_model_len"]
        detail = f"{self.target.model} (max_model_len {self.max_model_len})"
        self.steps.append(ProbeStep(label, True, (Check("model is served", True, detail),),
                                    status_code=200, seconds=seconds, received=", ".join(self.served)))

    def chat(self, on_text: TextCallback | None) -> tuple[str, ChatStats]:
        """Streamed chat: text to `on_text` as it arrives; TTFT, tokens/s, counts."""
        label = "chat (streamed)"
        body = {
            "model": self.target.model,
            "messages": [{"role": "user", "content": self.options.prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.sampling(),
        }
        began = time.monotonic()
        acc: dict[str, Any] = {"text": [], "first": None, "last": None, "usage": None,
                               "finish": None, "chunks": 0, "error": None}

        def stream() -> int:
            with self.client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.fail_http(label, response, began)
                for data in sse_events(response.iter_lines()):
                    if self.cancel.is_set():
                        raise _Cancelled
                    if time.monotonic() - began > self.options.deadline:
                        acc["error"] = f"still streaming after {self.options.deadline:g} s: stopped"
                        break
                    take_chunk(data, acc, began, on_text)
            return 200

        try:
            self.run_cancellable(stream)
        except httpx.HTTPError as exc:
            raise self.explain(label, exc, began) from None
        total = time.monotonic() - began
        text = "".join(acc["text"])
        stats = chat_stats(acc, total)
        checks = chat_checks(text, stats, acc["error"], body.get("max_tokens"))
        ok = all(c.passed or not c.required for c in checks)
        self.steps.append(ProbeStep(label, ok, checks, status_code=200, seconds=total,
                                    received=short(text)))
        return text, stats

    def tool_call(self, choice: str, tools: Sequence[ToolSpec], named: ToolSpec) -> dict[str, Any]:
        """One request with tools and `tool_choice`; returns the reply (checks recorded)."""
        is_named = choice == "named"
        label = f"tool_choice={named.name}" if is_named else f"tool_choice={choice}"
        prompt = tool_prompt(named) if is_named else BUILTIN_TOOLS[0].example_prompt
        sampling = self.sampling(self.options.tool_max_tokens)
        body = {
            "model": self.target.model,
            "messages": [{"role": "user", "content": prompt}],
            "tools": [t.to_openai() for t in tools],
            "tool_choice": {"type": "function", "function": {"name": named.name}} if is_named else choice,
            **sampling,
        }
        reply, seconds = self.post(label, body)
        checks = check_tool_reply(reply, tools, named.name if is_named else choice,
                                  sampling.get("max_tokens"))
        ok = all(c.passed or not c.required for c in checks)
        message, finish = reply_message(reply)
        received = short({k: message.get(k) for k in ("content", "tool_calls") if message.get(k)})
        self.steps.append(ProbeStep(label, ok, checks, status_code=200, seconds=seconds,
                                    received=received, message=_kept(message, finish)))
        return reply

    def answer(self, tools: Sequence[ToolSpec], named: ToolSpec, reply: dict[str, Any]) -> str:
        """Send the tool's result back as a `tool` message; check the final answer."""
        label = "tool result -> answer"
        message, _ = reply_message(reply)
        calls = message.get("tool_calls") or []
        if not calls:
            raise _Failed(ProbeStep(label, False, error="no tool call to answer",
                                    hint="the first step got no parsed tool call (see above)"))
        call = calls[0]
        arguments = str((call.get("function") or {}).get("arguments") or "{}")
        result = fake_tool_result(named, arguments)
        sampling = self.sampling()
        body = {
            "model": self.target.model,
            "messages": [
                {"role": "user", "content": tool_prompt(named)},
                {"role": "assistant", "content": message.get("content") or None,
                 "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call.get("id") or "call_0",
                 "content": json.dumps(result)},
            ],
            "tools": [t.to_openai() for t in tools],
            **sampling,
        }
        final, seconds = self.post(label, body)
        checks = check_final_answer(final, result, sampling.get("max_tokens"))
        ok = all(c.passed or not c.required for c in checks)
        answer, finish = reply_message(final)
        text = str(answer.get("content") or "")
        self.steps.append(ProbeStep(label, ok, checks, status_code=200, seconds=seconds,
                                    received=short(text), message=_kept(answer, finish)))
        return text


def tool_prompt(tool: ToolSpec) -> str:
    """The user message that asks for `tool`: its example prompt, else one made from it."""
    return tool.example_prompt or f"Use the {tool.name} tool: {tool.description}".rstrip(": ")


def _kept(message: dict[str, Any], finish: str | None) -> dict[str, Any]:
    kept = {k: message.get(k) for k in ("role", "content", "tool_calls") if message.get(k) is not None}
    return {**kept, "finish_reason": finish}


def _tool_probe(probe: _Probe, kind: str) -> str:
    """`tools`: one request per `tool_choice` mode; `roundtrip`: a named tool call, its
    result sent back, the final answer (returned)."""
    options = probe.options
    tools = (*BUILTIN_TOOLS, *options.extra_tools)
    by_name = {t.name: t for t in tools}
    default = options.extra_tools[0].name if options.extra_tools else DEFAULT_NAMED_TOOL
    named = by_name.get(options.named_tool or default)
    if named is None:
        raise _Failed(ProbeStep("tool_choice=named", False,
                                error=f"no tool named {options.named_tool!r}",
                                hint=f"offered tools: {', '.join(by_name)}"))
    if kind == "tools":
        for choice in options.tool_choices:
            try:
                probe.tool_call(choice, tools, named)
            except _Failed as failed:  # one mode failing says nothing of the next
                probe.steps.append(failed.step)
        return ""
    if options.named_tool is None:
        named = by_name[DEFAULT_NAMED_TOOL]
    reply = probe.tool_call("named", tools, named)
    return probe.answer(tools, named, reply)


# ---------------------------------------------------------------- public API


def run_probe(
    kind: str,
    target: ProbeTarget,
    options: ProbeOptions | None = None,
    on_text: TextCallback | None = None,
    cancel: threading.Event | None = None,
    status_of: Callable[[], Any] | None = None,
    save: bool = True,
) -> ProbeResult:
    """Run one probe (`chat`, `tools` or `roundtrip`) and save it in the target's run dir.

    `on_text` gets each streamed text piece (from a helper thread); setting `cancel`
    ends the probe within ~0.1 s with `cancelled=True`. `status_of` returns the server's
    `ServerStatus`, read only when the connection fails (to say "still starting: phase X").
    Never raises for a failed request: the result's steps say what failed."""
    if kind not in KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; one of {', '.join(KINDS)}")
    options = options or ProbeOptions()
    probe = _Probe(target, options, cancel, status_of)
    started_at = time.time()
    began = time.monotonic()
    text = ""
    stats: ChatStats | None = None
    cancelled = False
    try:
        probe.models()
        if kind == "chat":
            text, stats = probe.chat(on_text)
        else:
            text = _tool_probe(probe, kind)
    except _Failed as failed:
        probe.steps.append(failed.step)
    except _Cancelled:
        cancelled = True
    except Exception as exc:  # noqa: BLE001 - a probe reports what failed, never raises into the UI
        probe.steps.append(ProbeStep("request", False, error=f"{type(exc).__name__}: {exc}",
                                     hint="an unexpected failure: please report it"))
    finally:
        probe.client.close()
    result = ProbeResult(
        kind=kind,
        server=target.name,
        base_url=target.base_url,
        model=target.model,
        started_at=started_at,
        seconds=round(time.monotonic() - began, 4),
        ok=not cancelled and bool(probe.steps) and all(s.ok for s in probe.steps),
        steps=tuple(probe.steps),
        text=text,
        chat=stats,
        cancelled=cancelled,
    )
    if save and target.run_dir is not None and target.run_dir.is_dir():
        result = save_result(target.run_dir, result)
    return result
