"""Tool-call checks: the built-in probe tools, user tools files, and the pass/fail checks
run on a chat completion that was offered tools. Pure functions on parsed JSON replies,
so every check is unit-tested on recorded replies."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from vllmtui.core import safeyaml
from vllmtui.core.errors import UsageError

TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# What tool calls look like when a parser did not turn them into `tool_calls`
# (hermes/qwen, mistral, llama 3 python tag, llama 4 / qwen3-coder function tags).
_CALL_MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<function=", "<|tool_call")
SNIPPET = 160


@dataclass(frozen=True)
class Check:
    """One pass/fail line. `required=False` checks only warn: they never fail a probe."""

    name: str
    passed: bool
    detail: str
    required: bool = True

    @property
    def outcome(self) -> str:
        """`pass`, `fail` or `warn` (a failed check that is not required)."""
        if self.passed:
            return "pass"
        return "fail" if self.required else "warn"


@dataclass(frozen=True)
class ToolSpec:
    """A function tool offered to the model: its name, description and JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    source: str = "built-in"
    example_prompt: str = ""

    def to_openai(self) -> dict[str, Any]:
        """The `tools` entry of a chat completion request."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "get_weather",
        "Weather forecast for a place.",
        {
            "type": "object",
            "properties": {
                "location": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "city name, e.g. Paris"},
                        "country": {"type": "string", "description": "country, e.g. France"},
                    },
                    "required": ["city"],
                    "additionalProperties": False,
                },
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["location"],
            "additionalProperties": False,
        },
        example_prompt="What is the weather in Paris, France for the next 3 days?",
    ),
    ToolSpec(
        "set_unit",
        "Choose the temperature unit for later answers.",
        {
            "type": "object",
            "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["unit"],
            "additionalProperties": False,
        },
        example_prompt="From now on give me temperatures in fahrenheit, please.",
    ),
    ToolSpec(
        "get_time",
        "The current time on the server. Takes no arguments.",
        {"type": "object", "properties": {}, "additionalProperties": False},
        example_prompt="What time is it right now?",
    ),
)
DEFAULT_NAMED_TOOL = "get_weather"


def short(value: Any, limit: int = SNIPPET) -> str:
    """A one-line, printable excerpt of what was received (control characters escaped)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- tools files


def load_tools_file(path: Path) -> tuple[ToolSpec, ...]:
    """Read user tools from JSON or YAML: a list (or `{tools: [...]}`) of OpenAI tool
    entries (`{type: function, function: {...}}`) or bare `{name, description, parameters}`.
    Raises UsageError naming the file, the tool and the fix."""
    try:
        _node, data = safeyaml.load_file(path, "a JSON or YAML list of tools")
    except safeyaml.YamlRefused as exc:
        raise UsageError("tools file " + "; ".join(exc.problems)) from None
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list) or not data:
        raise UsageError(
            f"tools file {path}: expected a list of tools, e.g."
            ' [{"type": "function", "function": {"name": ..., "parameters": {...}}}]'
        )
    tools: list[ToolSpec] = []
    for index, item in enumerate(data, 1):
        where = f"tools file {path}: tool #{index}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected a mapping with name and parameters")
        fn = item.get("function", item) if item.get("type", "function") == "function" else None
        if not isinstance(fn, dict):
            raise UsageError(f"{where}: only type 'function' tools can be probed")
        name = fn.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise UsageError(f"{where}: 'name' must be 1-64 letters, digits, '_' or '-'")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise UsageError(f"{where} ({name}): 'parameters' must be a JSON Schema object")
        try:
            jsonschema.validators.validator_for(params).check_schema(params)
        except jsonschema.SchemaError as exc:
            raise UsageError(
                f"{where} ({name}): 'parameters' is not a valid JSON Schema: {exc.message}"
            ) from None
        tools.append(
            ToolSpec(name, str(fn.get("description", "")), params, str(path),
                     str(fn.get("example_prompt", "")))
        )
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1 or n in {b.name for b in BUILTIN_TOOLS}})
    if dupes:
        raise UsageError(f"tools file {path}: tool name(s) used twice or by a built-in: {dupes}")
    return tuple(tools)


# ---------------------------------------------------------------- checks


def strict_json(text: str) -> Any:
    """json.loads without Python's NaN/Infinity extensions (not JSON; clients reject them)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON value")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None


def reply_message(reply: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The first choice's message and finish_reason of a chat completion reply."""
    choices = reply.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    return message or {}, choice.get("finish_reason")


def call_left_as_text(content: str | None) -> str | None:
    """The tool-call text a parser failed to extract from `content`, or None."""
    if not content:
        return None
    for marker in _CALL_MARKERS:
        at = content.find(marker)
        if at >= 0:
            return content[at:]
    stripped = content.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError:
            return None
        items = data if isinstance(data, list) else [data]
        if items and all(
            isinstance(i, dict) and "name" in i and ("arguments" in i or "parameters" in i)
            for i in items
        ):
            return stripped
    return None


def _calls(message: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        fn = fn if isinstance(fn, dict) else {}
        args = fn.get("arguments")
        out.append((str(fn.get("name")), args if isinstance(args, str) else json.dumps(args)))
    return out


def check_tool_reply(
    reply: dict[str, Any], offered: Sequence[ToolSpec], choice: str, max_tokens: int | None = None
) -> tuple[Check, ...]:
    """Checks for a reply to a request with tools and `tool_choice` = `auto`, `required`
    or a tool's name: tool_calls present and parsed, names offered, arguments JSON, and
    arguments valid against the tool's JSON Schema. Each check says what was received."""
    message, finish = reply_message(reply)
    calls = _calls(message)
    content = message.get("content") or ""
    as_text = call_left_as_text(content)
    checks: list[Check] = []
    present = "tool_calls present and parsed"
    if not calls:
        if as_text:
            checks.append(Check(present, False, f"the call was left as text in content: {short(as_text)}"))
        elif choice == "auto":
            checks.append(Check(present, False, "no tool call: the model answered in text (auto"
                                f" allows it): {short(content) or '(empty)'}", required=False))
        else:
            checks.append(Check(present, False, f"no tool_calls (finish_reason {finish});"
                                f" content: {short(content) or '(empty)'}"))
    else:
        listed = ", ".join(name for name, _ in calls)
        checks.append(Check(present, True, f"{len(calls)} call(s): {listed}"))
        if as_text:
            checks.append(Check("content holds no tool-call text", False,
                                f"besides tool_calls, content has: {short(as_text)}"))
        by_name = {t.name: t for t in offered}
        bad = [n for n, _ in calls if n not in by_name]
        if choice not in ("auto", "required"):
            wrong = [n for n, _ in calls if n != choice]
            checks.append(Check(f"calls the named tool {choice}", not wrong,
                                f"got {', '.join(wrong)}" if wrong else f"{choice}"))
        checks.append(Check(
            "names are offered tools", not bad,
            f"not offered: {', '.join(short(n, 60) for n in bad)} (offered: {', '.join(by_name)})"
            if bad else listed,
        ))
        parsed: list[tuple[str, Any]] = []
        errors: list[str] = []
        for name, args in calls:
            try:
                parsed.append((name, strict_json(args)))
            except ValueError as exc:
                errors.append(f"{name}: {short(args, 80)} is not JSON ({exc})")
        checks.append(Check("arguments parse as JSON", not errors, "; ".join(errors)
                            or "; ".join(f"{n}: {short(json.dumps(a), 80)}" for n, a in parsed)))
        problems: list[str] = []
        valid: list[str] = []
        for name, args in parsed:
            tool = by_name.get(name)
            if tool is None:
                continue
            error = jsonschema.exceptions.best_match(
                jsonschema.validators.validator_for(tool.parameters)(tool.parameters).iter_errors(args)
            )
            if error is None:
                valid.append(f"{name}: {short(json.dumps(args), 80)}")
            else:
                where = "/".join(str(p) for p in error.absolute_path) or "arguments"
                problems.append(f"{name}: {where}: {short(error.message, 120)}")
        if parsed:
            checks.append(Check("arguments match the tool's JSON Schema", not problems,
                                "; ".join(problems) or "; ".join(valid)))
    checks.append(_finish_check(finish, max_tokens))
    return tuple(checks)


def _finish_check(finish: str | None, max_tokens: int | None) -> Check:
    if finish == "length":
        limit = f" max_tokens={max_tokens}" if max_tokens else " max_tokens"
        return Check("finished before max_tokens", False,
                     f"finish_reason length: cut off at{limit}; raise it", required=False)
    return Check("finished before max_tokens", True, f"finish_reason {finish}")


def check_final_answer(
    reply: dict[str, Any], tool_result: dict[str, Any], max_tokens: int | None = None
) -> tuple[Check, ...]:
    """Checks for the assistant's answer after a `tool` message carried the tool's result."""
    message, finish = reply_message(reply)
    content = message.get("content") or ""
    calls = _calls(message)
    as_text = call_left_as_text(content)
    checks = []
    if calls:
        names = ", ".join(n for n, _ in calls)
        checks.append(Check("answer is text, not another tool call", False,
                            f"called {names} again instead of answering"))
    elif as_text:
        checks.append(Check("answer is text, not another tool call", False,
                            f"a tool call was left as text in content: {short(as_text)}"))
    elif not content.strip():
        checks.append(Check("answer is text, not another tool call", False, "empty answer"))
    else:
        checks.append(Check("answer is text, not another tool call", True, short(content)))
    values = [str(v) for v in _leaves(tool_result) if str(v).strip()]
    used = [v for v in values if v.lower() in content.lower()]
    checks.append(Check("answer uses the tool result", bool(used),
                        f"mentions {', '.join(used)}" if used
                        else f"mentions none of: {', '.join(values)}", required=False))
    checks.append(_finish_check(finish, max_tokens))
    return tuple(checks)


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in _leaves(v)]
    if isinstance(data, list):
        return [leaf for v in data for leaf in _leaves(v)]
    return [data]


def fake_tool_result(tool: ToolSpec, arguments: str) -> dict[str, Any]:
    """The result the round trip sends back as the `tool` message (made up, plausible)."""
    try:
        args = json.loads(arguments)
    except ValueError:
        args = {}
    args = args if isinstance(args, dict) else {}
    if tool.name == "get_weather":
        location: dict[str, Any] = args["location"] if isinstance(args.get("location"), dict) else {}
        city = location.get("city") if isinstance(location.get("city"), str) else "Paris"
        return {"city": city, "forecast_celsius": [21, 19, 23], "sky": "sunny"}
    if tool.name == "set_unit":
        return {"unit": args.get("unit", "celsius"), "status": "saved"}
    if tool.name == "get_time":
        return {"time": "14:05", "timezone": "UTC"}
    return {"status": "ok", "tool": tool.name}


def printable(text: str) -> str:
    """Text safe for a terminal: control characters escaped, newlines and tabs kept."""
    return "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
