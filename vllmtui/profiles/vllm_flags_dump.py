"""Run by a runtime's own python (never imported by vllmtui): print the flags of that vLLM's
server, as its own argument parser defines them, plus the named values some flags take
(quantization methods, load formats, tool parsers) that vLLM checks after parsing.

Usage: PYTHON vllm_flags_dump.py MODULE   (MODULE: vllm.entrypoints.cli.main for `vllm serve`,
vllm.entrypoints.openai.api_server for the module entry point). It runs MODULE as vLLM would
run it, with `argparse.ArgumentParser.parse_args` replaced by a function that prints the
parser's options as one JSON line after MARKER and exits: nothing is served, no model loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import typing
from typing import Any, NoReturn

MARKER = "@@VLLMTUI-FLAGS@@"


def _options(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """Every option of `parser` (of its `serve` subcommand, for the `vllm` command)."""
    out: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            serve = action.choices.get("serve") if isinstance(action.choices, dict) else None
            if serve is not None:
                out.update(_options(serve))
            continue
        for option in action.option_strings:
            out[option] = {
                "choices": None if action.choices is None else [str(c) for c in action.choices],
                "nargs": None if action.nargs is None else str(action.nargs),
            }
    return out


def _named_values() -> dict[str, list[str]]:
    """Values vLLM checks after parsing, read from where this vLLM keeps them (each may be
    missing in another version: then it is left out)."""
    found: dict[str, list[str]] = {}
    try:
        from vllm.model_executor.layers.quantization import QuantizationMethods

        found["quantization"] = [str(v) for v in typing.get_args(QuantizationMethods)]
    except Exception:  # noqa: BLE001,S110 - another vLLM keeps it elsewhere: leave it out
        pass
    try:
        from vllm.model_executor.model_loader import LoadFormats

        found["load_format"] = [str(v) for v in typing.get_args(LoadFormats)]
    except Exception:  # noqa: BLE001,S110
        pass
    for module in ("vllm.tool_parsers", "vllm.entrypoints.openai.tool_parsers"):
        try:
            manager = __import__(module, fromlist=["ToolParserManager"]).ToolParserManager
            names = manager.list_registered() if hasattr(manager, "list_registered") else []
            names = names or list(getattr(manager, "tool_parsers", {}))
            found["tool_call_parser"] = sorted(str(n) for n in names)
            break
        except Exception:  # noqa: BLE001,S112
            continue
    return {k: v for k, v in found.items() if v}


def _dump(self: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> NoReturn:
    version = None
    try:
        import vllm

        version = getattr(vllm, "__version__", None)
    except Exception:  # noqa: BLE001,S110
        pass
    payload = {"vllm_version": version, "flags": _options(self), "values": _named_values()}
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    module = sys.argv[1]
    argparse.ArgumentParser.parse_args = _dump  # type: ignore[method-assign]
    argparse.ArgumentParser.parse_known_args = _dump  # type: ignore[method-assign]
    sys.argv = ["vllm", "serve", "--help"] if module.endswith("cli.main") else [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    sys.exit(3)  # the module never parsed its arguments


if __name__ == "__main__":
    main()
