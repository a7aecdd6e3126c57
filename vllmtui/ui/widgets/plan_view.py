"""The Plan tab: the selected profile's memory plan, with vLLM's own logged figures beside
the estimate. The view plans in its own worker (it reads config.json, judges against the
latest GPU reading it was handed) whenever it is shown or the selection changes while shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.planner import fitcheck, memory
from vllmtui.planner.gpu import GpuSnapshot
from vllmtui.planner.memory import Plan
from vllmtui.planner.text import plan_lines
from vllmtui.planner.vllm_figures import VllmFigures
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.figures import logged_figures
from vllmtui.ui.selection import Selection
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.work import worker


@dataclass
class PlanMade(Message):
    """A profile's memory was planned (or the plan says why it could not be)."""

    name: str
    plan: Plan | None
    logged: VllmFigures | None = None
    run_dir: str | None = None
    error: str | None = None


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
    """Shows the latest plan of the selected profile."""

    DEFAULT_CSS = "PlanView { height: 1fr; } PlanView > Static { width: 1fr; }"

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.gpu_snapshot: GpuSnapshot | None = None  # handed down: the plan is judged against it
        self.message: PlanMade | None = None
        self._planned: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(plan_text(None), id="plan-view-body")

    def watch_selection(self, selection: Selection) -> None:
        if self.shown and selection.name != self._planned:
            self._plan()

    def watch_shown(self, shown: bool) -> None:
        if shown:
            self._plan()  # fresh each time the tab is opened
        else:
            self._planned = None

    def _plan(self) -> None:
        name = self.selection.name
        self._planned = name
        if name is not None and self.settings is not None:
            self.make_plan(self.settings, name, self.selection.loaded, self.gpu_snapshot)

    @worker("planning the memory", group="plan", exclusive=True)
    def make_plan(
        self, settings: Settings, name: str, loaded: LoadedProfile | None, snapshot: GpuSnapshot | None
    ) -> None:
        if loaded is None:
            self.post_message(PlanMade(name, None, error=f"no profile file for {name} here"))
            return
        try:
            target = fitcheck.make_target(snapshot=snapshot)
            plan = memory.plan_profile(loaded.profile, settings, target)
            logged, run_dir = logged_figures(settings, name)
            self.post_message(PlanMade(name, plan, logged, run_dir))
        except VllmtuiError as exc:
            self.post_message(PlanMade(name, None, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - a plan that fails says so in the tab
            self.post_message(PlanMade(name, None, error=f"planning failed: {exc}"))

    def on_plan_made(self, message: PlanMade) -> None:
        message.stop()
        if message.name == self.selection.name:
            self.show(message)

    def show(self, message: PlanMade) -> None:
        self.message = message
        update_body(self, "plan-view-body", plan_text(message))
