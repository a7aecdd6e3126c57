"""`vllmtui chat` as a real process against a real server process: the OpenAI STAND-IN
(tests/standin/openai_standin.py), which returns a VALID tool call when offered tools (random
weights seldom make one), with tools from a REAL MCP server over stdio (tests/support/mcp_server.py,
written with the SDK's server side). The real tiny vLLM is in tests/e2e/chat."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helpers import ROOT, wait_for
from vllmtui.core.settings import Settings

MCP_SERVER = ROOT / "tests" / "support" / "mcp_server.py"
TOOLS = {"enable_auto_tool_choice": True, "tool_call_parser": "hermes"}


@pytest.fixture
def mcp_yaml(settings: Settings) -> Callable[..., Path]:
    def write(**servers: dict[str, Any]) -> Path:
        servers = servers or {"weather": {"command": sys.executable, "args": [str(MCP_SERVER)]}}
        settings.config_dir.mkdir(parents=True, exist_ok=True)
        path = settings.config_dir / "mcp.yaml"
        path.write_text(yaml.safe_dump({"mcpServers": servers}))
        return path

    return write


@pytest.fixture
def started(backend_profile: Callable[..., Path], run_cli: Callable[..., Any]) -> Callable[..., str]:
    def start(name: str = "talk", tool_args: str | None = None, env: dict[str, str] | None = None,
              **fields: object) -> str:
        env = {"STANDIN_CHUNKS": "4", **(env or {})}
        if tool_args is not None:
            env["STANDIN_TOOL_ARGS"] = tool_args
        backend_profile(name, env=env, **{**TOOLS, **fields})
        run_cli("start", name, "--wait", "--timeout", "60", check=True)
        return name

    return start


def _json(proc: Any) -> dict[str, Any]:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_one_message_streamed_and_saved_then_listed_reopened_exported(started, run_cli) -> None:
    name = started()
    proc = run_cli("chat", name, "-m", "hello", "--no-tools", "--json", "--system", "be brief",
                   "--set", "temperature=0.1")
    assert proc.returncode == 0, proc.stderr
    out = _json(proc)
    assert out["reply"] == "tok0 tok1 tok2 tok3 " and out["error"] is None
    assert out["stats"]["completion_tokens"] == 4 and out["stats"]["time_to_first_token"] is not None
    saved = Path(out["conversation"])
    assert saved.parent.name == "chats" and saved.parent.parent.parent.name == name  # in the run dir
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert lines[0]["system"] == "be brief" and lines[-2]["message"] == {"role": "user", "content": "hello"}
    assert any(line.get("settings", {}).get("temperature") == 0.1 for line in lines)

    again = run_cli("chat", name, "-m", "and again", "--no-tools", "--json", "--open", "latest")
    assert again.returncode == 0, again.stderr
    assert _json(again)["conversation"] == str(saved)
    roles = [json.loads(line)["message"]["role"] for line in saved.read_text().splitlines()
             if json.loads(line)["type"] == "message"]
    assert roles == ["user", "assistant", "user", "assistant"]

    listed = run_cli("chat", name, "--list")
    assert saved.stem in listed.stdout and "hello" in listed.stdout
    exported = run_cli("chat", name, "--export", saved.stem[:12], "--output", "-")
    assert exported.returncode == 0, exported.stderr
    assert "**You:** hello" in exported.stdout and "**You:** and again" in exported.stdout
    assert "*4 tokens · TTFT" in exported.stdout


def test_full_tool_loop_through_a_real_mcp_server(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"city": "Paris", "days": 3}')
    proc = run_cli("chat", name, "-m", "weather in Paris?", "--tool", "get_weather", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    out = _json(proc)
    [call] = out["tool_calls"]
    assert call["name"] == "get_weather" and call["matches"] and call["answer"] == "always"
    assert call["result"].startswith("Paris: ") and "3 days" in call["result"] and not call["is_error"]
    assert out["reply"] == f"The tool said: {call['result']}"  # the result went back to the model


def test_a_call_that_breaks_its_schema_is_shown_and_the_tools_error_goes_back(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"days": 3}')
    out = _json(run_cli("chat", name, "-m", "weather?", "--tool", "get_weather", "--yes", "--json"))
    [call] = out["tool_calls"]
    assert not call["matches"] and "'city' is a required property" in call["problem"]
    assert call["is_error"] and "city" in call["result"]
    assert out["reply"].startswith("The tool said: ")


def test_tool_calls_need_consent(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"city": "Oslo"}')
    proc = run_cli("chat", name, "-m", "weather?", "--tool", "get_weather", "--json")
    out = _json(proc)
    assert out["tool_calls"][0]["answer"] == "deny" and "declined" in out["tool_calls"][0]["result"]
    assert "allow tool calls with --yes" in proc.stderr


def test_mcp_server_that_does_not_start_is_named_with_its_stderr(started, run_cli, mcp_yaml) -> None:
    mcp_yaml(broken={"command": sys.executable, "args": ["-c", "import sys; sys.exit('no such api key')"]},
             weather={"command": sys.executable, "args": [str(MCP_SERVER)]})
    name = started(tool_args='{"city": "Rome"}')
    proc = run_cli("chat", name, "-m", "weather?", "--tool", "get_weather", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "broken" in proc.stderr and "no such api key" in proc.stderr and "Traceback" not in proc.stderr
    assert _json(proc)["tool_calls"][0]["result"].startswith("Rome: ")


def test_user_mistakes_are_clear_and_change_nothing(started, run_cli, backend_profile, mcp_yaml, settings) -> None:
    backend_profile("idle")
    proc = run_cli("chat", "idle", "-m", "hi")
    assert proc.returncode == 2 and "idle is stopped: start it with `vllmtui start idle`" in proc.stderr
    name = started("plain", tool_args='{"city": "x"}', enable_auto_tool_choice=None, tool_call_parser=None)
    mcp_yaml()
    proc = run_cli("chat", name, "-m", "hi", "--tool", "get_weather", "--yes")
    assert proc.returncode == 2
    assert "no tool parser" in proc.stderr and "tool_call_parser: hermes" in proc.stderr
    assert "plain.yaml" in proc.stderr
    proc = run_cli("chat", name, "-m", "hi", "--tool", "nope", "--yes")
    assert proc.returncode == 2 and "--tool nope: no MCP tool of that name" in proc.stderr
    assert "get_weather" in proc.stderr
    proc = run_cli("chat", name, "-m", "hi", "--no-tools", "--set", "temperature=5")
    assert proc.returncode == 2 and "out of range" in proc.stderr
    (settings.config_dir / "mcp.yaml").write_text("mcpServers:\n  w:\n    comand: x\n")
    proc = run_cli("chat", name, "-m", "hi")
    assert "mcp.yaml:3" in proc.stderr and "did you mean" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == 0  # the chat itself still works, without tools
    for args in (("--open", "nope"), ("--export", "nope")):
        proc = run_cli("chat", name, "-m", "hi", "--no-tools", *args)
        assert proc.returncode == 2 and "not a saved conversation" in proc.stderr


def test_through_the_gateway(backend_profile, gateway, run_cli) -> None:
    backend_profile("gw", env={"STANDIN_CHUNKS": "2"})
    gateway()
    proc = run_cli("chat", "--gateway", "gw-model", "-m", "hello", "--no-tools", "--json")
    assert proc.returncode == 0, proc.stderr
    out = _json(proc)
    assert out["reply"] == "tok0 tok1 " and out["model"] == "gw-model"  # started on demand
    assert "/gateway/chats/" in out["conversation"]


def test_a_failing_tool_s_error_goes_back_to_the_model(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"reason": "disk full"}')
    out = _json(run_cli("chat", name, "-m", "try it", "--tool", "fail", "--yes", "--json"))
    [call] = out["tool_calls"]
    assert call["matches"] and call["is_error"] and "failed on purpose: disk full" in call["result"]
    assert "failed on purpose: disk full" in out["reply"]


def test_the_interactive_chat_in_a_real_terminal(started, settings, cli_env, tmux) -> None:
    """Typed into a real terminal (a tmux pane): Ctrl-C stops a slow reply and the chat goes
    on, /set, /new, /quit; both conversations saved."""
    name = started("slow", env={"STANDIN_CHUNKS": "400", "STANDIN_CHUNK_DELAY": "0.03"})
    term = "chat-term"
    tmux.new_session(term, [sys.executable, "-m", "vllmtui", "chat", name, "--no-tools"], cwd=str(ROOT),
                     pane_env={**cli_env, "TERM": "xterm"}, width=150, height=50)

    def screen() -> str:
        return "\n".join(tmux.capture(term, 300))

    try:
        wait_for(lambda: "chat with slow-model" in screen(), 30, what="the chat's banner")
        tmux.send_keys(term, "hello", "Enter")
        wait_for(lambda: "tok5" in screen(), 30, what="the reply streaming")
        tmux.send_keys(term, "C-c")
        wait_for(lambda: "stopped]" in screen(), 10, what="the reply stopped by Ctrl-C")
        assert "tok390" not in screen()
        tmux.send_keys(term, "/set temperature=0.3", "Enter")
        wait_for(lambda: '"temperature": 0.3' in screen(), 10, what="/set")
        tmux.send_keys(term, "/new", "Enter")
        wait_for(lambda: "new conversation" in screen(), 10, what="/new")
        tmux.send_keys(term, "second chat", "Enter")
        wait_for(lambda: "tok5" in screen().split("new conversation")[-1], 30, what="the second reply")
        tmux.send_keys(term, "C-c")
        wait_for(lambda: screen().count("stopped]") == 2, 10, what="the second stop")
        tmux.send_keys(term, "/quit", "Enter")
        wait_for(lambda: "saved:" in screen(), 10, what="the saved path")
    finally:
        tmux.kill_session(term)
    chats = sorted((settings.state_dir / "runs" / name).glob("*/chats/*.jsonl"))
    firsts = sorted(json.loads(p.read_text().splitlines()[1])["message"]["content"] for p in chats)
    assert firsts == ["hello", "second chat"]
    # (both may be made within one second: their names do not sort by time then)
    [later] = [p for p in chats if json.loads(p.read_text().splitlines()[1])["message"]["content"] == "second chat"]
    second = [json.loads(line) for line in later.read_text().splitlines()]
    assert second[0]["settings"]["temperature"] == 0.3  # the new conversation keeps the settings
    assert second[-1]["stats"]["stopped"] is True


# Found on the H200 run of 2026-12-04 (docs/gpu-validation.md): a named tool_choice with random
# weights ran out of max_tokens inside the arguments' JSON string; the next round sent the cut-off
# call back and vLLM 0.26 answered the whole request with 400 "Unterminated string starting at".
def test_a_call_cut_off_at_max_tokens_is_not_run_and_says_to_raise_max_tokens(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"city": "Par', env={"STANDIN_TOOL_FINISH": "length"})
    proc = run_cli("chat", name, "-m", "weather?", "--tool", "get_weather", "--yes", "--json",
                   "--set", "max_tokens=20")
    out = _json(proc)
    assert proc.returncode == 1
    assert "max_tokens 20" in out["error"] and "not run" in out["error"] and "max_tokens=" in out["hint"]
    [call] = out["tool_calls"]
    assert call["is_error"] and "cut off" in call["result"]
    again = run_cli("chat", name, "-m", "try again", "--no-tools", "--json", "--open", "latest")
    assert again.returncode == 0, again.stderr  # the saved conversation is still one the server takes
    assert _json(again)["reply"]


def test_arguments_that_are_not_json_go_back_as_an_empty_object(started, run_cli, mcp_yaml) -> None:
    mcp_yaml()
    name = started(tool_args='{"city": Paris}')
    proc = run_cli("chat", name, "-m", "weather?", "--tool", "get_weather", "--yes", "--json")
    out = _json(proc)
    assert proc.returncode == 0, out
    [call] = out["tool_calls"]
    assert not call["matches"] and "not JSON" in call["problem"] and call["is_error"]
    assert out["reply"].startswith("The tool said: Error: the arguments are not JSON")
    saved = [json.loads(line) for line in Path(out["conversation"]).read_text().splitlines()]
    kept = [m["message"]["tool_calls"][0]["function"]["arguments"] for m in saved
            if m["type"] == "message" and m["message"].get("tool_calls")]
    assert kept == ['{"city": Paris}']  # the model's own words are kept
