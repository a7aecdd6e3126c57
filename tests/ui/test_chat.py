"""The Chat tab (Textual Pilot) against the OpenAI STAND-IN server (tests/standin/openai_standin.py)
started in the test's own tmux server: streamed replies of "tok0 tok1 ..." (STANDIN_CHUNKS,
STANDIN_CHUNK_DELAY), a valid tool call when offered tools (STANDIN_TOOL_ARGS). The tools come
from a small in-test ToolRunner put where the MCP servers of mcp.yaml would start (a real MCP
server is tested in tests/tmux/chat)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import backend_profile, gateway, gateway_config, port_of, stats  # noqa: F401
from tests.support.ui import FROZEN, until
from vllmtui.chat import tools as chat_tools
from vllmtui.probes.toolcheck import ToolSpec
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import PickDialog, ToolCallDialog
from vllmtui.ui.widgets.chat_panel import ChatPanel
from vllmtui.ui.widgets.chat_state import ChatState
from vllmtui.ui.widgets.server_table import ServerTable

TOOL_PARSER = {"enable_auto_tool_choice": True, "tool_call_parser": "hermes"}
WEATHER = ToolSpec("get_weather", "The weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


class FakeTools:
    """A ToolRunner (what the MCP hub is to the session): one tool, its calls recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def specs(self) -> list[ToolSpec]:
        return [WEATHER]

    def run(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        self.calls.append((name, arguments))
        return f"sunny in {arguments.get('city')}", False


@pytest.fixture
def served(settings, backend_profile) -> Callable[..., Path]:  # noqa: F811
    """Start an OpenAI stand-in profile NAME (env: the stand-in's knobs); returns its file."""

    def start(name: str, env: dict[str, str] | None = None, **fields: object) -> Path:
        path = backend_profile(name, env=env, **fields)
        Fleet(settings).start(find_profile(settings, name))
        return path

    return start


@pytest.fixture
def fake_tools(monkeypatch) -> FakeTools:
    tools = FakeTools()
    monkeypatch.setattr(chat_tools, "open_tools", lambda _settings: (tools, []))
    return tools


def shown(app: VllmtuiApp) -> ChatState:
    chat = app.query_one(ChatPanel).current
    assert chat is not None
    return chat


def transcript(app: VllmtuiApp, chat: ChatState | None = None) -> str:
    return (chat or shown(app)).log.transcript()


def head(app: VllmtuiApp) -> str:
    return str(app.query_one("#chat-head").render())


async def open_chat(app: VllmtuiApp, pilot, name: str, state: str = "ready") -> ChatPanel:
    """Select NAME, press C (the Chat tab, its input focused) and wait for its server."""
    await until(pilot, lambda: app.main.state_of(name) == state, what=f"{name} {state}")
    app.query_one(ServerTable).select(name)
    await pilot.pause()
    await pilot.press("C")
    panel = app.query_one(ChatPanel)
    assert app.query_one("#detail").active == "tab-chat" and app.focused is app.query_one("#chat-input")
    await until(pilot, lambda: panel.current is not None and (panel.current.found or panel.current.problem),
                what="the chat's server looked up")
    await until(pilot, lambda: panel.tool_names is not None, what="the tools")
    return panel


async def say(app: VllmtuiApp, pilot, text: str, typed: bool = False) -> None:
    """Send TEXT (typed key by key, or put in the input) and wait until the turn is over."""
    chat = shown(app)
    turns = chat.turns
    if typed:
        await pilot.press(*text)
    else:
        app.query_one("#chat-input").value = text
    await pilot.press("enter")
    await until(pilot, lambda: chat.turns > turns and not chat.busy, what="the turn to end")


def saved_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_streamed_multi_turn_chat_is_shown_and_saved(settings, served):
    served("talk", env={"STANDIN_CHUNKS": "4", "STANDIN_CHUNK_DELAY": "0.15"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "talk")
        assert "talk  talk-model at http://127.0.0.1:" in head(app)
        assert "tools: none (no MCP servers in mcp.yaml)" in head(app)
        chat = shown(app)
        # typed key by key: the screen's letter keys (q quits, s starts, x stops) stay in the input
        await pilot.press(*"quick: say hi")
        await pilot.press("enter")
        # token by token: the first pieces are on screen while the rest is still coming
        await until(pilot, lambda: "tok0" in transcript(app) and "tok3" not in transcript(app) and chat.busy,
                    what="a partly streamed reply")
        assert "replying… (Esc stops)" in head(app)
        await until(pilot, lambda: not chat.busy, what="the reply")
        text = transcript(app)
        assert "you  quick: say hi" in text and "tok0 tok1 tok2 tok3" in text
        assert "4 tokens · TTFT " in text and " tok/s · " in text
        await say(app, pilot, "and again")
        assert transcript(app).count("tok0 tok1 tok2 tok3") == 2
        conversation = chat.conversation
        assert conversation is not None and conversation.path is not None
        assert [e.role for e in conversation.entries] == ["user", "assistant", "user", "assistant"]
        run_dir = app.main.statuses["talk"].run_dir
        assert conversation.path.parent == run_dir / "chats"  # saved in the server's run
        roles = [line["message"]["role"] for line in saved_lines(conversation.path) if line["type"] == "message"]
        assert roles == ["user", "assistant", "user", "assistant"]
        assert app.is_running


async def test_esc_stops_the_reply_at_once(settings, served):
    path = served("slow", env={"STANDIN_CHUNKS": "400", "STANDIN_CHUNK_DELAY": "0.05"})  # 20 s of tokens
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "slow")
        chat = shown(app)
        app.query_one("#chat-input").value = "a long story please"
        await pilot.press("enter")
        await until(pilot, lambda: "tok2" in transcript(app), what="the reply streaming")
        await pilot.press("escape")
        await until(pilot, lambda: not chat.busy, timeout=3, what="the reply stopped")
        text = transcript(app)
        assert "stopped" in text.splitlines()[-1] and "tok399" not in text
        assert chat.conversation is not None and chat.conversation.entries[-1].stats.stopped
        await until(pilot, lambda: stats(port_of(path))["aborted"] == 1, timeout=5,
                    what="the server seeing the request go")
        await say(app, pilot, "/set max_tokens=5")  # the chat goes on after a stop
        assert "settings: " in transcript(app) and "max_tokens=5" in head(app)


async def test_new_conversation_export_and_reopen_a_saved_one(settings, served):
    served("keep", env={"STANDIN_CHUNKS": "2"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "keep")
        chat = shown(app)
        await say(app, pilot, "/system be brief")
        await say(app, pilot, "the first question")
        first = chat.conversation
        assert first is not None and first.path is not None and first.system == "be brief"

        await pilot.press("ctrl+s")
        markdown = first.path.with_suffix(".md")
        await until(pilot, markdown.exists, what="the Markdown export")
        assert "**You:** the first question" in markdown.read_text()
        await until(pilot, lambda: any(f"exported: {markdown}" in str(n.message) for n in app._notifications),
                    what="the export's notification")

        await pilot.press("ctrl+n")
        await until(pilot, lambda: chat.conversation is not first, what="a new conversation")
        await until(pilot, lambda: transcript(app).strip() == "new conversation", what="the log cleared")
        assert chat.conversation.system == "be brief"  # the system prompt and settings carry over
        await say(app, pilot, "the second question")
        second = chat.conversation
        assert second.path is not None and second.path != first.path

        await pilot.press("ctrl+o")
        picker = await until(pilot, lambda: isinstance(app.screen, PickDialog) and app.screen, what="the picker")
        assert len(picker.names) == 2 and "the second question" in picker.names[0]  # newest first
        assert "the first question" in picker.names[1] and "2 messages" in picker.names[1]
        await pilot.press("down", "enter")
        await until(pilot, lambda: chat.conversation is not None and chat.conversation.path == first.path,
                    what="the first conversation reopened")
        await until(pilot, lambda: "reopened: 2 messages" in transcript(app), what="its messages shown")
        text = transcript(app)
        assert "you  the first question" in text and "tok0 tok1" in text and "the second" not in text
        await say(app, pilot, "a third one")  # goes on in the reopened file
        roles = [line["message"]["role"] for line in saved_lines(first.path) if line["type"] == "message"]
        assert roles == ["user", "assistant", "user", "assistant"]


async def test_a_tool_call_asks_first_then_runs_always_when_allowed(settings, served, fake_tools):
    served("tooly", env={"STANDIN_TOOL_ARGS": '{"city": "Paris"}'}, **TOOL_PARSER)
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "tooly")
        assert "tools: get_weather" in head(app)
        chat = shown(app)
        app.query_one("#chat-input").value = "the weather in Paris?"
        await pilot.press("enter")
        dialog = await until(pilot, lambda: isinstance(app.screen, ToolCallDialog) and app.screen,
                             what="the tool-call dialog")
        assert dialog.title_text == "Run get_weather?"
        assert "The model on tooly wants to run the tool get_weather" in dialog.body
        assert '"city": "Paris"' in dialog.body and "✓ the arguments match the tool's schema" in dialog.body
        assert "tool call get_weather" in transcript(app) and fake_tools.calls == []  # asked before it runs
        await pilot.press("a")
        await until(pilot, lambda: not chat.busy, what="the turn")
        text = transcript(app)
        assert 'tool call get_weather {"city": "Paris"}' in text and "✓ matches its schema" in text
        assert "ran (always allowed), result: sunny in Paris" in text
        assert "The tool said: sunny in Paris" in text.splitlines()[-2]  # the model's answer, with the result
        assert fake_tools.calls == [("get_weather", {"city": "Paris"})]

        await say(app, pilot, "and in Paris again?")  # always: no dialog this time
        assert not isinstance(app.screen, ToolCallDialog)
        assert len(fake_tools.calls) == 2
        assert chat.conversation is not None and chat.conversation.path is not None
        tools = [line["tool"] for line in saved_lines(chat.conversation.path) if line.get("tool")]
        assert [t["answer"] for t in tools] == ["always", "always"] and all(t["matches"] for t in tools)


async def test_a_call_that_does_not_match_its_schema_says_so_and_can_be_denied(settings, served, fake_tools):
    served("sloppy", env={"STANDIN_TOOL_ARGS": '{"town": 3}'}, **TOOL_PARSER)
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "sloppy")
        chat = shown(app)
        app.query_one("#chat-input").value = "weather?"
        await pilot.press("enter")
        dialog = await until(pilot, lambda: isinstance(app.screen, ToolCallDialog) and app.screen,
                             what="the tool-call dialog")
        assert "✗ they do not match the tool's schema: arguments: 'city' is a required property" in dialog.body
        await pilot.press("n")
        await until(pilot, lambda: not chat.busy, what="the turn")
        text = transcript(app)
        assert "✗ does not match its schema: arguments: 'city' is a required property" in text
        assert "declined: not run" in text and fake_tools.calls == []


async def test_a_stopped_server_and_a_broken_mcp_yaml_are_said_plainly(settings, backend_profile):  # noqa: F811
    backend_profile("resting")  # never started
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    (settings.config_dir / "mcp.yaml").write_text("mcpServers:\n  weather:\n    command: 3\n")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "resting", state="stopped")
        assert "resting is stopped: start it with `vllmtui start resting`" in head(app)
        await until(pilot, lambda: any("mcp.yaml has problems" in str(n.message) for n in app._notifications),
                    what="the MCP problems notified")
        assert any("mcp.yaml:3" in str(n.message) for n in app._notifications)  # file:line of the problem
        app.query_one("#chat-input").value = "hello?"
        await pilot.press("enter")
        await until(pilot, lambda: any("resting is stopped" in str(n.message) for n in app._notifications),
                    what="the refusal")
        assert app.query_one("#chat-input").value == "hello?"  # kept for when the server is up
        assert not [n for n in app._notifications if "failed:" in str(n.message)]  # no worker blew up


async def test_a_server_without_a_tool_parser_chats_without_tools(settings, served, fake_tools):
    served("plain")  # no tool parser, while the MCP tools are there
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "plain")
        assert "tools: off (this server has no tool parser)" in head(app)
        await say(app, pilot, "hi")
        text = transcript(app)
        assert "plain has no tool parser, so it cannot call tools: set" in text
        assert "tok0 tok1 tok2" in text and fake_tools.calls == []  # asked without tools: a plain answer


async def test_each_server_keeps_its_chat_while_the_selection_moves(settings, served):
    served("alpha", env={"STANDIN_CHUNKS": "30", "STANDIN_CHUNK_DELAY": "0.05"})
    served("beta", env={"STANDIN_CHUNKS": "2"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.main.state_of("beta") == "ready", what="beta ready")
        await open_chat(app, pilot, "alpha")
        alpha = shown(app)
        app.query_one("#chat-input").value = "count to thirty"
        await pilot.press("enter")
        await until(pilot, lambda: "tok1" in transcript(app, alpha), what="alpha streaming")
        await open_chat(app, pilot, "beta")  # another row while alpha's reply streams
        beta = shown(app)
        assert beta is not alpha and transcript(app, beta) == "" and "beta  beta-model" in head(app)
        await say(app, pilot, "hello beta")
        assert "tok0 tok1" in transcript(app, beta) and "tok29" not in transcript(app, beta)
        await until(pilot, lambda: not alpha.busy, what="alpha's reply, streamed in the background")
        assert "tok29" in transcript(app, alpha) and "30 tokens" in transcript(app, alpha)
        app.query_one(ServerTable).select("alpha")
        await until(pilot, lambda: shown(app) is alpha, what="alpha's chat shown again")
        assert "count to thirty" in transcript(app)


async def test_ctrl_g_talks_through_the_gateway(settings, served, gateway):  # noqa: F811
    served("routed", env={"STANDIN_CHUNKS": "3"})
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_chat(app, pilot, "routed")
        await pilot.press("ctrl+g")
        panel = app.query_one(ChatPanel)
        await until(pilot, lambda: panel.current.key == ("routed", True) and panel.current.problem,
                    what="the gateway looked up")
        assert "the gateway is down" in head(app) and "`vllmtui gateway up`" in head(app)
        origin = gateway()
        await pilot.press("ctrl+g", "ctrl+g")  # off and on: looked up again
        await until(pilot, lambda: panel.current.found is not None, what="the gateway found")
        assert f"routed-model at {origin} through the gateway" in head(app)
        await say(app, pilot, "hello through the gateway")
        chat = shown(app)
        assert "tok0 tok1 tok2" in transcript(app)
        assert chat.conversation is not None and chat.conversation.path is not None
        assert chat.conversation.path.parent == settings.state_dir / "gateway" / "chats"
        await pilot.press("ctrl+g")  # back to the server itself: its own chat, untouched
        await until(pilot, lambda: panel.current.key == ("routed", False), what="the direct chat")
        assert "hello through the gateway" not in transcript(app)


def test_tab_keys_are_the_chat_tabs_only():
    from vllmtui.ui.keys import KEYS, key_allowed

    assert key_allowed("chat", "tab-chat") and not key_allowed("chat", "tab-log")
    assert key_allowed("chat_tab", "tab-log")
    assert {k.key for k in KEYS if k.tab == "tab-chat"} == {"ctrl+n", "ctrl+o", "ctrl+s", "ctrl+g", "escape"}
