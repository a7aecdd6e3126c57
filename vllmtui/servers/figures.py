"""vLLM's own memory figures of a server, read from its log: the running server's, else its
latest run's (the parsing is `planner.vllm_figures`)."""

from __future__ import annotations

from pathlib import Path

from vllmtui.core.settings import Settings
from vllmtui.planner.vllm_figures import VllmFigures, figures_of_line
from vllmtui.servers import logs, runs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import session_name

HEAD_BYTES = 16 << 20  # the figures come before readiness; never read a whole big log


def read_figures(log_path: Path) -> VllmFigures:
    """vLLM's memory figures from the start of a server log (the first 16 MiB at most);
    an absent or unreadable log gives empty figures."""
    figures = VllmFigures()
    try:
        lines, _ = logs.read_lines_from(log_path, 0, HEAD_BYTES)
    except OSError:
        return figures
    for raw in lines:
        figures = figures_of_line(logs.clean_line(raw), figures)
    return figures


def logged_figures(settings: Settings, name: str) -> tuple[VllmFigures, str | None]:
    """vLLM's figures from the running server's log, else the latest run's."""
    fleet = Fleet(settings)
    sess = fleet.tmux.session(session_name(name))
    run_dir = sess.option("run-dir") if sess else None
    if run_dir is None:
        latest = runs.latest_run(settings, name)
        run_dir = str(latest.path) if latest else None
    if run_dir is None:
        return VllmFigures(), None
    return read_figures(Path(run_dir) / runs.LOG), run_dir
