"""Unit tests of the probe checks and failure explanations on recorded vLLM replies
(tests/data/probe: `vllm-0.32-*` recorded from the real CPU server with random weights;
`constructed-*` are those replies with the message replaced, for cases random weights
cannot produce on demand: a valid call, a call left as text, an unknown tool name)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from vllmtui.core.errors import UsageError
from vllmtui.probes.explain import explain_connect, explain_http
from vllmtui.probes.report import report_lines
from vllmtui.probes.runner import (
    ChatStats,
    ProbeResult,
    ProbeStep,
    ProbeTarget,
    _sse_events,
    _take_chunk,
    chat_checks,
    last_probe,
    latest_probes,
    save_result,
)
from vllmtui.probes.snippets import client_snippets
from vllmtui.probes.toolcheck import (
    BUILTIN_TOOLS,
    Check,
    call_left_as_text,
    check_final_answer,
    check_tool_reply,
    load_tools_file,
    printable,
)

DATA = Path(__file__).parent / "data" / "probe"


def reply(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def by_name(checks: tuple[Check, ...]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def target(**kw: Any) -> ProbeTarget:
    base = {"name": "tiny", "base_url": "http://127.0.0.1:8100", "model": "tiny",
            "profile_path": Path("/p/tiny.yaml")}
    base.update(kw)
    return ProbeTarget(**base)


# ---------------------------------------------------------------- tool-call checks


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


# ---------------------------------------------------------------- tools files


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
        ("[", "not valid JSON or YAML"),
    ],
)
def test_tools_file_errors_name_file_and_tool(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tools.json"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        load_tools_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


# ---------------------------------------------------------------- explanations


def test_401_names_the_variable() -> None:
    body = '{"error":"Unauthorized"}'
    unset = explain_http(401, body, target(api_key_env="TINY_KEY"))
    assert "API key: set TINY_KEY" in unset.hint
    wrong = explain_http(401, body, target(api_key_env="TINY_KEY", api_key="x"))
    assert "refused" in wrong.error and "TINY_KEY" in wrong.hint
    none = explain_http(401, body, target())
    assert "api_key_env" in none.hint


def test_404_lists_served_models() -> None:
    body = json.dumps({"error": {"message": "The model `nope` does not exist. Valid aliases: tiny.",
                                 "type": "NotFoundError", "param": "model", "code": 404}})
    exp = explain_http(404, body, target(model="nope"), ["tiny"])
    assert "'nope' is not served" in exp.error
    assert "served_model_name: tiny" in exp.hint and "--model" in exp.hint


@pytest.mark.parametrize(
    "message",
    [
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        'tool_choice="required" requires --tool-call-parser to be set',
    ],
)
def test_400_without_tool_parser_names_profile_fields(message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "BadRequestError", "code": 400}})
    exp = explain_http(400, body, target())
    assert "enable_auto_tool_choice: true" in exp.hint and "tool_call_parser: hermes" in exp.hint
    assert "/p/tiny.yaml" in exp.hint


class _Status:
    def __init__(self, state: str, phase_label: str | None = None, detail: str = "", eta: float | None = None):
        self.state, self.phase_label, self.detail, self.eta, self.failure = state, phase_label, detail, eta, None


def test_refused_explained_by_status() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    starting = explain_connect(refused, target(), _Status("starting", "loading weights", eta=12))
    assert starting.error == "server still starting: phase loading weights (ready in about 12 s)"
    stopped = explain_connect(refused, target(), _Status("stopped"))
    assert "not running" in stopped.error and "vllmtui start tiny" in stopped.hint
    assert "nothing listens" in explain_connect(refused, target()).error
    tunnel = explain_connect(refused, target(tunnelled=True), _Status("ready"))
    assert "tunnel" in tunnel.hint
    assert "read timeout" in explain_connect(httpx.ReadTimeout("t"), target()).error


# ---------------------------------------------------------------- chat stream, results


def test_sse_chunks_accumulate_text_usage_and_finish() -> None:
    lines = (DATA / "vllm-0.32-chat-stream.txt").read_text().splitlines()
    acc: dict[str, Any] = {"text": [], "first": None, "last": None, "usage": None,
                           "finish": None, "chunks": 0, "error": None}
    pieces: list[str] = []
    for data in _sse_events(iter(lines)):
        _take_chunk(data, acc, 0.0, pieces.append)
    assert "".join(pieces) == "".join(acc["text"]) != ""
    assert acc["finish"] in ("stop", "length")
    assert acc["usage"]["completion_tokens"] >= 1


def test_chat_checks() -> None:
    stats = ChatStats(0.01, 0.2, 50.0, 10, 8, "length", 9)
    checks = by_name(chat_checks("hi", stats, None, 8))
    assert checks["text streamed"].passed and checks["finished before max_tokens"].outcome == "warn"
    broken = by_name(chat_checks("", ChatStats(None, 0.2, None, None, None, None, 1), None, 8))
    assert broken["text streamed"].outcome == "fail" and broken["stream ended cleanly"].outcome == "fail"


def _result(kind: str, at: float, ok: bool = True) -> ProbeResult:
    step = ProbeStep("x", ok, (Check("c", ok, "d"),), status_code=200, seconds=0.1)
    return ProbeResult(kind, "tiny", "http://h:1", "tiny", at, 0.1, ok, (step,))


def test_results_round_trip_through_json_and_latest_per_kind(tmp_path: Path) -> None:
    first = save_result(tmp_path, _result("tools", 1000.0, ok=False))
    save_result(tmp_path, _result("tools", 2000.0))
    chat = save_result(tmp_path, replace_chat(_result("chat", 1500.0)))
    latest = latest_probes(tmp_path)
    assert set(latest) == {"tools", "chat"}
    assert latest["tools"].started_at == 2000.0 and latest["tools"].ok
    assert latest["chat"] == chat
    assert last_probe(tmp_path).started_at == 2000.0  # type: ignore[union-attr]
    assert Path(first.saved_to or "").name.startswith("probe-tools-")
    assert latest_probes(None) == {} and last_probe(tmp_path / "missing") is None
    assert any("FAIL" in line for line in report_lines(first))


def replace_chat(result: ProbeResult) -> ProbeResult:
    from dataclasses import replace

    return replace(result, chat=ChatStats(0.05, 0.5, 40.0, 12, 20, "stop", 21), text="hello")


def test_printable_escapes_terminal_control_characters() -> None:
    assert printable("a\x1b[31mb\nc\u001f") == "a\\x1b[31mb\nc\\x1f"


def test_snippets_name_the_variable_never_the_key() -> None:
    snips = client_snippets("http://127.0.0.1:18100/v1", "my 'model'", "TINY_KEY")
    assert "http://127.0.0.1:18100/v1/chat/completions" in snips.curl
    assert "$TINY_KEY" in snips.curl and 'os.environ["TINY_KEY"]' in snips.python
    assert 'base_url="http://127.0.0.1:18100/v1"' in snips.python
    assert 'model="my \'model\'"' in snips.python
    open_ = client_snippets("http://h:1", "m")
    assert "Authorization" not in open_.curl and '"EMPTY"' in open_.python



def test_infinity_arguments_are_not_json() -> None:
    """Seen from the random-weight model: `"arguments": "Infinity"` (Python's json accepts it)."""
    data = reply("constructed-tools-valid-call")
    data["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "Infinity"
    checks = by_name(check_tool_reply(data, BUILTIN_TOOLS, "get_weather"))
    assert checks["arguments parse as JSON"].outcome == "fail"
    assert "Infinity is not a JSON value" in checks["arguments parse as JSON"].detail
