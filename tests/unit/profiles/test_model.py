"""Profile field types: human-friendly token counts read as vLLM reads them."""

from __future__ import annotations

import pytest

from vllmtui.profiles.model import parse_human_int


@pytest.mark.parametrize(
    ("value", "expected"),
    [("32k", 32000), ("32K", 32768), ("1m", 1_000_000), ("1M", 1 << 20), ("25.6k", 25600), (4096, 4096), ("4096", 4096)],
)
def test_human_ints_follow_vllm(value: object, expected: int) -> None:
    assert parse_human_int(value) == expected
