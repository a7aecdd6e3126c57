"""The Plan view: a profile's memory plan, with vLLM's own logged figures beside the estimate.
Renders what it is given (no I/O).

Wiring (the app makes the plan in a worker; it reads config.json and may read the GPUs):

    from vllmtui import fitcheck, memory
    from vllmtui.cli_gpu import logged_figures
    from vllmtui.ui.widgets.plan_view import PlanMade, PlanView

    @work(thread=True, exclusive=True, group="plan")
    def make_plan(self, loaded) -> None:
        try:
            target = fitcheck.make_target(snapshot=self.last_gpu_snapshot)   # live GPUs
            plan = memory.plan_profile(loaded.profile, self.settings, target)
            logged, run_dir = logged_figures(self.settings, loaded.profile.name)
            self.post_message(PlanMade(loaded.profile.name, plan, logged, run_dir))
        except VllmtuiError as exc:                 # e.g. no config.json on disk
            self.post_message(PlanMade(loaded.profile.name, None, error=str(exc)))

    def on_plan_made(self, message: PlanMade) -> None:
        self.query_one(PlanView).show(message)
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from vllmtui.planner.memory import Plan
from vllmtui.planner.text import plan_lines
from vllmtui.planner.vllm_figures import VllmFigures


class PlanMade(Message):
    """A worker planned a profile's memory (or says why it could not)."""

    def __init__(
        self,
        name: str,
        plan: Plan | None,
        logged: VllmFigures | None = None,
        run_dir: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.plan = plan
        self.logged = logged
        self.run_dir = run_dir
        self.error = error


def plan_text(message: PlanMade | None) -> Text:
    """The plan as Rich Text: the verdict coloured, fixes in green (pure)."""
    out = Text()
    if message is None:
        out.append("select a server and press p to plan its memory\n", style="dim")
        return out
    if message.plan is None:
        out.append(f"{message.name}: no plan: ", style="bold yellow")
        out.append(f"{message.error or 'unknown error'}\n")
        return out
    for line in plan_lines(message.plan, message.logged, message.run_dir):
        stripped = line.strip()
        style = ""
        if stripped.startswith("verdict:"):
            style = (
                "bold green" if message.plan.fits else "bold red" if message.plan.fits is False else "bold"
            )
        elif stripped.startswith(("problem:", "gpu:")):
            style = "red"
        elif stripped.startswith("fix:"):
            style = "green"
        elif stripped.startswith(("note:", "try:")):
            style = "dim"
        elif stripped.startswith("plan:"):
            style = "bold"
        out.append(line + "\n", style=style)
    return out


class PlanView(VerticalScroll):
    """Shows the latest plan; `show` is the only way in."""

    DEFAULT_CSS = "PlanView { height: 1fr; } PlanView > Static { width: 1fr; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.message: PlanMade | None = None

    def compose(self) -> ComposeResult:
        yield Static(plan_text(None), id="plan-view-body")

    def show(self, message: PlanMade) -> None:
        self.message = message
        self.query_one("#plan-view-body", Static).update(plan_text(message))
