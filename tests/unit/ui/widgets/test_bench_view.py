"""The bench form turns its fields into options or says what to fix."""

from __future__ import annotations

import math

import pytest

from vllmtui.bench.load import BenchOptions
from vllmtui.core.errors import UsageError
from vllmtui.ui.widgets.bench_view import parse_options


def test_parse_options_names_the_field() -> None:
    base = {"input-len": "16", "output-len": "4", "num-prompts": "3", "concurrency": "2", "rate": ""}
    assert parse_options(base) == BenchOptions(16, 4, 3, (2,), math.inf)
    with pytest.raises(UsageError, match="concurrency"):
        parse_options({**base, "concurrency": "1,x"})
    with pytest.raises(UsageError, match="req/s"):
        parse_options({**base, "rate": "-1"})
    with pytest.raises(UsageError, match="prompts"):
        parse_options({**base, "num-prompts": "0"})
