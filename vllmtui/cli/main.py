"""The `vllmtui` command: the TUI by default, subcommands for scripts.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or an invalid profile.
The CLI and the TUI call the same domain functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllmtui import __version__
from vllmtui.core.errors import ProfileError, UsageError, VllmtuiError
from vllmtui.core.humanize import fmt_duration
from vllmtui.core.settings import Settings
from vllmtui.models import demo as demo_model
from vllmtui.profiles.launch import preflight, register_runtime, registered_runtimes, resolve
from vllmtui.profiles.loading import discover, find_profile, parse_set_options, port_clashes
from vllmtui.servers import logs, runs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus, session_name

Handler = Callable[[argparse.Namespace, Settings], int]


def state_text(status: ServerStatus) -> str:
    if status.state == "starting":
        text = f"starting: {status.phase_label or 'importing'}"
        if status.eta is not None:
            text += f" (~{fmt_duration(status.eta)} left)" if status.eta >= 1 else " (due now)"
        return text
    return status.state


# ------------------------------------------------------------------ commands


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


def _load(args: argparse.Namespace, settings: Settings) -> Any:
    overrides = parse_set_options(getattr(args, "set", None) or [])
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    return find_profile(settings, args.name, overrides or None)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    loaded = _load(args, settings)
    good, _ = discover(settings)
    fleet = Fleet(settings)
    running = fleet.tmux.session(session_name(loaded.profile.name))
    problems = preflight(loaded, settings, good, check_port=running is None)
    spec = resolve(loaded.profile, settings)
    print(f"profile: {loaded.profile.name} ({loaded.path})")
    print(f"command: {spec.display()}")
    print(f"cwd:     {spec.cwd}")
    if spec.env:
        print(f"env:     {', '.join(sorted(spec.env))}")
    if running is not None:
        print(f"note:    running now as tmux session {running.name}")
    for problem in problems:
        print(str(problem))
    errors = [p for p in problems if p.level == "error"]
    if errors:
        return 2
    print("ok: ready to start")
    return 0


def _print_status_line(status: ServerStatus) -> None:
    detail = f" - {status.detail}" if status.detail and status.state != "starting" else ""
    print(f"{status.name}: {state_text(status)}{detail}", flush=True)
    if status.failure is not None and status.state in ("crashed", "unhealthy"):
        print(f"  hint: {status.failure.hint}", flush=True)


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    loaded = _load(args, settings)
    good, _ = discover(settings)
    fleet = Fleet(settings)
    result = fleet.start(loaded, good, on_progress=lambda m: print(m, flush=True))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"started {result.name} in tmux session {result.session}", flush=True)
    print(f"  command: {result.spec.display()}")
    print(f"  run dir: {result.run_dir}")
    print(f"  console: {' '.join(fleet.tmux.attach_argv(result.session))}")
    if not args.wait:
        return 0
    estimate = runs.ready_estimate(settings, result.name)
    if estimate:
        print(f"  earlier runs were ready after {fmt_duration(estimate)}")
    begin = time.monotonic()

    def on_change(status: ServerStatus) -> None:
        print(f"[{time.monotonic() - begin:6.1f}s] ", end="")
        _print_status_line(status)

    final = fleet.wait_ready(loaded, timeout=args.timeout, on_change=on_change)
    if final.state == "ready":
        print(f"{final.name} is ready at http://{final.host}:{final.port} "
              f"(time to ready {fmt_duration(final.time_to_ready)})")
        return 0
    print(f"{final.name} did not become ready: {final.state}", file=sys.stderr)
    if final.failure:
        print(f"  cause: {final.failure.line}\n  hint:  {final.failure.hint}", file=sys.stderr)
    return 1


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    fleet = Fleet(settings)
    code = 0
    for name in args.names:
        result = fleet.stop(
            name, force=args.force, timeout=args.timeout,
            on_progress=lambda m: print(m, flush=True),
        )
        print(result.summary())
        code = code or (1 if result.left else 0)
    if args.force:
        found, left = fleet.reap(on_progress=lambda m: print(m, flush=True))
        if found:
            print(f"reaped {len(found)} orphaned vLLM process(es)")
        code = code or (1 if left else 0)
    return code


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    fleet = Fleet(settings)
    good, broken = discover(settings)
    statuses = fleet.statuses(good)
    if args.names:
        statuses = [s for s in statuses if s.name in args.names]
        missing = set(args.names) - {s.name for s in statuses}
        for name in sorted(missing):
            statuses.append(fleet.status_by_name(name))
    orphans = fleet.orphans()
    if args.json:
        out = {
            "servers": [s.to_json() for s in statuses],
            "invalid_profiles": [{"name": b.name, "path": str(b.path)} for b in broken],
            "orphans": [{"pid": p.pid, "command": p.command, "user": p.user} for p in orphans],
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
    for bad in broken:
        print(f"{bad.name:<22} {'invalid profile':<34} ({bad.path}: `vllmtui check {bad.name}`)")
    if orphans:
        print(f"\n{len(orphans)} orphaned vLLM process(es) (belong to no server; `vllmtui reap` kills them):")
        for p in orphans:
            print(f"  {p.pid:>7} {p.user:<10} {p.command[:90]}")
    return 0


def cmd_attach(args: argparse.Namespace, settings: Settings) -> int:
    fleet = Fleet(settings)
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
    history = runs.runs_of(settings, args.name, limit=args.limit)
    if args.json:
        rows = [
            {"dir": str(r.path), "started": r.started, "time_to_ready": r.time_to_ready,
             "exit": r.exit, "vllm_version": r.launch.get("vllm_version")}
            for r in history
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for r in history:
        ended = r.exit.get("how") if r.exit else "-"
        print(f"{r.path.name}  ready {fmt_duration(r.time_to_ready):>7}  end {ended:<10} {r.path}")
    return 0


def cmd_demo_model(args: argparse.Namespace, settings: Settings) -> int:
    dest = Path(args.dest) if args.dest else settings.models_dir / args.shape
    python = args.python or registered_runtimes(settings).get("vllm-cpu")
    if python and Path(python).is_dir():
        python = str(Path(python) / "bin" / "python")
    base = Path(args.from_config) if args.from_config else None
    if base is not None and not base.is_file():
        raise UsageError(f"--from-config {base}: no such file")
    demo_model.ensure_demo_model(dest, args.shape, python, base)
    print(dest)
    return 0


def cmd_runtime(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "set":
        if not args.name or not args.path:
            raise UsageError("usage: vllmtui runtime set NAME /path/to/venv")
        file = register_runtime(settings, args.name, args.path)
        print(f"runtime @{args.name} -> {args.path} (saved in {file})")
        return 0
    for name, path in sorted(registered_runtimes(settings).items()):
        exists = "ok" if Path(path).exists() else "missing"
        print(f"@{name:<16} {path}  ({exists})")
    return 0


def cmd_probe(args: argparse.Namespace, settings: Settings) -> int:
    """Chat / tool-call / round-trip probes of a running server (docs/probes.md)."""
    from vllmtui.probes import runner as probes
    from vllmtui.probes.report import report_lines
    from vllmtui.probes.target import probe_options, probe_target, status_reader, tunnel_url
    from vllmtui.probes.toolcheck import printable

    loaded = _load(args, settings)
    fleet = Fleet(settings)
    url = args.url or (f"http://{loaded.profile.client_host}:{args.port}" if args.port else None)
    if args.tunnel:
        url, far_end = tunnel_url(settings, loaded, args.tunnel)
        if far_end is not None:
            raise UsageError(f"tunnel {args.tunnel} is a remote tunnel: its end ({url}) is on"
                             f" {far_end}; probe from there, or give --url")
    target = probe_target(fleet, loaded, url, args.model)
    options = probe_options(loaded, target, args.tools_file, args.prompt, args.tool,
                            read_timeout=args.timeout)
    results = []
    for kind in [k for k in probes.KINDS if getattr(args, k)] or list(probes.KINDS):
        stream = kind == "chat" and not args.json
        if stream:
            print(f"== chat: {options.prompt}", flush=True)
        result = probes.run_probe(
            kind, target, options, status_of=status_reader(fleet, loaded),
            on_text=(lambda piece: print(printable(piece), end="", flush=True)) if stream else None,
        )
        if stream:
            print(flush=True)
        results.append(result)
        if not args.json:
            print("\n".join(report_lines(result)), flush=True)
        if result.steps and result.steps[0].label == "GET /v1/models" and not result.steps[0].ok:
            break  # unreachable, key refused or model not served: the other probes would repeat it
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


def cmd_snippet(args: argparse.Namespace, settings: Settings) -> int:
    """Ready-to-paste curl and Python openai client code for a server."""
    from vllmtui.probes.snippets import client_snippets
    from vllmtui.probes.target import probe_target, tunnel_url

    loaded = _load(args, settings)
    url = args.url or (f"http://{loaded.profile.client_host}:{args.port}" if args.port else None)
    far_end = None
    if args.tunnel:
        url, far_end = tunnel_url(settings, loaded, args.tunnel)
    target = probe_target(Fleet(settings), loaded, url, args.model)
    snips = client_snippets(target.base_url, target.model, target.api_key_env)
    if far_end is not None:
        print(f"# these work on {far_end}, where tunnel {args.tunnel} listens")
    if args.json:
        print(json.dumps(snips.as_dict(), indent=2))
        return 0
    if args.lang in ("curl", "all"):
        print(f"# curl ({target.name})\n{snips.curl}")
    if args.lang in ("python", "all"):
        print(f"# Python, `pip install openai` ({target.name})\n{snips.python}")
    return 0


def cmd_tui(args: argparse.Namespace, settings: Settings) -> int:
    open_tui: Callable[[Settings], int] | None = getattr(args, "open_tui", None)
    if open_tui is None:  # the CLI never imports the UI: `vllmtui.entry` hands it over
        raise UsageError("no terminal UI here: run `vllmtui` (or `python -m vllmtui`) to open it")
    return open_tui(settings)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def profile_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="profile name (or a path to a .yaml file)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a profile field (dotted keys reach sections: args.seed=1)")
        p.add_argument("--port", type=int, help="override the port")

    p = add("profiles", cmd_profiles, "list profiles and whether they are valid")
    p.add_argument("--json", action="store_true")
    profile_opts(add("check", cmd_check, "validate a profile and print its resolved command"))
    p = add("start", cmd_start, "start a server in its own tmux session")
    profile_opts(p)
    p.add_argument("--wait", action="store_true", help="wait until ready, printing the phases")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds --wait waits (900)")
    p = add("stop", cmd_stop, "stop servers: gracefully, or --force")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--force", action="store_true",
                   help="SIGKILL the whole process tree at once, then reap orphans")
    p.add_argument("--timeout", type=float, help="seconds to wait after SIGINT (profile's stop.timeout)")
    p = add("status", cmd_status, "show servers, their state and orphaned vLLM processes")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p = add("attach", cmd_attach, "attach to a server's tmux session (its console)")
    p.add_argument("name")
    p = add("logs", cmd_logs, "print a server's log (from its run directory)")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=int, default=50)
    p.add_argument("--run", help="an earlier run (a prefix of its directory name)")
    p.add_argument("--raw", action="store_true", help="keep ANSI colours and carriage returns")
    p = add("reap", cmd_reap, "kill orphaned vLLM processes that belong to no server")
    p.add_argument("--dry-run", action="store_true", help="only list them")
    p = add("runs", cmd_runs, "list a profile's runs (newest first)")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p = add("demo-model", cmd_demo_model, "generate a tiny random-weight model for CPU tests")
    p.add_argument("--shape", default="tiny", choices=sorted(demo_model.SHAPES))
    p.add_argument("--dest", help="directory (default: the data dir's models/SHAPE)")
    p.add_argument("--python", help="a python with `tokenizers` (default: the @vllm-cpu runtime)")
    p.add_argument("--from-config", metavar="CONFIG_JSON",
                   help="copy a published architecture (random weights of the real size, for GPU dry runs)")
    p = add("runtime", cmd_runtime, "list named vLLM runtimes, or `set NAME PATH` one")
    p.add_argument("action", nargs="?", choices=["list", "set"], default="list")
    p.add_argument("name", nargs="?")
    p.add_argument("path", nargs="?")
    p = add("probe", cmd_probe, "check a running server: streamed chat, tool calls, tool round trip")
    profile_opts(p)
    p.add_argument("--chat", action="store_true", help="streamed chat (timed)")
    p.add_argument("--tools", action="store_true", help="tool calls: tool_choice auto, required, named")
    p.add_argument("--roundtrip", action="store_true", help="tool call, tool result, final answer")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--url", help="probe this base URL instead (e.g. a tunnel's http://127.0.0.1:PORT)")
    p.add_argument("--tunnel", metavar="NAME", help="probe through this configured local tunnel")
    p.add_argument("--model", help="model name to send (default: the profile's served model name)")
    p.add_argument("--tools-file", metavar="FILE", help="extra tools (JSON/YAML list); or probe.tools_file")
    p.add_argument("--tool", metavar="NAME", help="the tool to ask for by name (profile: probe.named_tool)")
    p.add_argument("--prompt", help="the chat probe's message (profile: probe.prompt)")
    p.add_argument("--timeout", type=float, default=60.0, help="read timeout per request in seconds (60)")
    p = add("snippet", cmd_snippet, "print curl and Python openai client code for a server")
    profile_opts(p)
    p.add_argument("--url", help="base URL to put in the code (e.g. a tunnel's local end)")
    p.add_argument("--tunnel", metavar="NAME", help="the base URL of this configured tunnel's end")
    p.add_argument("--model", help="model name (default: the profile's served model name)")
    p.add_argument("--lang", choices=["curl", "python", "all"], default="all")
    p.add_argument("--json", action="store_true")
    from vllmtui.cli.gpu import add_parsers as add_gpu_parsers

    add_gpu_parsers(add)
    from vllmtui.cli.tunnels import add_tunnel_parser

    add_tunnel_parser(sub)
    add("tui", cmd_tui, "open the terminal UI (the default)")
    from vllmtui.cli import bench as cli_bench

    cli_bench.register(add)
    return parser


def main(argv: list[str] | None = None, open_tui: Callable[[Settings], int] | None = None) -> int:
    """Run one command; `open_tui` opens the TUI (for `vllmtui` alone or `vllmtui tui`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.open_tui = open_tui
    try:
        settings = Settings.from_env(args.profiles_dir, args.state_dir, args.tmux_socket)
        handler: Handler = getattr(args, "handler", cmd_tui)
        return handler(args, settings)
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
