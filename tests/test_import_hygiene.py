"""The domain never imports the UI toolkit (DESIGN.md): checked by reading every module
outside vllmtui/ui/ and by importing them all in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vllmtui"
DOMAIN = sorted(p for p in PACKAGE.glob("*.py"))
UI_ROOTS = ("textual", "rich")


def test_no_domain_module_imports_textual_or_rich() -> None:
    offenders = []
    for path in DOMAIN:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            # cli.py is the one place that opens the TUI (lazily, for `vllmtui` alone)
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in UI_ROOTS
                          or (n.startswith("vllmtui.ui") and path.name != "cli.py")]
    assert offenders == []


def test_importing_the_domain_loads_no_ui_toolkit() -> None:
    modules = [f"vllmtui.{p.stem}" for p in DOMAIN if p.stem not in ("__main__",)]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
