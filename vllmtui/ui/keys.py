"""The key list: one source for the bindings, the `?` help, the command palette and the docs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    key: str  # Textual key name(s)
    shown: str  # how people write it
    action: str
    label: str  # footer label
    help: str
    footer: bool = True
    tab: str | None = None  # a tab's own key: it works on that tab only, and there it wins


KEYS: tuple[Key, ...] = (
    Key("question_mark", "?", "help", "Help", "this help"),
    Key("q", "q", "quit", "Quit", "quit; servers keep running in tmux"),
    Key("s", "s", "start", "Start", "start the selected profile (or pick one)"),
    Key(
        "x",
        "x",
        "stop",
        "Stop",
        "graceful stop: SIGINT, a visible countdown, then SIGTERM, SIGKILL",
    ),
    Key(
        "X",
        "X",
        "force_stop",
        "Kill",
        "forced stop, after a confirmation naming what will be killed",
    ),
    Key("r", "r", "restart", "Restart", "restart the selected server (graceful stop, then start)"),
    Key("a", "a", "attach", "Attach", "attach to the server's tmux session (prefix + d comes back)"),
    Key("R", "R", "reap", "Reap", "kill orphaned vLLM processes (after naming them)", footer=False),
    Key("f", "f", "filter_rows", "Filter", "show only the rows whose name, host or state holds the words"
        " typed (empty: every row)", footer=False),
    Key("H", "H", "group_hosts", "Group", "with other hosts (hosts.yaml): group the rows by host, or"
        " list every server by name (toggle)", footer=False),
    Key("l", "l", "log_tab", "Log", "show the Log tab", footer=False),
    Key("i", "i", "info_tab", "Info", "show the Info tab", footer=False),
    Key("e", "e", "edit", "Edit", "open the profile in $EDITOR; it is validated again on return"),
    Key("d", "d", "duplicate", "Dup", "duplicate the profile under a new name with a new port"),
    Key("c", "c", "probe_chat", "Chat", "chat probe against the selected server"),
    Key("t", "t", "probe_tool", "Tool", "tool-call probe against the selected server"),
    Key("T", "T", "tunnel", "Tunnel", "open or close the selected server's tunnel"),
    Key(
        "slash",
        "/",
        "search",
        "Search",
        "search the log (Enter: find, Escape: close)",
        footer=False,
    ),
    Key("n", "n", "next_match", "Next", "next search match", footer=False),
    Key("N", "N", "prev_match", "Prev", "previous search match", footer=False),
    Key(
        "w",
        "w",
        "problems",
        "Warn/Err",
        "filter the log to warnings and errors (toggle)",
        footer=False,
    ),
    Key(
        "exclamation_mark",
        "!",
        "first_error",
        "1st error",
        "jump to the first error (the root cause)",
        footer=False,
    ),
    Key("g", "g", "gateway_up", "Gateway up", "on the Gateway tab: start the gateway (one endpoint"
        " for every model)", tab="tab-gateway"),
    Key("G", "G", "gateway_down", "Gateway down", "on the Gateway tab: stop the gateway, after a"
        " confirmation (its servers keep running)", tab="tab-gateway"),
    Key("G", "G", "follow", "Follow", "follow the end of the log again (on any tab but the Gateway tab)",
        footer=False),
    Key("C", "C", "chat_tab", "Chat tab", "show the Chat tab, its input focused (talk to the selected"
        " server)", footer=False),
    Key("ctrl+n", "^N", "chat('new')", "New chat", "on the Chat tab: a new conversation (same system prompt"
        " and settings)", tab="tab-chat"),
    Key("ctrl+o", "^O", "chat('open')", "Open chat", "on the Chat tab: reopen a saved conversation",
        tab="tab-chat"),
    Key("ctrl+s", "^S", "chat('export')", "Export", "on the Chat tab: write the conversation as Markdown"
        " beside it", tab="tab-chat"),
    Key("ctrl+g", "^G", "chat('gateway')", "Via gateway", "on the Chat tab: talk through the gateway, or"
        " to the server directly (toggle)", tab="tab-chat"),
    Key("escape", "Esc", "chat('stop')", "Stop reply", "on the Chat tab: stop the reply at once",
        tab="tab-chat"),
    Key("D", "D", "remove_model", "Remove model", "on the Models tab: remove a model (or one revision)"
        " from the Hugging Face cache, after a confirmation naming the space it frees", tab="tab-models"),
)


def action_name(action: str) -> str:
    """`chat('new')` -> `chat`: what Textual's check_action is asked about."""
    return action.partition("(")[0]


def key_allowed(action: str, tab: str) -> bool:
    """Whether `action`'s key works while `tab` is shown: a tab's own key only there, and
    another key on the same key (G follows the log) everywhere but there."""
    key = next((k for k in KEYS if action_name(k.action) == action), None)
    if key is None:
        return True
    if key.tab is not None:
        return key.tab == tab
    return not any(k.tab == tab and k.key == key.key for k in KEYS)


def help_text() -> str:
    """The key list as plain text (help dialog, docs)."""
    lines = [f"  {k.shown:<3} {k.help}" for k in KEYS]
    lines += [
        "",
        "  Up/Down or the mouse select a server; Tab moves between the table and the tabs.",
        "  Ctrl+P opens the command palette with every action above.",
    ]
    return "\n".join(lines)
