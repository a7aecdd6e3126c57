"""The Models tab: every model on disk (the Hugging Face cache and the local model directories
profiles point at) with its size, revisions, when it was last used and the profiles using it;
the totals and the free disk space (`models_text`: pure, what `vllmtui models` prints, styled).

While the tab is shown the panel reads the files in its own worker every
`settings.models_poll` seconds (`models.cache.cache_report`; hidden, it reads nothing) and
posts the reading as `ModelsPanel.ReportRead`. `remove_model()` (key D) asks which model or
revision, plans the removal in a worker (refused while a running server uses it: the
servers are those of the latest statuses), asks in a ConfirmDialog naming the space it frees
and removes it in a worker (`models.removal.remove`, the same call as `vllmtui models rm`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.humanize import fmt_bytes
from vllmtui.core.settings import Settings
from vllmtui.models.cache import CacheReport, cache_report
from vllmtui.models.listing import not_cached_lines, report_rows, table, totals_text
from vllmtui.models.removal import Removal, plan_removal, refuse_busy, remove
from vllmtui.servers.model_use import servers_using
from vllmtui.ui.screens.dialogs import ConfirmDialog, PickDialog
from vllmtui.ui.selection import Selection
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.work import worker

HIDDEN_WAIT = 3600.0
"""Seconds a hidden tab's worker sleeps (showing the tab wakes it at once)."""


def models_text(report: CacheReport | None, now: float, error: str | None = None,
                pending: str | None = None) -> Text:
    """What the tab shows, as one Rich Text (pure: the reading and the time in)."""
    out = Text()
    if pending:
        out.append(f"{pending}\n", style="yellow")
    if report is None:
        out.append(f"cannot read the model files: {error}\n" if error else "reading the model files...\n",
                   style="red" if error else "dim")
        return out
    out.append(f"Hugging Face cache {report.cache_dir}\n", style="dim")
    rows = report_rows(report, now)
    if rows:
        lines = table(rows)
        out.append(lines[0] + "\n", style="bold")
        for row, line in zip(rows, lines[1:], strict=True):
            style = "dim" if row.revision_of else ("" if row.kind == "hub" else "cyan")
            out.append(line + "\n", style=style)
    else:
        out.append("no models in the cache, and no profile points at a local model directory\n",
                   style="dim")
    for line in not_cached_lines(report):
        out.append(line + "\n", style="yellow")
    for problem in report.problems:
        out.append(f"{problem}\n", style="red")
    out.append("\n" + totals_text(report) + "\n", style="bold")
    if error:
        out.append(f"the last reading failed ({error}): this one is older\n", style="red")
    out.append("D removes a model (or one revision) from the cache, after a confirmation\n", style="dim")
    return out


@dataclass(frozen=True)
class Choice:
    """One entry of the removal picker: a whole model, or one revision of it."""

    label: str
    repo_id: str
    revision: str | None
    cache_dir: Path | None


def removal_choices(report: CacheReport) -> list[Choice]:
    """What D offers: each model of a cache, then each of its revisions when it has several."""
    out = []
    for model in report.models:
        if model.kind != "hub":
            continue
        used = f", used by {', '.join(model.profiles)}" if model.profiles else ""
        count = len(model.revisions)
        scope = f"all {count} revisions" if count > 1 else "1 revision"
        out.append(Choice(f"{model.repo_id}  {fmt_bytes(model.size_on_disk)} ({scope}{used})",
                          model.repo_id, None, model.cache_dir))
        if count > 1:
            out += [Choice(f"{model.repo_id} revision {r.label}", model.repo_id, r.commit, model.cache_dir)
                    for r in model.revisions]
    return out


class ModelsPanel(VerticalScroll):
    """Shows the latest reading of the model files; with settings, takes the readings itself."""

    DEFAULT_CSS = "ModelsPanel { height: 1fr; padding: 0 1; } ModelsPanel > Static { width: 1fr; }"

    @dataclass
    class ReportRead(Message):
        """The model files were read (or `error` says why not)."""

        report: CacheReport | None
        error: str | None = None

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ModelsPanel.ReportRead)

    @dataclass
    class Planned(Message):
        """A removal was planned and nothing uses its files: it waits for the confirmation."""

        removal: Removal

    @dataclass
    class Removed(Message):
        """A removal finished, or was refused: what to say."""

        summary: str
        failed: bool = False

    selection: var[Selection] = var(Selection(), init=False, always_update=True)
    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, *, now: Callable[[], float] = time.time,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.now = now
        self.report: CacheReport | None = None
        self.error: str | None = None
        self.pending: str | None = None  # "removing ..." while a removal runs
        self.readings = 0
        self._poke = threading.Event()
        self._closed = False

    def compose(self) -> ComposeResult:
        yield Static(models_text(None, self.now()), id="models-body")

    def on_mount(self) -> None:
        if self.settings is not None:
            self.poll_models(self.settings)

    def on_unmount(self) -> None:
        self._closed = True
        self._poke.set()

    def watch_shown(self, shown: bool) -> None:
        if shown:
            self._poke.set()  # a fresh reading now
            self._refresh_view()

    def watch_selection(self, old: Selection, new: Selection) -> None:
        names = [p.profile.name for p in new.profiles]
        if names != [p.profile.name for p in old.profiles]:
            self._poke.set()  # "which profiles use it" changed

    @worker("reading the model files", group="models", exclusive=True)
    def poll_models(self, settings: Settings) -> None:
        this = get_current_worker()
        while not this.is_cancelled and not self._closed:
            if self.shown:
                try:
                    message = self.ReportRead(cache_report(settings, list(self.selection.profiles)))
                except Exception as exc:  # noqa: BLE001 - the tab says so and reads again later
                    message = self.ReportRead(None, f"{type(exc).__name__}: {exc}")
                if this.is_cancelled or self._closed:
                    return
                self.post_message(message)
            self._poke.wait(settings.models_poll if self.shown else HIDDEN_WAIT)
            self._poke.clear()

    def on_models_panel_report_read(self, message: ModelsPanel.ReportRead) -> None:
        message.stop()
        self.readings += 1
        if message.report is not None:
            self.report = message.report
        self.error = message.error
        self._refresh_view()

    # ------------------------------------------------------------ removing (key D)

    def remove_model(self) -> None:
        """Ask which model (or revision) to remove, then confirm with the space it frees."""
        if self.settings is None:
            return
        if self.pending:
            self.notify(f"still {self.pending}", severity="warning")
            return
        if self.report is None:
            self.notify("the model files are still being read: try again in a moment")
            return
        choices = removal_choices(self.report)
        if not choices:
            self.notify("nothing to remove: no model is in the Hugging Face cache")
            return
        report, settings = self.report, self.settings

        def picked(label: str | None) -> None:
            choice = next((c for c in choices if c.label == label), None)
            if choice is not None:
                self._set_pending(f"checking {choice.repo_id}...")
                self.plan_remove(settings, report, choice)

        self.app.push_screen(PickDialog("Remove which model from the cache?", [c.label for c in choices]),
                             picked)

    @worker("planning a removal", group="models-action")
    def plan_remove(self, settings: Settings, report: CacheReport, choice: Choice) -> None:
        try:
            removal = plan_removal(report, choice.repo_id, choice.revision, choice.cache_dir)
            refuse_busy(removal, servers_using(removal, self.selection.statuses))
        except VllmtuiError as exc:
            self.post_message(self.Removed(str(exc), failed=True))
            return
        self.post_message(self.Planned(removal))

    def on_models_panel_planned(self, message: ModelsPanel.Planned) -> None:
        message.stop()
        self._set_pending(None)
        removal = message.removal
        users = sorted(set(removal.model.profiles))
        again = (f"\nProfile{'s' if len(users) > 1 else ''} {', '.join(users)} will download it again"
                 " on the next start (or `vllmtui pull`)." if users else "")
        body = removal.question() + again

        def answered(yes: bool | None) -> None:
            if yes and not self.pending:
                self._set_pending(f"removing {removal.what}...")
                self.run_remove(removal)

        self.app.push_screen(ConfirmDialog(f"Remove {removal.what}?", body, yes="Remove"), answered)

    @worker("removing a model", group="models-action")
    def run_remove(self, removal: Removal) -> None:
        try:
            result = remove(removal, servers_using(removal, self.selection.statuses))
        except VllmtuiError as exc:
            self.post_message(self.Removed(str(exc), failed=True))
            return
        finally:
            self._poke.set()
        self.post_message(self.Removed(result.summary(), failed=bool(result.left)))

    def on_models_panel_removed(self, message: ModelsPanel.Removed) -> None:
        message.stop()
        self._set_pending(None)
        self.notify(message.summary, severity="error" if message.failed else "information",
                    timeout=10 if message.failed else 5)
        self._poke.set()

    # ------------------------------------------------------------ rendering

    def _set_pending(self, text: str | None) -> None:
        self.pending = text
        self._refresh_view()

    def _refresh_view(self) -> None:
        if not self.shown:  # hidden tabs are not re-rendered; they catch up when shown
            return
        update_body(self, "models-body", models_text(self.report, self.now(), self.error, self.pending))

