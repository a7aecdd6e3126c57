"""vLLM's own memory figures, parsed from the lines of a server's log after it starts
(`servers.figures` reads the log).

GPU builds print them on separate lines:
    Model loading took 14.29 GiB memory and 6.17 seconds
    Available KV cache memory: 54.12 GiB
    GPU KV cache size: 443,344 tokens
    Maximum concurrency for 8,192 tokens per request: 54.12x
the CPU build on one line: `CPU KV cache size: N tokens, Maximum concurrency for L tokens
per request: Cx` (and `Explicitly set (1.0/8.59) GiB for KV cache` for the budget).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

_LOADING = re.compile(r"Model loading took ([\d.]+) ?(GiB|GB)")
_AVAILABLE = re.compile(r"Available KV cache memory: ([\d.]+) ?(GiB|GB)")
_EXPLICIT = re.compile(r"Explicitly set \(([\d.]+)/[\d.]+\) GiB for KV cache")
_TOKENS = re.compile(r"\b([A-Z]+)(?: \+ host)? KV cache size: ([\d,]+) tokens")
_CONCURRENCY = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")


@dataclass(frozen=True)
class VllmFigures:
    """What vLLM logged about memory at start (None: not seen yet)."""

    model_loading_gib: float | None = None
    kv_available_gib: float | None = None
    kv_tokens: int | None = None
    kv_device: str | None = None  # GPU | CPU | ...
    concurrency: float | None = None
    concurrency_len: int | None = None

    @property
    def complete(self) -> bool:
        return self.kv_tokens is not None and self.concurrency is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "model_loading_gib": self.model_loading_gib,
            "kv_available_gib": self.kv_available_gib,
            "kv_tokens": self.kv_tokens,
            "device": self.kv_device,
            "max_concurrency": self.concurrency,
            "max_model_len": self.concurrency_len,
        }


def figures_of_line(line: str, figures: VllmFigures) -> VllmFigures:
    """Figures updated with what one (clean) log line says."""
    if "took" in line and (m := _LOADING.search(line)):
        figures = replace(figures, model_loading_gib=float(m.group(1)))
    if "KV cache" in line:
        if m := _AVAILABLE.search(line):
            figures = replace(figures, kv_available_gib=float(m.group(1)))
        if m := _EXPLICIT.search(line):
            figures = replace(figures, kv_available_gib=float(m.group(1)))
        if m := _TOKENS.search(line):
            figures = replace(figures, kv_device=m.group(1), kv_tokens=int(m.group(2).replace(",", "")))
    if "Maximum concurrency" in line and (m := _CONCURRENCY.search(line)):
        figures = replace(
            figures, concurrency_len=int(m.group(1).replace(",", "")), concurrency=float(m.group(2))
        )
    return figures
