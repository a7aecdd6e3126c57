"""`vllmtui hosts [install NAME | serve | receive NAME]` and `vllmtui version`: the hosts of
hosts.yaml, read in parallel over ssh (docs/hosts.md)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from vllmtui import __version__
from vllmtui.cli.common import AddCommand
from vllmtui.cli.options import positive_float
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.hosts import install, sending, serve
from vllmtui.hosts.fleet import HostReading, Hosts
from vllmtui.hosts.ssh import control_dir


def _servers_text(reading: HostReading) -> str:
    if not reading.reachable:
        return "-"
    running = [s for s in reading.statuses if s.running]
    ready = sum(1 for s in running if s.state == "ready")
    names = ", ".join(f"{s.name}:{s.state}" for s in running[:4])
    more = f" +{len(running) - 4}" if len(running) > 4 else ""
    if not running:
        return "none running"
    return f"{len(running)} running ({ready} ready){': ' + names + more if running else ''}"


def _profiles_text(reading: HostReading) -> str:
    sent = sum(1 for p in reading.profiles if p.sent)
    own = len(reading.profiles) - sent
    bad = f", {len(reading.invalid_profiles)} invalid" if reading.invalid_profiles else ""
    return f"{own} own, {sent} sent{bad}"


def cmd_hosts(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action or "list"
    if action == "serve":
        return serve.serve(settings, sys.stdin, sys.stdout)
    if action == "receive":
        if len(args.names_list) != 1:
            raise UsageError("vllmtui hosts receive NAME (the profile's text on stdin)")
        print(sending.receive(settings, args.names_list[0], sys.stdin.read()))
        return 0
    with Hosts(settings) as hosts:
        if action == "install":
            return _install(args, hosts)
        names = [hosts.config(n).name for n in args.names_list] if args.names_list else None
        readings = hosts.read(timeout=args.timeout, names=names)
    code = 0 if all(r.reachable for r in readings.values()) else 1
    if args.json:
        print(json.dumps({"vllmtui": __version__, "hosts": [r.to_json() for r in readings.values()]},
                         indent=2))
        return code
    print(f"{'HOST':<14} {'STATE':<12} {'VLLMTUI':<9} {'GPUS':<30} {'PROFILES':<18} SERVERS")
    for r in readings.values():
        gpus = str((r.gpus or {}).get("summary") or "-").removeprefix("GPU: ")
        print(f"{r.name:<14} {r.state:<12} {r.version or '-':<9} {gpus[:30]:<30} "
              f"{_profiles_text(r) if r.reachable else '-':<18} {_servers_text(r)}")
        if r.problem:
            print(f"{'':<14} {r.problem}")
    return code


def _install(args: argparse.Namespace, hosts: Hosts) -> int:
    if not args.names_list:
        raise UsageError("vllmtui hosts install NAME: name the host (`vllmtui hosts` lists them)")
    code = 0
    for name in args.names_list:
        config = hosts.config(name, "hosts install")
        version = install.install(config, control_dir(hosts.settings),
                                  Path(args.wheel) if args.wheel else None, args.python, args.pip_args)
        print(f"{name}: {version}")
        code = code or (0 if version.endswith(__version__) else 1)
    return code


def cmd_version(args: argparse.Namespace, settings: Settings) -> int:
    data = {"vllmtui": __version__, "python": platform.python_version(), "executable": sys.executable}
    if args.json:
        print(json.dumps(data))
    else:
        print(f"vllmtui {__version__} (python {data['python']}, {sys.executable})")
    return 0


def add_parsers(add: AddCommand) -> None:
    """Register hosts and version."""
    p = add("hosts", cmd_hosts, "the hosts of hosts.yaml: reachability, version, GPUs, servers; install")
    p.add_argument("action", nargs="?", choices=["list", "install", "serve", "receive"],
                   help="list (default); install NAME: this vllmtui in a venv there; serve, receive:"
                        " what another vllmtui runs here over ssh")
    p.add_argument("names_list", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=positive_float(), help="seconds each host may take (settings: 3)")
    p.add_argument("--wheel", help="install: this wheel instead of one built from the checkout")
    p.add_argument("--python", default="python3", help="install: the host's python for the venv (python3)")
    p.add_argument("--pip-args", default="",
                   help="install: more pip options (e.g. '--no-index --find-links DIR')")
    p = add("version", cmd_version, "this vllmtui's version (--json: for scripts and other hosts)")
    p.add_argument("--json", action="store_true")
