"""mcp.yaml, validated like a profile: every problem as file:line: field: message with the fix,
nothing used from a file with problems; secrets named by ${NAME}, resolved only on demand."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from vllmtui.chat.mcp_config import McpServerSpec, load_mcp_config, mcp_file, resolve
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings


@pytest.fixture
def msettings(tmp_path: Path) -> Settings:
    (tmp_path / "config").mkdir()
    return replace(Settings(), config_dir=tmp_path / "config", state_dir=tmp_path / "state")


def _write(settings: Settings, text: str) -> Path:
    path = mcp_file(settings)
    path.write_text(text)
    return path


GOOD = """\
mcpServers:
  weather:                 # stdio
    command: python
    args: [weather_server.py, --days, 3]
    env: {API_KEY: "${WEATHER_KEY}", PORT: 8080}
    cwd: ~/tools
    timeout: 2m
  search:                  # streamable HTTP
    url: https://example.com/mcp
    headers: {Authorization: "Bearer ${SEARCH_TOKEN}"}
  old:
    command: node
    disabled: true
"""


def test_no_file_means_no_servers(msettings):
    assert mcp_file(msettings) == msettings.config_dir / "mcp.yaml"
    assert load_mcp_config(mcp_file(msettings)) == ((), [])


def test_an_empty_file_or_empty_mapping_has_no_servers(msettings):
    for text in ("", "mcpServers:\n", "mcpServers: {}\n"):
        assert load_mcp_config(_write(msettings, text)) == ((), []), text


def test_a_valid_file(msettings):
    specs, problems = load_mcp_config(_write(msettings, GOOD))
    assert problems == []
    weather, search, old = specs
    assert weather == McpServerSpec(
        name="weather", command="python", args=("weather_server.py", "--days", "3"),
        env={"API_KEY": "${WEATHER_KEY}", "PORT": "8080"}, cwd="~/tools", url=None, headers={},
        timeout=120.0, disabled=False,
    )
    assert (weather.transport, search.transport) == ("stdio", "http")
    assert search.url == "https://example.com/mcp" and search.command is None
    assert search.headers == {"Authorization": "Bearer ${SEARCH_TOKEN}"} and search.timeout == 60.0
    assert old.disabled and old.args == ()


def test_references_resolve_from_the_environment_only_on_demand(msettings, monkeypatch):
    specs, _ = load_mcp_config(path := _write(msettings, GOOD))
    weather, search, _old = specs
    monkeypatch.setenv("WEATHER_KEY", "s3cret")
    monkeypatch.setenv("SEARCH_TOKEN", "tok")
    assert weather.resolved_env(path) == {"API_KEY": "s3cret", "PORT": "8080"}
    assert search.resolved_headers(path) == {"Authorization": "Bearer tok"}
    assert weather.env["API_KEY"] == "${WEATHER_KEY}"  # the spec keeps the name, never the value
    assert resolve("a ${WEATHER_KEY} b $WEATHER_KEY") == "a s3cret b $WEATHER_KEY"


def test_a_missing_variable_names_file_server_field_and_variable(msettings, monkeypatch):
    specs, _ = load_mcp_config(path := _write(msettings, GOOD))
    monkeypatch.delenv("WEATHER_KEY", raising=False)
    monkeypatch.setenv("SEARCH_TOKEN", "tok-value")
    with pytest.raises(UsageError) as caught:
        specs[0].resolved_env(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: weather.env.API_KEY needs $WEATHER_KEY, which is not set: export it")
    assert "\n" not in message and "Traceback" not in message
    with pytest.raises(UsageError, match=r"^mcp.yaml: x.headers.H needs \$NOPE_NOT_SET"):
        McpServerSpec("x", url="http://h/mcp", headers={"H": "${NOPE_NOT_SET}"}).resolved_headers()


SERVER = "mcpServers:\n  weather:\n"
BAD = [
    # the outline
    ("- weather\n", r"mcp.yaml:1: write a mapping with mcpServers: at the top"),
    ("servers:\n  weather:\n    command: python\n", r"mcp.yaml:1: servers: write mcpServers: \(the key Claude Desktop"),
    ("mcpServer:\n  weather:\n    command: python\n", r"mcp.yaml:1: mcpServer: unknown setting \(did you mean mcpServers\?\)"),
    ("mcpServers:\n  - name: weather\n    command: python\n", r"mcp.yaml:1: mcpServers: write a mapping of server name to its settings, not a list"),
    ("mcpServers: python\n", r"mcp.yaml:1: mcpServers: write a mapping of server name"),
    ("mcpServers:\n  ok:\n    command: a\n  'bad name':\n    command: python\n", r"mcp.yaml:4: mcpServers.bad name: a server name is 1 to 64 letters"),
    (f"mcpServers:\n  {'n' * 65}:\n    command: python\n", r"mcp.yaml:2: mcpServers.n+: a server name is 1 to 64"),
    ("mcpServers:\n  w: {command: a}\nextra: 1\n", r"mcp.yaml:3: extra: unknown setting: mcp.yaml holds only mcpServers:"),
    # command / url
    (SERVER + "    command: python\n    url: http://h/mcp\n", r"mcp.yaml:2: mcpServers.weather: give command: .* or url: .*, not both: remove one"),
    (SERVER + "    args: [x]\n", r"mcp.yaml:2: mcpServers.weather: give command: \(a program vllmtui runs over stdio, e.g. command: python\) or url:"),
    (SERVER + "    url: ftp://h/mcp\n", r"mcp.yaml:3: mcpServers.weather.url: 'ftp://h/mcp' is not an http:// or https:// URL"),
    (SERVER + "    url: example.com/mcp\n", r"mcp.yaml:3: mcpServers.weather.url: 'example.com/mcp' is not an http:// or https://"),
    (SERVER + "    command: ''\n", r"mcp.yaml:3: mcpServers.weather.command: is empty"),
    (SERVER + "    url: http://h/mcp\n    args: [x]\n", r"mcp.yaml:2: mcpServers.weather: args: not used by a url: server"),
    (SERVER + "    command: x\n    headers: {A: b}\n", r"mcp.yaml:2: mcpServers.weather: headers: not used by a command: server"),
    (SERVER + "    type: sse\n    url: http://h/sse\n", r"mcp.yaml:2: mcpServers.weather: the SSE transport is not supported"),
    # field types
    (SERVER, r"mcp.yaml:2: mcpServers.weather: give the server's settings under its name: command: \(and args:\) or url:"),
    (SERVER + "    command: python\n    env: [A=1]\n", r"mcp.yaml:4: mcpServers.weather.env: write a mapping of NAME: value, e.g. env: \{API_KEY: '\$\{MY_KEY\}'\}"),
    (SERVER + "    command: python\n    args: server.py --x\n", r"mcp.yaml:4: mcpServers.weather.args: write a list of arguments, e.g. args: \['server.py --x'\]"),
    (SERVER + "    command: python\n    args: [a, [b]]\n", r"mcp.yaml:4: mcpServers.weather.args.1: write one text value here, not a list"),
    (SERVER + "    command: python\n    env: {A: [1]}\n", r"mcp.yaml:4: mcpServers.weather.env.A: write one text value here, not a list"),
    (SERVER + "    command: python\n    env: {A: true}\n", r"mcp.yaml:4: mcpServers.weather.env.A: write text: put true in quotes \('true'\)"),
    (SERVER + "    url: http://h/mcp\n    headers:\n      Authorization: null\n", r"mcp.yaml:5: mcpServers.weather.headers.Authorization: give a value \(in quotes, '' for an empty one\)"),
    (SERVER + "    url: http://h/mcp\n    headers: {A: \"x\\ny\"}\n", r"mcp.yaml:4: mcpServers.weather.headers.A: a header value is one line"),
    (SERVER + "    url: http://h/mcp\n    headers: {'bad header': x}\n", r"mcp.yaml:4: mcpServers.weather.headers: 'bad header' is not an HTTP header name"),
    (SERVER + "    command: python\n    timeout: soon\n", r"mcp.yaml:4: mcpServers.weather.timeout: 'soon' is not a duration: write seconds \(60\) or '90s', '2m'"),
    (SERVER + "    command: python\n    timeout: 0\n", r"mcp.yaml:4: mcpServers.weather.timeout: Input should be greater than 0"),
    (SERVER + "    command: python\n    disabled: maybe\n", r"mcp.yaml:4: mcpServers.weather.disabled: write true or false"),
    (SERVER + "    command: python\n    argz: [x]\n", r"mcp.yaml:4: mcpServers.weather.argz: unknown setting \(did you mean args\?\)"),
    (SERVER + "    command: python\n    enabled: true\n", r"mcp.yaml:4: mcpServers.weather.enabled: unknown setting: write disabled: true to turn a server off"),
    # references
    (SERVER + "    command: python\n    env: {K: '${}'}\n", r"mcp.yaml:4: mcpServers.weather.env.K: \$\{\} is not an environment variable name"),
    (SERVER + "    command: python\n    env: {K: '${MY-KEY}'}\n", r"mcp.yaml:4: mcpServers.weather.env.K: \$\{MY-KEY\} is not an environment variable name"),
    (SERVER + "    command: python\n    env: {K: '${env:KEY}'}\n", r"mcp.yaml:4: mcpServers.weather.env.K: write \$\{KEY\} \(not \$\{env:KEY\}\)"),
    (SERVER + "    command: python\n    env: {K: '${KEY'}\n", r"mcp.yaml:4: mcpServers.weather.env.K: a \$\{ is never closed"),
    (SERVER + "    command: python\n    args: [--token, '${TOKEN}']\n", r"mcp.yaml:4: mcpServers.weather.args.1: \$\{...\} is only read in env: and headers: values, never in args:"),
    (SERVER + "    command: '${BIN}'\n", r"mcp.yaml:3: mcpServers.weather.command: \$\{...\} is only read in env: and headers: values, never in command:"),
    (SERVER + "    url: 'https://h/mcp?key=${KEY}'\n", r"mcp.yaml:3: mcpServers.weather.url: \$\{...\} is only read in env: and headers: values, never in url:"),
    # YAML itself
    ("mcpServers:\n  w: {command: [1\n", r"mcp.yaml:2: not valid YAML"),
    ("mcpServers:\n  w:\n    command: a\n  w:\n    command: b\n", r"mcp.yaml:4: mcpServers.w: given twice \(lines 2 and 4\)"),
    (SERVER + "    command: python\n    env: {K: \"a\\0b\"}\n", r"mcp.yaml:4: mcpServers.weather.env.K: a NUL character"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_each_problem_is_one_clear_line_at_the_right_place(msettings, text, expected):
    path = _write(msettings, text)
    specs, problems = load_mcp_config(path)
    assert specs == ()  # nothing of a bad file is used
    assert len(problems) == 1, problems
    assert re.search(expected, problems[0]), problems
    assert problems[0].startswith(f"{path}:")
    assert "Traceback" not in problems[0] and "Value error," not in problems[0]
    assert "errors.pydantic.dev" not in problems[0]


def test_problems_in_two_servers_are_all_reported(msettings):
    path = _write(msettings, "mcpServers:\n  a:\n    args: [x]\n  b:\n    command: x\n    timeout: -1\n")
    specs, problems = load_mcp_config(path)
    assert specs == ()
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["2", "6"], problems


def test_an_unreadable_file_is_a_problem_not_an_exception(msettings):
    path = mcp_file(msettings)
    path.mkdir()
    specs, problems = load_mcp_config(path)
    assert specs == () and len(problems) == 1 and "is a directory" in problems[0]
