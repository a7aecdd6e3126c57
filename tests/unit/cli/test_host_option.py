"""`--host NAME` is accepted wherever a user writes it: before the command, after it, and after
a sub-command (`models rm X --host H`, which was refused as an unrecognized argument)."""

from __future__ import annotations

import argparse

import pytest

from vllmtui.cli.main import build_parser


@pytest.mark.parametrize("argv", [
    ["--host", "gpu1", "models", "rm", "org/m"],
    ["models", "--host", "gpu1", "rm", "org/m"],
    ["models", "rm", "org/m", "--host", "gpu1"],
    ["models", "rm", "--host=gpu1", "org/m"],
    ["status", "--host", "gpu1"],
    ["stop", "a", "--host", "gpu1"],
])
def test_host_is_read_wherever_it_is_written(argv: list[str]) -> None:
    args = build_parser(argv).parse_args(argv)
    assert args.on_host == "gpu1"


def test_every_sub_command_of_every_command_takes_host() -> None:
    parser = build_parser(None)
    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if not any("--host" in a.option_strings for a in child._actions):
                        missing.append(f"{path} {name}".strip())
                    walk(child, f"{path} {name}".strip())

    walk(parser, "")
    assert missing == []
