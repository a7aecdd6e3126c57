"""The `vllmtui` command: the CLI, which opens the TUI when no command is given.

The one module above both `cli` and `ui`, so that the two never import each other.
`vllmtui` alone goes straight to the TUI: the CLI's parser, given no command, registers every
command group (importing the bench, chat, the gateway, hosts...), which the TUI's first frame
would wait for."""

from __future__ import annotations

import sys

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings, check_dirs


def open_tui(settings: Settings) -> int:
    from vllmtui.ui.app import run_app  # lazily: a CLI command never pays for Textual

    return run_app(settings)


def tui_only() -> int:
    """`vllmtui` with no argument: what the CLI does for it (settings from the environment,
    the directories checked, the TUI), without loading the CLI."""
    try:
        settings = Settings.from_env(None, None, None)
        problems = check_dirs(settings)
        if problems:
            print("vllmtui: " + "\n".join(problems), file=sys.stderr)
            return 2
        return open_tui(settings)
    except VllmtuiError as exc:
        print(f"vllmtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    if not (sys.argv[1:] if argv is None else argv):
        return tui_only()
    from vllmtui.cli.main import main as cli_main

    return cli_main(argv, open_tui=open_tui)
