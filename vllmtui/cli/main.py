"""The `vllmtui` command: the TUI by default, subcommands for scripts.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or an invalid profile.
The CLI and the TUI call the same domain functions. This module is the top-level parser and
`main`; each command group (`servers`, `profiles`, `runtimes`, `probes`, `gpu`, `tunnels`,
`bench`) is a module of its own that registers its subcommands through `add_parsers(add)`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from vllmtui import __version__
from vllmtui.cli.common import Handler
from vllmtui.core.errors import ProfileError, UsageError, VllmtuiError
from vllmtui.core.settings import Settings, check_dirs

# The command groups, each a module that registers its subcommands through `add_parsers(add)`,
# in the order `vllmtui --help` lists them ("tui" is this module's own). A command imports
# only its own module: `vllmtui status --json` does not pay for the bench's, the gateway's or
# the hosts' imports (0.40 s -> see docs/tui.md). tests/unit/cli checks this table against
# what the modules register.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("profiles", ("profiles", "check")),
    ("servers", ("start", "stop", "status", "attach", "logs", "reap", "runs")),
    ("runtimes", ("demo-model", "runtime")),
    ("probes", ("probe", "snippet")),
    ("chat", ("chat",)),
    ("gpu", ("gpus", "plan")),
    ("models", ("models",)),
    ("tunnels", ("tunnel",)),
    ("gateway", ("gateway",)),
    ("pull", ("pull",)),
    ("", ("tui",)),
    ("bench", ("bench", "metrics")),
    ("hosts", ("hosts", "version")),
)
VALUE_OPTIONS = ("--profiles-dir", "--tmux-socket", "--state-dir", "--host")  # the top level's


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (the first word that is not a top-level option or its
    value); None when there is none."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word in VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def cmd_tui(args: argparse.Namespace, settings: Settings) -> int:
    open_tui: Callable[[Settings], int] | None = getattr(args, "open_tui", None)
    if open_tui is None:  # the CLI never imports the UI: `vllmtui.entry` hands it over
        raise UsageError("no terminal UI here: run `vllmtui` (or `python -m vllmtui`) to open it")
    return open_tui(settings)


def _dir_error(exc: OSError, settings: Settings) -> BaseException:
    """A file operation that failed in one of vllmtui's directories: a UsageError naming the
    directory and where it is set. Anything else is not the user's: raised as it is."""
    places = (
        (settings.state_dir, "the state directory (--state-dir, $VLLMTUI_STATE_DIR)"),
        (settings.config_dir, "the config directory ($VLLMTUI_CONFIG_DIR)"),
        (settings.data_dir, "the data directory ($VLLMTUI_DATA_DIR)"),
    )
    name = exc.filename if isinstance(exc.filename, str) else None
    for base, what in places:
        if name and Path(name).absolute().is_relative_to(base):
            return UsageError(f"{name}: {exc.strerror} (in {what}: {base})")
    return exc


# ------------------------------------------------------------------ parser


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, only the named command's group is registered
    (every group for `--help`, no command or a word that is no command)."""
    parser = argparse.ArgumentParser(
        prog="vllmtui",
        description="Run vLLM servers from YAML profiles in tmux sessions. No command: the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"vllmtui {__version__}")
    parser.add_argument("--profiles-dir", action="append", metavar="DIR",
                        help="look for profiles here first (repeatable)")
    parser.add_argument("--tmux-socket", metavar="NAME",
                        help="tmux socket name (tmux -L); default: $VLLMTUI_TMUX_SOCKET or tmux's default")
    parser.add_argument("--state-dir", metavar="DIR", help="where run directories live")
    parser.add_argument("--host", dest="on_host", metavar="NAME", default=None,
                        help="run the command on this hosts.yaml host (docs/hosts.md); also after it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        _add_host(p)
        return p

    word = command_word(argv) if argv is not None else None
    groups = [g for g in COMMANDS if word in g[1]] or list(COMMANDS)
    for module, _names in groups:
        if module:
            importlib.import_module(f"vllmtui.cli.{module}").add_parsers(add)
        else:
            add("tui", cmd_tui, "open the terminal UI (the default)")
    for command in sub.choices.values():  # `models rm X --host H`: after a sub-command too
        _host_on_subcommands(command)
    return parser


def _add_host(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", dest="on_host", metavar="NAME", default=argparse.SUPPRESS,
                   help="run it on this host of hosts.yaml (`local`: here; default: the profile's box)")


def _host_on_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if not any("--host" in a.option_strings for a in child._actions):
                    _add_host(child)
                _host_on_subcommands(child)


def main(argv: list[str] | None = None, open_tui: Callable[[Settings], int] | None = None) -> int:
    """Run one command; `open_tui` opens the TUI (for `vllmtui` alone or `vllmtui tui`)."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    args.open_tui = open_tui
    try:
        settings = Settings.from_env(args.profiles_dir, args.state_dir, args.tmux_socket)
        problems = check_dirs(settings, args.state_dir, args.profiles_dir)
        if problems:
            raise UsageError("\n".join(problems))
        handler: Handler = getattr(args, "handler", cmd_tui)
        try:
            if hasattr(args, "handler"):
                from vllmtui.cli import remote  # (ssh, hosts.yaml): imported once a command runs

                there = remote.dispatch(args, words, settings)
                if there is not None:
                    return there
            return handler(args, settings)
        except OSError as exc:
            raise _dir_error(exc, settings) from None
    except ProfileError as exc:
        print("invalid profile:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return exc.exit_code
    except VllmtuiError as exc:
        print(f"vllmtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vllmtui ... | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


if __name__ == "__main__":
    sys.exit(main())
