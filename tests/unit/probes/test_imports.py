"""The probe modules load without the UI toolkit."""

from __future__ import annotations

import subprocess
import sys


def test_probe_modules_do_not_import_the_ui() -> None:
    # httpx (0.29, with click and rich installed) loads rich for its own CLI: count only
    # what importing the probe modules adds on top of httpx
    code = (
        "import sys, httpx; before = set(sys.modules);"
        "import vllmtui.probes.runner, vllmtui.probes.target, vllmtui.probes.report,"
        " vllmtui.probes.snippets;"
        "bad = [m for m in set(sys.modules) - before if m.split('.')[0] in ('textual', 'rich')];"
        " print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
