"""McpHub against real MCP servers: tests/support/mcp_server.py (the SDK's MCPServer, over stdio
and streamable HTTP) and tests/support/mcp_legacy_server.py (a handshake-era server). Tools are
listed with their schemas, calls give text, failures are outcomes (never exceptions), a server
that does not start is a problem line quoting its stderr, and close() leaves no process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import mcp_server
from tests.support.helpers import ROOT, free_port, wait_for
from vllmtui.chat.mcp_config import McpServerSpec
from vllmtui.chat.mcp_hub import McpHub, McpTool, ToolOutcome
from vllmtui.probes.toolcheck import ToolSpec

SERVER = str(ROOT / "tests" / "support" / "mcp_server.py")
LEGACY = str(ROOT / "tests" / "support" / "mcp_legacy_server.py")
BROKEN_STDERR = "ModuleNotFoundError: No module named 'foo'"


def stdio(name: str, *args: str, **kw: object) -> McpServerSpec:
    return McpServerSpec(name, command=sys.executable, args=(SERVER, *args), **kw)  # type: ignore[arg-type]


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def gone(pids: set[int]) -> bool:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return not alive


@pytest.fixture(scope="module")
def hub() -> Iterator[McpHub]:
    specs = [
        stdio("weather", "--test-tools"),
        stdio("math", "--only", "add"),
        stdio("broken", "--stderr", BROKEN_STDERR, "--exit", "1"),
        McpServerSpec("old", command=sys.executable, args=(LEGACY,)),
        stdio("off", disabled=True),
    ]
    with McpHub(specs) as started:
        yield started


def test_tools_are_listed_with_their_schemas(hub):
    names = {t.name for t in hub.tools}
    assert names == {"get_weather", "fail", "sleep", "crash", "getenv", "cwd", "weather__add", "math__add", "echo"}
    weather = hub.tool("get_weather")
    assert isinstance(weather, McpTool)
    assert (weather.server, weather.remote_name) == ("weather", "get_weather")
    assert weather.description == "Weather forecast for a city over the next days."
    assert weather.schema["type"] == "object"
    assert set(weather.schema["properties"]) == {"city", "days"}
    assert weather.schema["required"] == ["city"]
    spec = weather.spec()
    assert spec == ToolSpec("get_weather", weather.description, parameters=weather.schema, source="mcp:weather")
    assert spec.to_openai()["function"]["parameters"]["properties"]["days"]["type"] == "integer"
    assert hub.tool("echo").server == "old"  # a handshake-era server (no server/discover) works too
    assert hub.tool("nope") is None


def test_a_call_gives_the_tools_text(hub):
    outcome = hub.call("get_weather", {"city": "Paris", "days": 3})
    assert isinstance(outcome, ToolOutcome)
    assert outcome == ToolOutcome(mcp_server.get_weather("Paris", 3), False, outcome.seconds)
    assert outcome.text.startswith("Paris: ") and outcome.text.endswith(" C for 3 days")
    assert 0 < outcome.seconds < 10
    assert hub.call("echo", {"text": "hello"}).text == "hello"


def test_two_servers_offering_one_name_are_prefixed(hub):
    assert hub.tool("add") is None
    assert (hub.tool("weather__add").server, hub.tool("math__add").server) == ("weather", "math")
    assert hub.tool("math__add").remote_name == "add"
    assert hub.call("weather__add", {"a": 2, "b": 3}).text == "5"
    assert hub.call("math__add", {"a": 20, "b": 3}).text == "23"


def test_failures_are_outcomes_not_exceptions(hub):
    failed = hub.call("fail", {"reason": "boom"})
    assert failed.is_error and "failed on purpose: boom" in failed.text
    bad_args = hub.call("get_weather", {"city": 1})
    assert bad_args.is_error and "city" in bad_args.text
    unknown = hub.call("get_wether", {})
    assert unknown.is_error and "no tool named 'get_wether'" in unknown.text
    assert "get_weather" in unknown.text and "math__add" in unknown.text
    assert not hub.call("math__add", {"a": 1, "b": 1}).is_error  # the server still works


def test_a_slow_tool_times_out_and_the_server_still_works(hub):
    started = time.monotonic()
    slow = hub.call("sleep", {"seconds": 5}, timeout=0.5)
    assert slow.is_error and slow.text == "sleep did not answer within 0.5 s"
    assert 0.4 < slow.seconds < 3 and time.monotonic() - started < 3
    assert hub.call("weather__add", {"a": 1, "b": 2}).text == "3"


def test_a_server_that_exits_at_once_is_a_problem_quoting_its_stderr(hub):
    assert hub.problems == (
        f"mcp server 'broken' did not start: it exited (or closed its stdout) before answering;"
        f" its stderr: {BROKEN_STDERR}",
    )
    assert all(t.server != "broken" for t in hub.tools)
    assert all(t.server != "off" for t in hub.tools)  # disabled: not started, not a problem


def test_only_env_reaches_a_server_and_cwd_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("VLLMTUI_TEST_SECRET", "s3cret")
    monkeypatch.setenv("VLLMTUI_TEST_OTHER", "not-passed")
    monkeypatch.setenv("LANG", "C.UTF-8")
    (tmp_path / "tools").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = stdio("envy", "--test-tools", env={"API_KEY": "${VLLMTUI_TEST_SECRET}", "PORT": "8080"},
                 cwd="~/tools")
    with McpHub([spec]) as hub:
        assert hub.problems == ()
        assert hub.call("getenv", {"name": "API_KEY"}).text == "s3cret"
        assert hub.call("getenv", {"name": "PORT"}).text == "8080"
        assert hub.call("getenv", {"name": "VLLMTUI_TEST_OTHER"}).text == "<unset>"
        assert hub.call("getenv", {"name": "LANG"}).text == "C.UTF-8"
        assert hub.call("getenv", {"name": "PATH"}).text == os.environ["PATH"]
        assert hub.call("cwd", {}).text == str(tmp_path / "tools")


def test_servers_that_cannot_start_say_why_without_spawning(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLMTUI_TEST_UNSET", raising=False)
    source = tmp_path / "mcp.yaml"
    specs = [
        McpServerSpec("nocmd", command="vllmtui-no-such-command"),
        stdio("nodir", cwd=str(tmp_path / "missing")),
        stdio("nokey", env={"API_KEY": "${VLLMTUI_TEST_UNSET}"}),
        McpServerSpec("noport", url=f"http://127.0.0.1:{free_port()}/mcp"),
    ]
    before = children()
    with McpHub(specs, source=source) as hub:
        assert children() == before
        problems = dict(zip([s.name for s in specs], hub.problems, strict=True))
    assert problems["nocmd"] == ("mcp server 'nocmd' did not start: command 'vllmtui-no-such-command' was"
                                 " not found on PATH: install it, or give its full path")
    assert problems["nodir"] == f"mcp server 'nodir' did not start: its cwd {tmp_path}/missing is not a directory"
    assert problems["nokey"].startswith(f"mcp server 'nokey' did not start: {source}: nokey.env.API_KEY needs"
                                        " $VLLMTUI_TEST_UNSET, which is not set: export it")
    assert problems["noport"].startswith(f"mcp server 'noport' did not start: cannot reach {specs[3].url}:")
    assert hub.tools == ()


def test_a_server_that_never_answers_times_out_and_is_stopped():
    before = children()
    started = time.monotonic()
    hub = McpHub([McpServerSpec("mute", command="sleep", args=("60",))], connect_timeout=1).start()
    try:
        assert time.monotonic() - started < 5
        (problem,) = hub.problems
        assert problem.startswith("mcp server 'mute' did not start: it did not answer the MCP handshake"
                                  " within 1 s")
    finally:
        hub.close()
    new = children() - before
    assert gone(new)


def test_a_server_that_dies_mid_session_makes_later_calls_errors():
    with McpHub([stdio("fragile", "--test-tools"), stdio("steady", "--only", "add")]) as hub:
        assert hub.call("steady__add", {"a": 1, "b": 1}).text == "2"
        died = hub.call("crash", {"code": 4})
        assert died.is_error
        assert died.text.startswith("crash: mcp server 'fragile' is not running: it stopped:")
        assert "its stderr: crashing on purpose with code 4" in died.text
        later = hub.call("get_weather", {"city": "Oslo"})
        assert later.is_error and "crashing on purpose with code 4" in later.text and later.seconds == 0.0
        assert hub.call("steady__add", {"a": 2, "b": 2}).text == "4"  # the other server is unaffected
        assert hub.call("fragile__add", {"a": 2, "b": 2}).is_error


def test_close_leaves_no_process_and_is_idempotent():
    before = children()
    hub = McpHub([stdio("one", "--test-tools", "--prefix", "one"), stdio("two", "--prefix", "t"),
                  McpServerSpec("old", command=sys.executable, args=(LEGACY,))]).start()
    ours = children() - before
    assert len(ours) == 3 and hub.problems == ()
    in_flight: list[ToolOutcome] = []
    caller = threading.Thread(target=lambda: in_flight.append(hub.call("one_sleep", {"seconds": 30})))
    caller.start()
    time.sleep(0.5)
    started = time.monotonic()
    hub.close()
    assert time.monotonic() - started < 8
    caller.join(5)
    assert in_flight and in_flight[0].is_error and "cancelled" in in_flight[0].text  # not left hanging
    assert gone(ours), [psutil.Process(p).cmdline() for p in ours if psutil.pid_exists(p)]
    hub.close()
    after = hub.call("one_get_weather", {"city": "Paris"})
    assert after.is_error and "closed" in after.text


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER, "--http", str(port), "--prefix", "web"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=30, what="the MCP HTTP server")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_streamable_http_server(http_server, monkeypatch):
    monkeypatch.setenv("VLLMTUI_TEST_TOKEN", "tok")
    spec = McpServerSpec("web", url=http_server, headers={"Authorization": "Bearer ${VLLMTUI_TEST_TOKEN}"})
    with McpHub([spec, stdio("local", "--only", "add")], source=Path("mcp.yaml")) as hub:
        assert hub.problems == ()
        assert {t.name for t in hub.tools} == {"web_get_weather", "web_add", "web_fail", "add"}
        assert hub.tool("web_add").spec().source == "mcp:web"
        assert hub.call("web_add", {"a": 40, "b": 2}).text == "42"
        assert hub.call("web_get_weather", {"city": "Lima"}).text == mcp_server.get_weather("Lima")
        failed = hub.call("web_fail", {"reason": "over http"})
        assert failed.is_error and "over http" in failed.text
