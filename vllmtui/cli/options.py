"""Argument types for the numeric options: argparse calls them, so a wrong value is refused
before anything runs, with the option named and what it takes (`usage: ... error: argument
--timeout: ...`, exit status 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from vllmtui.core.errors import UsageError


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(unit: str = "seconds") -> Callable[[str], float]:
    """A finite number above 0 (`--timeout 30`, `--interval 0.5`)."""

    def parse(text: str) -> float:
        value = float(_number(text, float))
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0{' ' + unit if unit else ''}, got {text}")
        return value

    return parse


def positive_int(unit: str = "") -> Callable[[str], int]:
    """A whole number of 1 or more (`--limit 5`, `--num-prompts 50`)."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be 1 or more{' ' + unit if unit else ''}, got {text}")
        return value

    return parse


def non_negative_int(unit: str = "") -> Callable[[str], int]:
    """A whole number of 0 or more (`logs -n 0 -f`: only new lines; `--warmups 0`)."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more{' ' + unit if unit else ''}, got {text}")
        return value

    return parse


def port(text: str) -> int:
    """A TCP port: 1 to 65535."""
    value = int(_number(text, int))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {text}")
    return value


def concurrency_levels(text: str) -> tuple[int | None, ...]:
    """`--concurrency 1,4,16`: each level a whole number of 1 or more; `inf` (or 0): no limit."""
    levels: list[int | None] = []
    for part in text.split(","):
        word = part.strip()
        if word in ("inf", "0"):
            levels.append(None)
            continue
        try:
            value = int(word)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: give whole numbers separated by commas, e.g. 1,4,16 (inf: no limit)"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"{text!r}: each level is 1 or more (inf: no limit), got {word}"
            )
        levels.append(value)
    return tuple(levels)


def gpu_memory(text: str) -> str:
    """`--gpu-memory 80GiB`: a size above 0 (read by the planner); kept as written."""
    from vllmtui.planner.fitcheck import parse_memory

    try:
        size = parse_memory(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return text
