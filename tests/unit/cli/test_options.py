"""Every numeric option of every subcommand refuses what makes no sense (negative, NaN, zero
where zero means nothing) in argparse itself: exit 2 and a message naming the option, before
any command runs."""

from __future__ import annotations

import argparse

import pytest

from vllmtui.cli import options
from vllmtui.cli.main import build_parser

# options where 0 means something: logs -n 0 -f (only new lines), no warmups, seed 0,
# --concurrency 0 (no limit, as `inf`)
ZERO_MEANS_SOMETHING = {("logs", "--lines"), ("bench", "--warmups"), ("bench", "--seed"),
                        ("bench", "--concurrency")}


def numeric_options() -> list[tuple[str, str, argparse.Action]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.type is None or not action.option_strings:
                continue
            if action.type is options.gpu_memory:
                continue  # a size, below
            found.append((command, action.option_strings[-1], action))
    return found


def test_there_are_numeric_options_and_none_takes_a_bare_int_or_float() -> None:
    found = numeric_options()
    assert len(found) >= 20
    bare = [(c, o) for c, o, a in found if a.type in (int, float)]
    assert bare == []


@pytest.mark.parametrize(("command", "option", "action"), numeric_options(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_negative_nan_and_zero(command: str, option: str, action: argparse.Action) -> None:
    parse = action.type
    assert callable(parse)
    for bad in ("-5", "nan", "NaN", "x", "1e400"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)
    if (command, option) in ZERO_MEANS_SOMETHING:
        parse("0")
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            parse("0")
    assert parse("3") in (3, 3.0, (3,))


def test_the_command_line_says_which_option_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["start", "srv", "--timeout", "-5", "--wait"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(
        "vllmtui start: error: argument --timeout: must be more than 0 seconds, got -5\n")


def test_special_values() -> None:
    assert options.concurrency_levels("1, 4,inf,0") == (1, 4, None, None)
    with pytest.raises(argparse.ArgumentTypeError, match="each level is 1 or more"):
        options.concurrency_levels("1,-4")
    with pytest.raises(argparse.ArgumentTypeError, match="whole numbers separated by commas"):
        options.concurrency_levels("1,,2")
    assert options.port("65535") == 65535
    for bad in ("0", "65536", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="a port is 1 to 65535"):
            options.port(bad)
    assert options.gpu_memory("80GiB") == "80GiB"
    for bad in ("0GiB", "-5GiB", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            options.gpu_memory(bad)
