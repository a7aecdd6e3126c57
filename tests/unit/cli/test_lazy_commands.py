"""The CLI imports only the invoked command's module: its table of command groups must say
exactly what each module registers, and a command must still parse as with every group."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from vllmtui.cli import main as cli_main


def test_the_table_names_what_each_module_registers() -> None:
    for module, names in cli_main.COMMANDS:
        if not module:
            continue
        seen: list[str] = []

        def add(name: str, handler: object, help_text: str, seen: list[str] = seen) -> argparse.ArgumentParser:
            seen.append(name)
            return argparse.ArgumentParser()

        importlib.import_module(f"vllmtui.cli.{module}").add_parsers(add)
        assert tuple(seen) == names, module
    full = cli_main.build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [n for _, names in cli_main.COMMANDS for n in names]


@pytest.mark.parametrize(("argv", "word"), [
    (["status", "--json"], "status"), (["--state-dir", "x", "stop", "a"], "stop"),
    (["--host", "gpu1", "logs", "a"], "logs"), (["--version"], None), ([], None), (["--", "plan"], "plan"),
])
def test_the_command_word(argv: list[str], word: str | None) -> None:
    assert cli_main.command_word(argv) == word


def test_status_does_not_import_the_other_groups() -> None:
    code = ("import sys; from vllmtui.cli import main; main.build_parser(['status', '--json']);"
            "print(sorted(m for m in sys.modules if m.startswith(('vllmtui.bench', 'vllmtui.gateway',"
            " 'vllmtui.chat', 'vllmtui.cli.bench', 'vllmtui.cli.gateway', 'vllmtui.cli.chat'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_typo_still_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "vllmtui", "stauts"], capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice: 'stauts'" in out.stderr and "'status'" in out.stderr
