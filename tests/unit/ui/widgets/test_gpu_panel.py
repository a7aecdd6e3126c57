"""The GPU panel's pure rendering helpers."""

from __future__ import annotations

from vllmtui.ui.widgets.gpu_panel import sparkline


def test_sparkline_scales_to_blocks() -> None:
    assert sparkline([0, 50, 100], width=5) == "  ▁▅█"
    assert sparkline([100.0] * 40, width=10) == "█" * 10
