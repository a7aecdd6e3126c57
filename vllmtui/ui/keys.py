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
    Key("G", "G", "follow", "Follow", "follow the end of the log again", footer=False),
)


def help_text() -> str:
    """The key list as plain text (help dialog, docs)."""
    lines = [f"  {k.shown:<3} {k.help}" for k in KEYS]
    lines += [
        "",
        "  Up/Down or the mouse select a server; Tab moves between the table and the tabs.",
        "  Ctrl+P opens the command palette with every action above.",
    ]
    return "\n".join(lines)
