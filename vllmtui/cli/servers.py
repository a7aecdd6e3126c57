"""`vllmtui start|stop|status|attach|logs|reap|runs`: servers, their runs and their logs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vllmtui import __version__
from vllmtui.cli.common import (
    AddCommand,
    add_profile_options,
    load_profile_arg,
    print_status_line,
    state_text,
)
from vllmtui.cli.options import non_negative_int, positive_float, positive_int
from vllmtui.cli.remote import check_bind_host
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.humanize import fmt_duration
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers import logs, runs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus, session_name


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    loaded = load_profile_arg(args, settings)
    check_bind_host(loaded, settings)
    if loaded.profile.nodes:  # one server across several machines
        from vllmtui.cli import multinode

        return multinode.start(args, settings, loaded)
    good, _ = discover(settings)
    fleet = Fleet(settings)
    result = fleet.start(loaded, good, on_progress=lambda m: print(m, flush=True))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"started {result.name} in tmux session {result.session}", flush=True)
    print(f"  command: {result.spec.display()}")
    print(f"  run dir: {result.run_dir}")
    if loaded.profile.runtime.slurm is None:
        print(f"  console: {' '.join(fleet.tmux.attach_argv(result.session))}")
    else:  # a batch job: no console here; its output is the run's log
        print(f"  log:     `vllmtui logs {result.name} -f` ({result.run_dir / runs.LOG})")
    if not args.wait:
        return 0
    estimate = runs.ready_estimate(settings, result.name)
    if estimate:
        print(f"  earlier runs were ready after {fmt_duration(estimate)}")
    begin = time.monotonic()

    shown = [0.0]

    def on_change(status: ServerStatus) -> None:
        if status.phase == "downloading" and time.monotonic() - shown[0] < 2.0:
            return  # the download's line changes every poll: one every 2 s
        shown[0] = time.monotonic()
        print(f"[{time.monotonic() - begin:6.1f}s] ", end="")
        print_status_line(status)

    final = fleet.wait_ready(loaded, timeout=args.timeout, on_change=on_change)
    if final.state == "ready":
        print(f"{final.name} is ready at {base_url(final.host, final.port or 0)} "
              f"(time to ready {fmt_duration(final.time_to_ready)})")
        return 0
    print(f"{final.name} did not become ready: {final.state}", file=sys.stderr)
    if final.failure:
        print(f"  cause: {final.failure.line}\n  hint:  {final.failure.hint}", file=sys.stderr)
    return 1


def _checked_fleet(settings: Settings, names: list[str]) -> Fleet:
    """The fleet, once every name is known (a profile, a server or a run history): an
    unknown one is refused (exit 2, did-you-mean) before anything is done."""
    fleet = Fleet(settings)
    fleet.check_names(names, *discover(settings))
    return fleet


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    fleet = _checked_fleet(settings, args.names)
    code = 0
    spanning = {p.profile.name: p for p in discover(settings)[0] if p.profile.nodes}
    for name in dict.fromkeys(args.names):
        if name in spanning:  # a multi-node server: every node, backwards
            from vllmtui.cli import multinode

            code = multinode.stop(args, settings, spanning[name]) or code
            continue
        try:
            result = fleet.stop(
                name, force=args.force, timeout=args.timeout,
                on_progress=lambda m: print(m, flush=True),
            )
        except VllmtuiError as exc:  # not running: the others are still stopped
            if len(dict.fromkeys(args.names)) == 1:
                raise
            print(f"vllmtui: {exc}", file=sys.stderr)
            code = code or exc.exit_code
            continue
        print(result.summary())
        code = code or (1 if result.left else 0)
    if args.force:  # what these servers left behind, never anyone else's (`vllmtui reap`)
        for name in dict.fromkeys(args.names):
            found, left = fleet.reap(on_progress=lambda m: print(m, flush=True), server=name)
            if found:
                print(f"reaped {len(found)} orphaned vLLM process(es) of {name}")
            code = code or (1 if left else 0)
    return code


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    fleet = Fleet(settings)
    good, broken = discover(settings)
    if args.names:
        fleet.check_names(args.names, good, broken)
    statuses = fleet.statuses(good)
    if args.names:
        wanted = set(args.names)
        statuses = [s for s in statuses if s.name in wanted]
        broken = [b for b in broken if b.name in wanted]
        # a name without a valid profile or a server: its last run (an invalid profile
        # shows as invalid, below)
        missing = wanted - {s.name for s in statuses} - {b.name for b in broken}
        for name in sorted(missing):
            statuses.append(fleet.status_by_name(name))
    orphans = fleet.orphans()
    spanning = _multinode_parts(settings, good, statuses)
    if args.json:
        servers = [{**s.to_json(), **({"multinode": spanning[s.name]} if s.name in spanning else {})}
                   for s in statuses]
        out = {
            "vllmtui": __version__,
            "servers": servers,
            "invalid_profiles": [{"name": b.name, "path": str(b.path)} for b in broken],
            "orphans": [{"pid": p.pid, "command": p.command, "user": p.user} for p in orphans],
            "profiles": [{"name": p.profile.name, "path": str(p.path),
                          "sent": p.path.is_relative_to(settings.sent_profiles_dir)} for p in good],
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'NAME':<22} {'STATE':<34} {'PORT':>5} {'PID':>7} {'UPTIME':>8}  RUN DIR")
    for s in statuses:
        print(
            f"{s.name:<22} {state_text(s)[:34]:<34} {s.port or '':>5} {s.pid or '':>7} "
            f"{fmt_duration(s.uptime) if s.running else '':>8}  {s.run_dir or ''}"
        )
        if s.detail and s.state in ("crashed", "unhealthy", "exited"):
            print(f"{'':<22} {s.detail}")
        if s.failure and s.state in ("crashed", "unhealthy"):
            print(f"{'':<22} hint: {s.failure.hint}")
        for line in _multinode_lines(spanning.get(s.name)):
            print(f"{'':<22} {line}")
    for bad in broken:
        print(f"{bad.name:<22} {'invalid profile':<34} ({bad.path}: `vllmtui check {bad.name}`)")
    sent = [p.profile.name for p in good if p.path.is_relative_to(settings.sent_profiles_dir)]
    if sent:
        print(f"\nprofiles sent here by another machine (`start --host`): {', '.join(sent)}"
              f" (in {settings.sent_profiles_dir}); the others are this machine's own")
    if orphans:
        print(f"\n{len(orphans)} orphaned vLLM process(es) (belong to no server; `vllmtui reap` kills them):")
        for p in orphans:
            print(f"  {p.pid:>7} {p.user:<10} {p.command[:90]}")
    return 0


def _multinode_parts(settings: Settings, good: list[LoadedProfile],
                     statuses: list[ServerStatus]) -> dict[str, dict[str, Any]]:
    """Each multi-node server's nodes (`cli.multinode.part`), by name; its status in
    `statuses` becomes its head's, read where the head runs, with the nodes' verdict."""
    spanning = {p.profile.name: p for p in good if p.profile.nodes}
    if not spanning:
        return {}
    from vllmtui.cli import multinode

    out: dict[str, dict[str, Any]] = {}
    for i, status in enumerate(statuses):
        if status.name not in spanning:
            continue
        try:
            head, out[status.name] = multinode.part(settings, spanning[status.name])
        except VllmtuiError as exc:  # hosts.yaml lost a node's host: the rest still shows
            out[status.name] = {"state": status.state, "why": str(exc), "head": "?", "nodes": []}
            continue
        if head is not None:
            statuses[i] = head
    return out


def _multinode_lines(part: dict[str, Any] | None) -> list[str]:
    if not part:
        return []
    why = f": {part['why']}" if part["why"] else ":"
    lines = [f"multi-node ({part['state']}), head on {part['head']}{why}"]
    for node in part["nodes"]:
        alive = "running" if node["alive"] else (node["problem"] or f"exited {node['exit_status']}")
        lines.append(f"  node {node['index']} {node['role']:<10} on {node['host']}: {alive}")
    return lines


def cmd_attach(args: argparse.Namespace, settings: Settings) -> int:
    fleet = _checked_fleet(settings, [args.name])
    name = session_name(args.name)
    if fleet.tmux.session(name) is None:
        raise VllmtuiError(f"{args.name} is not running (no tmux session {name})")
    argv = fleet.tmux.attach_argv(name)
    os.execvp(argv[0], argv)
    return 0  # not reached


def _log_path(settings: Settings, name: str, run: str | None) -> Path:
    fleet = Fleet(settings)
    sess = fleet.tmux.session(session_name(name))
    if run is None and sess is not None and sess.option("run-dir"):
        return Path(str(sess.option("run-dir"))) / runs.LOG
    history = runs.runs_of(settings, name)
    if not history:
        raise VllmtuiError(f"{name} has no runs yet (nothing under {settings.runs_dir / name})")
    if run is None:
        return history[0].log_path
    for r in history:
        if r.path.name.startswith(run):
            return r.log_path
    raise VllmtuiError(f"{name} has no run {run!r}; runs: {', '.join(r.path.name for r in history[:5])}")


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    _checked_fleet(settings, [args.name])
    path = _log_path(settings, args.name, args.run)
    clean = (lambda s: s) if args.raw else logs.clean_line
    try:
        if args.follow:
            for line in logs.follow(path, args.lines):
                print(clean(line), flush=True)
        else:
            lines, _ = logs.tail_lines(path, args.lines)
            for line in lines:
                print(clean(line))
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    return 0


def cmd_reap(args: argparse.Namespace, settings: Settings) -> int:
    fleet = Fleet(settings)
    found = fleet.orphans()
    if not found:
        print("no orphaned vLLM processes")
        return 0
    for p in found:
        print(f"  {p.pid:>7} {p.user:<10} {p.command[:90]}")
    if args.dry_run:
        return 0
    killed, left = fleet.reap()
    print(f"killed {len(killed)} process(es)" + (f"; still alive: {[p.pid for p in left]}" if left else ""))
    return 1 if left else 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    _checked_fleet(settings, [args.name])
    history = runs.runs_of(settings, args.name, limit=args.limit)
    if args.json:
        rows = [
            {"dir": str(r.path), "started": r.started, "time_to_ready": r.time_to_ready,
             "exit": r.exit, "vllm_version": r.launch.get("vllm_version")}
            for r in history
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not history:
        print(f"{args.name} has no runs yet (`vllmtui start {args.name}` makes one)")
    for r in history:
        ended = r.exit.get("how") if r.exit else "-"
        print(f"{r.path.name}  ready {fmt_duration(r.time_to_ready):>7}  end {ended:<10} {r.path}")
    return 0


def add_parsers(add: AddCommand) -> None:
    """Register start, stop, status, attach, logs, reap and runs."""
    p = add("start", cmd_start, "start a server in its own tmux session")
    add_profile_options(p)
    p.add_argument("--wait", action="store_true", help="wait until ready, printing the phases")
    p.add_argument("--timeout", type=positive_float(), default=900.0,
                   help="seconds --wait waits (900)")
    p.add_argument("--send", action="store_true",
                   help="with --host: send this machine's profile even if the host has one of that name")
    p = add("stop", cmd_stop, "stop servers: gracefully, or --force")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true",
                   help="SIGKILL the whole process tree at once, then reap orphans")
    p.add_argument("--timeout", type=positive_float(),
                   help="seconds to wait after SIGINT (profile's stop.timeout)")
    p = add("status", cmd_status, "show servers, their state and orphaned vLLM processes")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p = add("attach", cmd_attach, "attach to a server's tmux session (its console)")
    p.add_argument("name")
    p = add("logs", cmd_logs, "print a server's log (from its run directory)")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=non_negative_int("lines"), default=50,
                   help="how many of the last lines (50; 0 with -f: only new ones)")
    p.add_argument("--run", help="an earlier run (a prefix of its directory name)")
    p.add_argument("--raw", action="store_true", help="keep ANSI colours and carriage returns")
    p = add("reap", cmd_reap, "kill orphaned vLLM processes that belong to no server")
    p.add_argument("--dry-run", action="store_true", help="only list them")
    p = add("runs", cmd_runs, "list a profile's runs (newest first)")
    p.add_argument("name")
    p.add_argument("--limit", type=positive_int("runs"), default=20, help="newest runs shown (20)")
    p.add_argument("--json", action="store_true")
