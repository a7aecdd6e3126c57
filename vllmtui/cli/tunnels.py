"""`vllmtui tunnel up|down|status|laptop [NAME]`: SSH tunnels from the command line."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

from vllmtui.cli.common import AddCommand
from vllmtui.cli.options import port, positive_float
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import discover, find_profile
from vllmtui.tunnels.manager import Tunnels, TunnelStatus, laptop_command, osc52


def _line(status: TunnelStatus) -> str:
    text = f"{status.name}: {status.state}"
    if status.detail:
        text += f" - {status.detail}"
    return text


def _say(status: TunnelStatus, seen: list[str]) -> None:
    seen.append(_line(status))
    print("  " + seen[-1], flush=True)


def _up(args: argparse.Namespace, settings: Settings, tunnels: Tunnels) -> int:
    if not args.name:
        configured, _ = tunnels.configured()
        names = ", ".join(t.name for t in configured) or "none configured (see docs/tunnels.md)"
        raise UsageError(f"name the tunnel (or profile) to bring up: {names}")
    profiles, _ = discover(settings)
    code = 0
    for tunnel in tunnels.find(args.name, profiles):
        status = tunnels.up(tunnel, profiles)
        print(f"{tunnel.name}: {tunnel.describe()} in tmux session {status.session}", flush=True)
        if args.no_wait:
            print(_line(status))
            continue
        seen: list[str] = []
        final = tunnels.wait(tunnel.name, timeout=args.timeout,
                             on_change=functools.partial(_say, seen=seen))
        if not seen or seen[-1] != _line(final):
            print("  " + _line(final))
        if final.state != "up":
            code = 1
            if final.log_path:
                print(f"  log: {final.log_path}", file=sys.stderr)
            if final.state == "failed" and "retrying" in final.detail:
                print(f"  it keeps retrying; `vllmtui tunnel down {tunnel.name}` stops it",
                      file=sys.stderr)
    return code


def _down(args: argparse.Namespace, settings: Settings, tunnels: Tunnels) -> int:
    running = tunnels.sessions()
    if args.all:
        names = sorted(running)
    elif args.name:
        names = [args.name] if args.name in running else [
            t.name for t in tunnels.find(args.name)]
    else:
        raise UsageError("name the tunnel to bring down, or --all; running: "
                         + (", ".join(sorted(running)) or "none"))
    code = 0
    for name in names:
        result = tunnels.down(name)
        if not result.was_running:
            print(f"{name}: down (was not running)")
        elif result.left:
            print(f"{name}: STILL RUNNING: pids {list(result.left)}")
            code = 1
        else:
            print(f"{name}: down")
    return code


def _status(args: argparse.Namespace, settings: Settings, tunnels: Tunnels) -> int:
    profiles, _ = discover(settings)
    _, problems = tunnels.configured(profiles)
    statuses = tunnels.statuses(profiles)
    if args.name:
        statuses = [s for s in statuses
                    if s.name == args.name or (s.tunnel and s.tunnel.profile == args.name)]
        if not statuses:
            tunnels.find(args.name, profiles)  # raises the helpful error
    if args.json:
        out: dict[str, Any] = {"tunnels": [s.to_json() for s in statuses], "problems": problems}
        print(json.dumps(out, indent=2))
        return 0
    if not statuses:
        print("no tunnels configured (see docs/tunnels.md)")
    else:
        print(f"{'NAME':<20} {'STATE':<12} FORWARD")
    for s in statuses:
        what = s.tunnel.describe() if s.tunnel else "?"
        print(f"{s.name:<20} {s.state:<12} {what}")
        if s.detail and s.state != "down":
            print(f"{'':<20} {s.detail}")
        if s.changed:
            print(f"{'':<20} the config changed since it started: down + up applies it")
        if not s.configured:
            print(f"{'':<20} not configured any more (still running)")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 0


def _laptop(args: argparse.Namespace, settings: Settings, tunnels: Tunnels) -> int:
    if not args.name:
        raise UsageError("name the profile whose server the laptop should reach")
    profile = find_profile(settings, args.name).profile
    command = laptop_command(profile.host, profile.port, args.local_port)
    print(command.text)
    print(f"# then open {command.url} on your machine", file=sys.stderr)
    if command.note:
        print(f"# {command.note}", file=sys.stderr)
    if not args.no_copy and sys.stdout.isatty():
        sys.stdout.write(osc52(command.text))
        sys.stdout.flush()
        print("# copied to your clipboard (OSC 52, if your terminal allows it)", file=sys.stderr)
    return 0


ACTIONS = {"up": _up, "down": _down, "status": _status, "laptop": _laptop}


def cmd_tunnel(args: argparse.Namespace, settings: Settings) -> int:
    return ACTIONS[args.action](args, settings, Tunnels(settings))


def add_parsers(add: AddCommand) -> None:
    """Register `vllmtui tunnel ACTION`."""
    p = add("tunnel", cmd_tunnel, "SSH tunnels (port forwards in tmux sessions): up, down, status, laptop")
    p.add_argument("action", choices=list(ACTIONS))
    p.add_argument("name", nargs="?", help="a tunnel, or a profile (its tunnels)")
    p.add_argument("--json", action="store_true", help="status: machine-readable")
    p.add_argument("--no-wait", action="store_true", help="up: do not wait for the forward")
    p.add_argument("--timeout", type=positive_float(), default=20.0, help="up: seconds to wait (20)")
    p.add_argument("--all", action="store_true", help="down: every running tunnel")
    p.add_argument("--local-port", type=port, help="laptop: the port on your machine")
    p.add_argument("--no-copy", action="store_true", help="laptop: do not copy (OSC 52)")
