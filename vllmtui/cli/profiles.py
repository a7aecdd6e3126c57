"""`vllmtui profiles|check`: the profiles found, and one profile checked before a start."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from vllmtui.cli.common import AddCommand, add_profile_options, load_profile_arg
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import resolve, runtime_flags
from vllmtui.profiles.loading import discover, port_clashes
from vllmtui.servers.checks import start_problems
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import session_name

if TYPE_CHECKING:
    from vllmtui.profiles.launch import LaunchSpec
    from vllmtui.profiles.model import LoadedProfile


def cmd_profiles(args: argparse.Namespace, settings: Settings) -> int:
    good, broken = discover(settings)
    clashes = port_clashes(good)
    rows: list[dict[str, Any]] = []
    for loaded in good:
        p = loaded.profile
        note = "ok"
        if loaded.warnings:
            note = f"ok, {len(loaded.warnings)} warning(s)"
        if p.name in clashes:
            note += f"; port shared with {', '.join(clashes[p.name])}"
        rows.append({"name": p.name, "valid": True, "port": p.port, "model": p.model,
                     "path": str(loaded.path), "note": note, "warnings": list(loaded.warnings)})
    for bad in broken:
        rows.append({"name": bad.name, "valid": False, "port": None, "model": None,
                     "path": str(bad.path), "note": "INVALID", "errors": bad.error.problems})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        dirs = ", ".join(str(d) for d in settings.profiles_dirs)
        print(f"no profiles found in: {dirs}")
        return 0
    print(f"{'NAME':<24} {'PORT':>5}  {'MODEL':<44} STATE")
    for row in rows:
        print(f"{row['name']:<24} {row['port'] or '':>5}  {str(row['model'] or '')[:44]:<44} {row['note']}")
        for err in row.get("errors", []):
            print(f"    {err}")
    return 2 if broken else 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    loaded = load_profile_arg(args, settings)
    good, _ = discover(settings)
    fleet = Fleet(settings)
    running = fleet.tmux.session(session_name(loaded.profile.name))
    problems = start_problems(
        loaded, settings, good, fleet, check_port=running is None,
        say=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(f"profile: {loaded.profile.name} ({loaded.path})")
    try:
        spec = resolve(loaded.profile, settings)
        print(f"command: {spec.display()}")
        print(f"cwd:     {spec.cwd}")
        if spec.env:
            print(f"env:     {', '.join(sorted(spec.env))}")
        if loaded.profile.nodes:
            _print_nodes(loaded, spec, settings)
    except UsageError:
        pass  # a runtime that cannot be resolved is one of the problems below
    print(f"flags:   checked against {runtime_flags(loaded.profile, settings).source}")
    if running is not None:
        print(f"note:    running now as tmux session {running.name}")
    for problem in problems:
        print(str(problem), file=sys.stderr if problem.level == "error" else sys.stdout)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        print(f"{loaded.profile.name}: {len(errors)} error(s): `vllmtui start` would refuse it",
              file=sys.stderr)
        return 2
    warned = sum(1 for p in problems if p.level == "warning")
    print("ok: ready to start" + (f" ({warned} warning(s) above)" if warned else ""))
    return 0


def _print_nodes(loaded: LoadedProfile, spec: LaunchSpec, settings: Settings) -> None:
    """Every node's command of a multi-node profile, in start order (nothing starts)."""
    from vllmtui.hosts.config import load_hosts
    from vllmtui.nodes.addresses import node_addresses
    from vllmtui.profiles.multinode import plan_nodes

    plan = plan_nodes(loaded.profile, spec, node_addresses(loaded.profile, load_hosts(settings)))
    print(f"nodes:   {len(loaded.profile.nodes or [])}, started in this order (a stop goes backwards):")
    for step in plan:
        where = f"{step.host}, tmux session {step.session}"
        where += " (the server's endpoint)" if step.main else ""
        print(f"  node {step.index} {step.role:<10} on {where}:\n    {step.display()}")


def add_parsers(add: AddCommand) -> None:
    """Register profiles and check."""
    p = add("profiles", cmd_profiles, "list profiles and whether they are valid")
    p.add_argument("--json", action="store_true")
    add_profile_options(add("check", cmd_check, "validate a profile and print its resolved command"))
