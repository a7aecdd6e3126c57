"""How a process's command line is shown (core/procs.py)."""

from __future__ import annotations

import pytest

from vllmtui.core.procs import command_line


@pytest.mark.parametrize(
    ("argv", "name", "shown"),
    [
        # setproctitle: the title, then the old argv's room as NULs (psutil: empty arguments)
        (["VLLM::EngineCore", *[""] * 300], "python3", "VLLM::EngineCore"),
        (["python", "-m", "vllm.entrypoints.openai.api_server", "", ""], "python", "python -m vllm.entrypoints.openai.api_server"),
        (["sh", "-c", "", "x"], "sh", "sh -c  x"),  # an empty argument in the middle is real
        ([], "kworker/0:1", "kworker/0:1"),
        (["", ""], "zsh", "zsh"),
    ],
)
def test_command_line(argv: list[str], name: str, shown: str) -> None:
    assert command_line(argv, name) == shown
