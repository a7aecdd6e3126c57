"""The box-wide settings file, `<config dir>/settings.yaml`, and the variables that override it.

Today it holds one setting, `offline: true|false` (docs/models.md, "Offline"): every server
gets `HF_HUB_OFFLINE=1` unless its profile says `offline: false`. `$VLLMTUI_OFFLINE` (1 or 0)
beats the file. A missing file means the defaults; a wrong one is a UsageError naming the
file, the line and the fix (nothing runs on a setting that was misread).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from vllmtui.core import safeyaml
from vllmtui.core.errors import UsageError

FILE_NAME = "settings.yaml"
OFFLINE_VARIABLE = "VLLMTUI_OFFLINE"
KEYS = ("offline",)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class BoxSettings:
    """What the box-wide settings say, and where each came from (for messages)."""

    offline: bool = False
    offline_from: str = ""
    """`$VLLMTUI_OFFLINE` or `<path>:<line>` when set, "" for the default."""


def read_box_settings(config_dir: Path) -> BoxSettings:
    """The box's settings: `$VLLMTUI_OFFLINE`, then `config_dir/settings.yaml`, then defaults."""
    path = config_dir / FILE_NAME
    offline, offline_from = False, ""
    try:
        present = path.exists()
    except OSError:  # unreadable: reading it says why
        present = True
    if present:
        offline, offline_from = _from_file(path)
    value = os.environ.get(OFFLINE_VARIABLE)
    if value is not None:
        word = value.strip().lower()
        if word not in _TRUE | _FALSE:
            raise UsageError(f"${OFFLINE_VARIABLE}={value!r}: write 1 (offline) or 0 (online)")
        offline, offline_from = word in _TRUE, f"${OFFLINE_VARIABLE}"
    return BoxSettings(offline, offline_from if offline else "")


def _from_file(path: Path) -> tuple[bool, str]:
    try:
        node, data = safeyaml.load_file(path, "settings.yaml: lines such as 'offline: true'")
    except safeyaml.YamlRefused as exc:
        raise UsageError("; ".join(exc.problems) + " (fix or delete it)") from None
    if data is None:
        return False, ""
    lines = safeyaml.key_lines(node) if node is not None else {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: expected lines such as 'offline: true' (fix or delete the file)")
    for key in data:
        if str(key) not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(KEYS)})"
            raise UsageError(f"{path}:{lines.get((str(key),), 1)}: {key}: not a setting{hint}")
    offline = data.get("offline", False)
    where = f"{path}:{lines.get(('offline',), 1)}"
    if not isinstance(offline, bool):
        raise UsageError(f"{where}: offline: {offline!r} is not true or false"
                         " (write `offline: true` or `offline: false`)")
    return offline, where
