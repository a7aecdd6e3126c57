"""Plan targets: GPU memory by size and by GPU model."""

from __future__ import annotations

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.planner import fitcheck
from vllmtui.planner.sizing import GiB


def test_targets_by_size_and_by_model() -> None:
    assert fitcheck.parse_memory("80GiB") == 80 * GiB == fitcheck.parse_memory("80GB")
    assert fitcheck.parse_memory("81559MiB") == 81559 << 20
    assert fitcheck.gpu_model_memory("h100-80gb") == 81559 << 20
    with pytest.raises(UsageError, match="unknown GPU model"):
        fitcheck.gpu_model_memory("H1000")
    with pytest.raises(UsageError, match="write a size"):
        fitcheck.parse_memory("lots")
