"""The probe's tool-call checks on recorded vLLM replies (tests/data/probe: `vllm-0.32-*`
recorded from the real CPU server with random weights; `constructed-*` are those replies with
the message replaced, for cases random weights cannot produce on demand: a valid call, a call
left as text, an unknown tool name), and user tools files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import DATA as TESTS_DATA
from vllmtui.core.errors import UsageError
from vllmtui.probes.toolcheck import (
    BUILTIN_TOOLS,
    Check,
    call_left_as_text,
    check_final_answer,
    check_tool_reply,
    load_tools_file,
    printable,
)

DATA = TESTS_DATA / "probe"


def reply(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def by_name(checks: tuple[Check, ...]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_required_reply_with_number_arguments_fails_the_schema_check() -> None:
    checks = by_name(check_tool_reply(reply("vllm-0.32-tools-required-number-args"), BUILTIN_TOOLS, "required"))
    assert checks["tool_calls present and parsed"].outcome == "pass"
    assert checks["names are offered tools"].outcome == "pass"
    assert checks["arguments parse as JSON"].outcome == "pass"  # "178003" is JSON...
    schema = checks["arguments match the tool's JSON Schema"]
    assert schema.outcome == "fail"  # ...but not an object
    assert "get_weather" in schema.detail and "is not of type 'object'" in schema.detail


def test_named_reply_with_string_arguments_fails_the_schema_check() -> None:
    checks = by_name(check_tool_reply(reply("vllm-0.32-tools-named-string-args"), BUILTIN_TOOLS, "get_weather"))
    assert checks["calls the named tool get_weather"].passed
    assert checks["arguments match the tool's JSON Schema"].outcome == "fail"


def test_auto_text_answer_is_only_a_warning() -> None:
    checks = by_name(check_tool_reply(reply("vllm-0.32-tools-auto-text-answer"), BUILTIN_TOOLS, "auto"))
    present = checks["tool_calls present and parsed"]
    assert present.outcome == "warn" and "auto" in present.detail
    assert "arguments parse as JSON" not in checks


def test_required_without_tool_calls_fails() -> None:
    checks = by_name(check_tool_reply(reply("vllm-0.32-tools-auto-text-answer"), BUILTIN_TOOLS, "required"))
    assert checks["tool_calls present and parsed"].outcome == "fail"


def test_valid_call_passes_every_check() -> None:
    checks = check_tool_reply(reply("constructed-tools-valid-call"), BUILTIN_TOOLS, "get_weather")
    assert [c.outcome for c in checks] == ["pass"] * len(checks)
    assert by_name(checks)["arguments match the tool's JSON Schema"].detail.startswith("get_weather: {")


def test_call_left_as_text_in_content_is_named_as_such() -> None:
    checks = by_name(check_tool_reply(reply("constructed-tools-left-as-text"), BUILTIN_TOOLS, "get_weather"))
    present = checks["tool_calls present and parsed"]
    assert present.outcome == "fail"
    assert "the call was left as text in content: <tool_call>" in present.detail
    assert checks["finished before max_tokens"].outcome == "warn"


def test_unknown_name_bad_json_and_enum_violation() -> None:
    checks = by_name(check_tool_reply(reply("constructed-tools-unknown-name-bad-json"), BUILTIN_TOOLS, "required"))
    assert checks["names are offered tools"].outcome == "fail"
    assert "get_wether" in checks["names are offered tools"].detail
    assert checks["arguments parse as JSON"].outcome == "fail"
    assert "is not JSON" in checks["arguments parse as JSON"].detail
    schema = checks["arguments match the tool's JSON Schema"]
    assert schema.outcome == "fail" and "set_unit: unit: 'kelvin' is not one of" in schema.detail


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>', True),
        ('[TOOL_CALLS][{"name": "f", "arguments": {}}]', True),
        ('{"name": "get_time", "parameters": {}}', True),
        ("The weather is nice </tool_call>", False),
        ('{"answer": 42}', False),
        ("", False),
    ],
)
def test_call_left_as_text_detection(content: str, found: bool) -> None:
    assert (call_left_as_text(content) is not None) is found


def test_final_answer_checks() -> None:
    result = {"city": "Paris", "forecast_celsius": [21, 19, 23], "sky": "sunny"}
    good = by_name(check_final_answer(reply("constructed-roundtrip-good-answer"), result))
    assert good["answer is text, not another tool call"].passed
    assert good["answer uses the tool result"].passed
    random = by_name(check_final_answer(reply("vllm-0.32-roundtrip-final-answer"), result, 64))
    assert random["answer is text, not another tool call"].passed  # text, though gibberish
    assert random["finished before max_tokens"].outcome == "warn"
    again = by_name(check_final_answer(reply("vllm-0.32-tools-required-number-args"), result))
    assert again["answer is text, not another tool call"].outcome == "fail"


def test_tools_file_json_and_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(
        "- type: function\n  function:\n    name: lookup\n    description: find a thing\n"
        "    parameters: {type: object, properties: {q: {type: string}}, required: [q]}\n"
        "- name: ping\n"
    )
    tools = load_tools_file(path)
    assert [t.name for t in tools] == ["lookup", "ping"]
    assert tools[0].source == str(path) and tools[1].parameters["type"] == "object"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "expected a list of tools"),
        ("- name: 'bad name'\n", "tool #1: 'name' must be"),
        ("- name: f\n  parameters: {type: 12}\n", "tool #1 (f): 'parameters' is not a valid JSON Schema"),
        ("- name: get_weather\n", "used twice or by a built-in"),
        ("[", ":1: not valid YAML: the bracket [ opened on this line is never closed"),
        ("- name: a\n  name: b\n", ":2: 0.name: given twice (lines 1 and 2): keep one"),
        ("a: &a [*a]\n", ":1: an alias refers to the value that contains it"),
    ],
)
def test_tools_file_errors_name_file_and_tool(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tools.json"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_tools_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_binary_tools_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_bytes(b"[\xff\xfe]")
    with pytest.raises(UsageError, match=f"tools file {path}:1: not UTF-8 text"):
        load_tools_file(path)


def test_printable_escapes_terminal_control_characters() -> None:
    assert printable("a\x1b[31mb\nc\u001f") == "a\\x1b[31mb\nc\\x1f"


def test_infinity_arguments_are_not_json() -> None:
    """Seen from the random-weight model: `"arguments": "Infinity"` (Python's json accepts it)."""
    data = reply("constructed-tools-valid-call")
    data["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "Infinity"
    checks = by_name(check_tool_reply(data, BUILTIN_TOOLS, "get_weather"))
    assert checks["arguments parse as JSON"].outcome == "fail"
    assert "Infinity is not a JSON value" in checks["arguments parse as JSON"].detail
