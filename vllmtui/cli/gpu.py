"""`vllmtui gpus|plan`: the GPU reading and the memory planner for scripts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vllmtui.cli.common import AddCommand
from vllmtui.cli.options import gpu_memory, positive_int
from vllmtui.core.settings import Settings
from vllmtui.planner import fitcheck, inputs, memory
from vllmtui.planner.gpu import read_gpus
from vllmtui.planner.text import gpu_lines, plan_lines
from vllmtui.profiles.loading import find_profile, parse_set_options
from vllmtui.servers.figures import logged_figures
from vllmtui.servers.fleet import Fleet


def cmd_gpus(args: argparse.Namespace, settings: Settings) -> int:
    snap = read_gpus(Fleet(settings))
    if args.json:
        print(json.dumps(snap.to_json(), indent=2))
    else:
        print("\n".join(gpu_lines(snap)))
    return 0


def cmd_plan(args: argparse.Namespace, settings: Settings) -> int:
    overrides = parse_set_options(args.set or [])
    loaded = find_profile(settings, args.name, overrides or None)
    target = (
        fitcheck.make_target(
            args.gpu_memory,
            args.gpu,
            args.gpus,
            gpus=tuple(loaded.profile.gpus) if loaded.profile.gpus else None,
        )
        if inputs.plan_settings(loaded.profile).device != "cpu" or args.gpu_memory or args.gpu
        else inputs.GpuTarget(None, 0, "cpu", "none")
    )
    plan = memory.plan_profile(loaded.profile, settings, target, args.config)
    logged, run_dir = logged_figures(settings, loaded.profile.name)
    live: list[str] = []
    if target.source == "live":
        live = fitcheck.live_warnings(plan, read_gpus(Fleet(settings)), own_server=loaded.profile.name)
    if args.json:
        data: dict[str, Any] = plan.to_json()
        data["vllm_logged"] = logged.to_json() if run_dir else None
        data["live_warnings"] = live
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(plan_lines(plan, logged, run_dir)))
        for warning in live:
            print(f"  gpu:      {warning}")
    return 1 if plan.fits is False else 0


def add_parsers(add: AddCommand) -> None:
    """Register gpus and plan."""
    p = add("gpus", cmd_gpus, "show the GPUs, their processes and which server holds each")
    p.add_argument("--json", action="store_true")
    p = add("plan", cmd_plan, "estimate a profile's GPU memory: weights, KV cache, tokens, concurrency")
    p.add_argument("name", help="profile name (or a path to a .yaml file)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a profile field")
    p.add_argument("--gpu-memory", type=gpu_memory, metavar="SIZE",
                   help="plan for GPUs of this size (80GiB, 24GB)")
    p.add_argument(
        "--gpu",
        metavar="MODEL",
        help=f"plan for a GPU model ({', '.join(list(fitcheck.GPU_MODELS)[:8])}, ...)",
    )
    p.add_argument("--gpus", type=positive_int("GPUs"), metavar="N",
                   help="how many GPUs the target machine has")
    p.add_argument("--config", metavar="PATH", help="read the model's config.json from here")
    p.add_argument("--json", action="store_true")
