"""The `vllmtui` command: the CLI, which opens the TUI when no command is given.

The one module above both `cli` and `ui`, so that the two never import each other."""

from __future__ import annotations

from vllmtui.cli.main import main as cli_main
from vllmtui.core.settings import Settings


def open_tui(settings: Settings) -> int:
    from vllmtui.ui.app import run_app  # lazily: a CLI command never pays for Textual

    return run_app(settings)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, open_tui=open_tui)
