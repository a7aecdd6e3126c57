"""The probe modules load without the UI toolkit."""

from __future__ import annotations

import subprocess
import sys


def test_probe_modules_do_not_import_the_ui() -> None:
    code = (
        "import sys, vllmtui.probes, vllmtui.probe_target, vllmtui.probe_report, vllmtui.snippets;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
