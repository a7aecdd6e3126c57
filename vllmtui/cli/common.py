"""What the command groups share: the handler type, how a group registers its commands, the
profile options, status lines."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vllmtui.cli import options
from vllmtui.core.humanize import fmt_duration
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import find_profile, parse_set_options
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.status import ServerStatus

Handler = Callable[[argparse.Namespace, Settings], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]
"""`add(name, handler, help)`: how a command group registers a subcommand (see `cli.main`)."""


def add_profile_options(p: argparse.ArgumentParser) -> None:
    """NAME, --set KEY=VALUE and --port: the options of every command that loads a profile."""
    p.add_argument("name", help="profile name (or a path to a .yaml file)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a profile field (dotted keys reach sections: args.seed=1)")
    p.add_argument("--port", type=options.port, help="override the port")


def state_text(status: ServerStatus) -> str:
    if status.state == "starting":
        text = f"starting: {status.phase_label or 'importing'}"
        if status.eta is not None:
            text += f" (~{fmt_duration(status.eta)} left)" if status.eta >= 1 else " (due now)"
        return text
    if status.state == "asleep":
        return "asleep" + (f" ({status.detail.split(':')[0]})" if status.detail else "")
    return status.state + (f" (restarted {status.restarts}x)" if status.restarts else "")


def load_profile_arg(args: argparse.Namespace, settings: Settings) -> LoadedProfile:
    """The profile named on the command line, with its --set and --port overrides."""
    overrides = parse_set_options(getattr(args, "set", None) or [])
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    return find_profile(settings, args.name, overrides or None)


def print_status_line(status: ServerStatus) -> None:
    detail = f" - {status.detail}" if status.detail and status.state != "starting" else ""
    print(f"{status.name}: {state_text(status)}{detail}", flush=True)
    if status.failure is not None and status.state in ("crashed", "unhealthy"):
        print(f"  hint: {status.failure.hint}", flush=True)
