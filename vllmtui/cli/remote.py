"""`--host NAME` on any command: run it on that host's vllmtui, over its ssh connection.

`vllmtui CMD ARGS --host gpu1` becomes `ssh ... gpu1 VLLMTUI CMD ARGS --host local`
(`--host local` there: the host's own profiles never send it further). The output and the
exit status are the host's; interactive commands (`attach`, `logs -f`, `chat`, `tui`) get
a terminal (`ssh -t`). `start` first decides which profile runs (`hosts.sending`). Without
`--host`, a profile's `box:` names its default host.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.hosts.config import LOCAL, HostConfig, hosts_file, load_hosts, pick
from vllmtui.hosts.fleet import Hosts
from vllmtui.hosts.sending import choose
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import LoadedProfile

LOCAL_ONLY = {"hosts", "version", "tui"}
"""Commands about this machine's own vllmtui: `--host` is refused."""
BOX_COMMANDS = {"start", "stop", "status", "logs", "attach", "probe", "bench", "metrics", "plan",
                "check", "runs", "chat", "snippet"}
"""Commands whose NAME may be a profile with a `box:` (its default host)."""
TTY_COMMANDS = {"attach", "chat"}


def _names(args: argparse.Namespace) -> list[str]:
    names = getattr(args, "names", None) or []
    name = getattr(args, "name", None)
    return [*names, *([name] if isinstance(name, str) else [])]


def _box(args: argparse.Namespace, settings: Settings) -> tuple[str, LoadedProfile] | None:
    """The `box:` of the profiles named on the command line (all must agree), if any."""
    if args.command not in BOX_COMMANDS or not _names(args):
        return None
    with contextlib.suppress(Exception):  # a broken profile is the command's own business
        good, _ = discover(settings)
        by_name = {p.profile.name: p for p in good}
        found = [by_name[n] for n in _names(args) if n in by_name and by_name[n].profile.box]
        boxes = {p.profile.box for p in found}
        if len(boxes) == 1 and found[0].profile.box:
            return found[0].profile.box, found[0]
    return None


def check_bind_host(loaded: LoadedProfile, settings: Settings) -> None:
    """`host: gpu1` where gpu1 is a hosts.yaml name: the user meant `box:`."""
    if not hosts_file(settings).exists():
        return
    host = loaded.profile.host
    if host in load_hosts(settings):
        raise UsageError(
            f"{loaded.where(('host',))}: host: {host!r} is the address vLLM binds to (127.0.0.1 or 0.0.0.0),"
            f" not the machine it runs on: to run this profile on the hosts.yaml host {host!r},"
            f" write `box: {host}` (and host: 127.0.0.1)")


def _rest(argv: list[str], command: str) -> list[str]:
    """The command's own arguments, without `--host NAME`."""
    rest = argv[argv.index(command) + 1:]
    out: list[str] = []
    skip = False
    for token in rest:
        if skip:
            skip = False
        elif token == "--host":
            skip = True
        elif not token.startswith("--host="):
            out.append(token)
    return out


def dispatch(args: argparse.Namespace, argv: list[str], settings: Settings) -> int | None:
    """Run the command on its host; None: it runs here (no --host, `--host local`, no box)."""
    name: str | None = args.on_host
    where = "--host"
    if name is None:
        boxed = _box(args, settings)
        if boxed is not None:
            name, loaded = boxed
            where = f"{loaded.where(('box',))}: box"
    if name is None or name == LOCAL:
        return None
    if args.command in LOCAL_ONLY:
        raise UsageError(f"`vllmtui {args.command}` is about this machine: leave out --host"
                         " (`vllmtui hosts` reads every host)")
    host = pick(load_hosts(settings), name, where)
    return run_there(args, host, _rest(argv, args.command), settings)


def run_there(args: argparse.Namespace, host: HostConfig, rest: list[str], settings: Settings) -> int:
    with Hosts(settings, {LOCAL: load_hosts(settings)[LOCAL], host.name: host}) as hosts:
        if args.command == "start":
            rest = [a for a in rest if a != "--send"]
            choice = choose(hosts, host, args.name, bool(getattr(args, "send", False)))
            if choice is not None:
                print(choice.describe(host.name), flush=True)
                rest = [choice.argument if a == args.name else a for a in rest]
        tty = args.command in TTY_COMMANDS or (args.command == "logs" and args.follow)
        argv = hosts.command_argv(host.name, [args.command, *rest, "--host", "local"],
                                  tty=tty and sys.stdin.isatty())
        if args.command == "attach":
            os.execvp(argv[0], argv)
        code = subprocess.call(argv, stdin=None if tty else subprocess.DEVNULL)
    if code == 255:
        print(f"vllmtui: {host.name} ({host.ssh}) could not be reached (ssh exit 255);"
              " `vllmtui hosts` shows why", file=sys.stderr)
    return code
