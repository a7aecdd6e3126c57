"""Nothing outside `vllmtui/ui/` imports the UI toolkit or the UI (DESIGN.md), in every subfolder:
checked by reading each module's imports and by importing them all in a fresh interpreter.
(import-linter checks the same and more in `scripts/test.sh`; this keeps it true under plain pytest.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "vllmtui"
UI = PACKAGE / "ui"
# entry.py is the one module above cli and ui: it opens the TUI, lazily
DOMAIN = sorted(p for p in PACKAGE.rglob("*.py") if UI not in p.parents and p.name != "entry.py")
UI_ROOTS = ("textual", "rich")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_scan_sees_every_subpackage() -> None:
    folders = {p.parent.name for p in DOMAIN}
    assert {"core", "profiles", "servers", "planner", "probes", "tunnels", "bench", "cli"} <= folders


def test_no_module_outside_ui_imports_textual_rich_or_the_ui() -> None:
    offenders = [f"{module_name(path)}: {n}" for path in DOMAIN for n in imports_of(path)
                 if n.split(".")[0] in UI_ROOTS or n == "vllmtui.ui" or n.startswith("vllmtui.ui.")]
    assert offenders == []


def test_the_ui_never_imports_the_cli() -> None:
    offenders = [f"{module_name(path)}: {n}" for path in sorted(UI.rglob("*.py")) for n in imports_of(path)
                 if n == "vllmtui.cli" or n.startswith("vllmtui.cli.")]
    assert offenders == []


def _toolkit_loaded_by(imports: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {imports!r}: importlib.import_module(m)\n"
        "print('\\n'.join(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_domain_loads_no_ui_toolkit() -> None:
    # httpx loads rich by itself when click and rich are installed (its CLI): that is httpx's,
    # not ours; nothing the domain imports may add to it, and Textual never loads
    baseline = _toolkit_loaded_by(["httpx"])
    loaded = _toolkit_loaded_by([module_name(p) for p in DOMAIN if p.stem != "__main__"])
    assert not any(n.split(".")[0] == "textual" for n in loaded)
    assert loaded - baseline == set()
