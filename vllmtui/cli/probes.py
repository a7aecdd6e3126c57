"""`vllmtui probe|snippet`: check a running server with real requests; client code for it."""

from __future__ import annotations

import argparse
import json

from vllmtui.cli import options
from vllmtui.cli.common import AddCommand, add_profile_options, load_profile_arg
from vllmtui.cli.options import positive_float
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet


def _url(
    args: argparse.Namespace, settings: Settings, loaded: LoadedProfile
) -> tuple[str | None, str | None]:
    """The base URL the command line asks for (--url, --port, or --tunnel's end; None: the
    server's own), and where that URL works: None for here, else a remote tunnel's host."""
    if args.tunnel:
        from vllmtui.probes.target import tunnel_url

        return tunnel_url(settings, loaded, args.tunnel)
    return args.url or (loaded.profile.base_url if args.port else None), None


def cmd_probe(args: argparse.Namespace, settings: Settings) -> int:
    """Chat / tool-call / round-trip probes of a running server (docs/probes.md)."""
    from vllmtui.probes.report import report_lines
    from vllmtui.probes.runner import run_probe
    from vllmtui.probes.spec import KINDS
    from vllmtui.probes.target import probe_options, probe_target, status_reader
    from vllmtui.probes.toolcheck import printable

    loaded = load_profile_arg(args, settings)
    fleet = Fleet(settings)
    url, far_end = _url(args, settings, loaded)
    if far_end is not None:
        raise UsageError(f"tunnel {args.tunnel} is a remote tunnel: its end ({url}) is on"
                         f" {far_end}; probe from there, or give --url")
    target = probe_target(fleet, loaded, url, args.model)
    options = probe_options(loaded, target, args.tools_file, args.prompt, args.tool,
                            read_timeout=args.timeout)
    results = []
    for kind in [k for k in KINDS if getattr(args, k)] or list(KINDS):
        stream = kind == "chat" and not args.json
        if stream:
            print(f"== chat: {options.prompt}", flush=True)
        result = run_probe(
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
    from vllmtui.probes.target import probe_target

    if args.gateway:
        return _gateway_snippet(args, settings)
    if not args.name:
        raise UsageError("name the profile whose server the code should reach (or --gateway)")
    loaded = load_profile_arg(args, settings)
    url, far_end = _url(args, settings, loaded)
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


def _gateway_snippet(args: argparse.Namespace, settings: Settings) -> int:
    """Code for the gateway: one base URL and one key for every model, and the one tunnel a
    laptop needs to reach them all."""
    from vllmtui.gateway.manage import load_checked
    from vllmtui.probes.snippets import client_snippets
    from vllmtui.profiles.gateway_config import served_profiles
    from vllmtui.profiles.loading import discover
    from vllmtui.tunnels.laptop import laptop_command

    gateway = load_checked(settings)
    config = gateway.config
    served = served_profiles(config, discover(settings)[0])
    models = [p.profile.model_name for p in served]
    if args.name:
        match = [p for p in served if args.name in (p.profile.name, p.profile.model_name)]
        if not match:
            raise UsageError(f"the gateway does not serve {args.name!r};"
                             f" it serves: {', '.join(models) or 'none'}")
        models = [match[0].profile.model_name, *[m for m in models if m != match[0].profile.model_name]]
    model = args.model or (models[0] if models else "MODEL")
    base = args.url or config.origin
    snips = client_snippets(base, model, config.api_key_env)
    tunnel = laptop_command(config.host, config.port)
    if args.json:
        print(json.dumps({**snips.as_dict(), "models": models, "tunnel": tunnel.text,
                          "base_url": base + "/v1"}, indent=2))
        return 0
    print(f"# the gateway at {base}/v1 serves: {', '.join(models) or 'no model yet'}"
          " (change `model` to pick one)")
    print(f"# from your laptop, one tunnel reaches every model: {tunnel.text}")
    if args.lang in ("curl", "all"):
        print(f"# curl (gateway)\n{snips.curl}")
    if args.lang in ("python", "all"):
        print(f"# Python, `pip install openai` (gateway)\n{snips.python}")
    return 0


def add_parsers(add: AddCommand) -> None:
    """Register probe and snippet."""
    p = add("probe", cmd_probe, "check a running server: streamed chat, tool calls, tool round trip")
    add_profile_options(p)
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
    p.add_argument("--timeout", type=positive_float(), default=60.0,
                   help="read timeout per request in seconds (60)")
    p = add("snippet", cmd_snippet,
            "print curl and Python openai client code for a server (or the gateway)")
    p.add_argument("name", nargs="?",
                   help="profile name (or a path to a .yaml file); with --gateway: its model")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a profile field (dotted keys reach sections: args.seed=1)")
    p.add_argument("--port", type=options.port, help="override the port")
    p.add_argument("--gateway", action="store_true",
                   help="code for the gateway (one URL and key for every model; `vllmtui gateway up`)")
    p.add_argument("--url", help="base URL to put in the code (e.g. a tunnel's local end)")
    p.add_argument("--tunnel", metavar="NAME", help="the base URL of this configured tunnel's end")
    p.add_argument("--model", help="model name (default: the profile's served model name)")
    p.add_argument("--lang", choices=["curl", "python", "all"], default="all")
    p.add_argument("--json", action="store_true")
