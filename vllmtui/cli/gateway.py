"""`vllmtui gateway up|down|status`: one OpenAI endpoint for every model on this box."""

from __future__ import annotations

import argparse
import json
import sys

from vllmtui.cli.common import AddCommand
from vllmtui.core.humanize import fmt_duration
from vllmtui.core.settings import Settings
from vllmtui.gateway.manage import GatewayStatus, gateway_down, gateway_status, gateway_up
from vllmtui.profiles.gateway_config import load_gateway, served_profiles
from vllmtui.profiles.loading import discover


def _say(message: str) -> None:
    print(message, flush=True)


def print_status(status: GatewayStatus) -> None:
    up = f" for {fmt_duration(status.uptime)}" if status.state == "up" and status.uptime is not None else ""
    print(f"gateway: {status.state}{up}  {status.url}" + (f"  pid {status.pid}" if status.pid else ""))
    if status.detail:
        print(f"  {status.detail}")
    if status.models:
        print(f"  {'MODEL':<28} {'PROFILE':<20} {'STATE':<10} {'REQ':>6} {'ERR':>5} {'STARTS':>6}"
              f" {'RESTARTS':>8}  IDLE")
        for m in status.models:
            state = str(m.get("state", "?")) + ("*" if m.get("managed") else "")
            print(f"  {str(m.get('model'))[:28]:<28} {str(m.get('profile'))[:20]:<20} {state:<10}"
                  f" {m.get('requests', 0):>6} {m.get('errors', 0):>5} {m.get('starts', 0):>6}"
                  f" {m.get('restarts', 0):>8}  {m.get('idle', '')}")
        print("  * started by the gateway (it may sleep, stop or swap it out)")
    for problem in status.problems:
        print(f"problem: {problem}")


def _check(settings: Settings) -> int:
    """Validate gateway.yaml against the profiles found; exit 2 on a problem."""
    profiles, broken = discover(settings)
    loaded, problems = load_gateway(settings, profiles, broken)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{loaded.path}: {len(problems)} problem(s): `vllmtui gateway up` would refuse it",
              file=sys.stderr)
        return 2
    config = loaded.config
    served = served_profiles(config, profiles)
    where = str(loaded.path) if loaded.exists else f"{loaded.path} (not written: the defaults)"
    print(f"config:  {where}")
    print(f"listens: {config.host}:{config.port} ({config.base_url})"
          + (f", key from ${config.api_key_env}" if config.api_key_env else ", no key"))
    print(f"serves:  {', '.join(p.profile.model_name for p in served) or 'no profile'}")
    print("ok")
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "check":
        return _check(settings)
    if args.action == "up":
        status = gateway_up(settings, say=None if args.json else _say)
    elif args.action == "down":
        print(gateway_down(settings))
        return 0
    else:
        status = gateway_status(settings)
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        print_status(status)
    return 0 if status.state == "up" or args.action == "status" else 1


def add_parsers(add: AddCommand) -> None:
    """Register `vllmtui gateway ACTION`."""
    p = add("gateway", cmd_gateway, "one OpenAI endpoint for every model (on-demand start, idle"
            " sleep/stop, restart on crash): up, down, status, check")
    p.add_argument("action", choices=["up", "down", "status", "check"])
    p.add_argument("--json", action="store_true", help="print the status as JSON")
