"""Key actions of the app that hand the terminal over or edit profile files (attach, edit,
duplicate, reap) and the Log tab's keys (search, filter, first error, follow). Mixed into
VllmtuiApp; the blocking work runs in domain functions (profile_ops, Tmux, Fleet)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.app import SuspendNotSupported
from textual.widgets import Input, TabbedContent

from vllmtui.core.errors import VllmtuiError
from vllmtui.profiles import ops as profile_ops
from vllmtui.profiles.model import LoadedProfile
from vllmtui.ui.messages import OrphansRead, OrphansReaped, ProfileDuplicated, ProfileEdited
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PromptDialog
from vllmtui.ui.widgets.log_view import LogView

if TYPE_CHECKING:
    from vllmtui.ui.app import VllmtuiApp


class ProfileActions:
    """a (attach), e (edit), d (duplicate)."""

    _select_after_reload: str | None = None
    _info_key: tuple[str, str, str | None] | None = None

    def _foreground(self: VllmtuiApp, job: Callable[[], object]) -> object:  # type: ignore[misc]
        """Run `job` with the terminal handed over (App.suspend)."""
        try:
            with self.suspend():
                return job()
        except SuspendNotSupported:
            return job()  # headless (tests): nothing to hand over

    def action_attach(self: VllmtuiApp) -> None:  # type: ignore[misc]
        status = self._needs_session("attach to")
        if status is None or status.session is None:
            return
        session = status.session
        try:
            code = self._foreground(lambda: self.fleet.tmux.attach(session))
        except VllmtuiError as exc:
            self.notify(str(exc), severity="error")
            return
        if code not in (0, None):
            self.notify(
                f"tmux attach to {session} failed (exit {code}); from a shell:"
                f" {' '.join(self.fleet.tmux.attach_argv(session))}",
                severity="error",
            )
        self.refresh_now()

    def action_edit(self: VllmtuiApp) -> None:  # type: ignore[misc]
        name = self.selected
        path = None
        if name in self.profiles:
            path = self.profiles[name].path
        elif name in self.broken:
            path = self.broken[name].path
        if name is None or path is None:
            self.notify("no profile file for this server (it was started elsewhere)", severity="warning")
            return
        target = path
        try:
            loaded = self._foreground(lambda: profile_ops.edit(target))
            message = ProfileEdited(name, True, f"{target}: valid")
            assert isinstance(loaded, LoadedProfile)
            if loaded.warnings:
                message = ProfileEdited(
                    name, True, f"{target}: valid, with warnings:\n" + "\n".join(loaded.warnings)
                )
        except VllmtuiError as exc:
            message = ProfileEdited(name, False, str(exc))
        self.post_message(message)

    def on_profile_edited(self: VllmtuiApp, message: ProfileEdited) -> None:  # type: ignore[misc]
        if message.ok:
            self.notify(message.message)
        else:
            self.push_screen(MessageDialog(f"{message.name}: the profile has errors", message.message))
        self._info_key = None
        self.refresh_now(reload_profiles=True)

    def action_duplicate(self: VllmtuiApp) -> None:  # type: ignore[misc]
        name = self.selected
        if name not in self.profiles:
            self.notify("select a valid profile to duplicate", severity="warning")
            return
        taken = set(self.profiles) | set(self.broken)
        suggestion, n = f"{name}-copy", 1
        while suggestion in taken:
            n += 1
            suggestion = f"{name}-copy{n}"

        def answered(new_name: str | None) -> None:
            if new_name:
                self.duplicate_profile(self.profiles[name], new_name)

        self.push_screen(
            PromptDialog(f"Duplicate {name} as (a new free port is chosen):", suggestion), answered
        )

    @work(thread=True, group="actions")
    def duplicate_profile(self: VllmtuiApp, loaded: LoadedProfile, new_name: str) -> None:
        try:
            copy = profile_ops.duplicate(self.settings, loaded, new_name)
        except VllmtuiError as exc:
            self.post_message(ProfileDuplicated(None, str(exc), False))
            return
        except OSError as exc:
            self.post_message(ProfileDuplicated(None, f"cannot write the copy: {exc}", False))
            return
        self.post_message(
            ProfileDuplicated(copy.profile.name, f"{copy.path} written (port {copy.profile.port})", True)
        )

    def on_profile_duplicated(self: VllmtuiApp, message: ProfileDuplicated) -> None:  # type: ignore[misc]
        if not message.ok:
            self.push_screen(MessageDialog("duplicate: nothing was written", message.message))
            return
        self.notify(message.message)
        self._select_after_reload = message.name
        self.refresh_now(reload_profiles=True)

    # ------------------------------------------------------------ R: reap orphans

    def action_reap(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.read_orphans()

    @work(thread=True, group="actions")
    def read_orphans(self: VllmtuiApp) -> None:
        try:
            found = self.fleet.orphans()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.post_message(OrphansRead([], f"could not list the processes: {exc}"))
            return
        self.post_message(OrphansRead([f"{p.pid} ({p.title})" for p in found]))

    def on_orphans_read(self: VllmtuiApp, message: OrphansRead) -> None:  # type: ignore[misc]
        if message.error or not message.orphans:
            self.notify(
                message.error or "no orphaned vLLM processes: nothing to reap",
                severity="error" if message.error else "information",
            )
            return
        body = (
            "These vLLM processes belong to no server (they may hold GPU memory).\n"
            "SIGKILL them?\n" + "\n".join(f"  {o}" for o in message.orphans)
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.reap_orphans()

        self.push_screen(ConfirmDialog("Reap orphaned vLLM processes?", body, yes="Kill"), answered)

    @work(thread=True, group="actions")
    def reap_orphans(self: VllmtuiApp) -> None:
        try:
            killed, left = self.fleet.reap()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.post_message(OrphansReaped(0, [], str(exc)))
            return
        self.post_message(OrphansReaped(len(killed), [f"{p.pid} ({p.title})" for p in left]))

    def on_orphans_reaped(self: VllmtuiApp, message: OrphansReaped) -> None:  # type: ignore[misc]
        if message.error:
            self.notify(f"reap failed: {message.error}", severity="error")
        elif message.left:
            self.notify(
                f"killed {message.killed}; STILL RUNNING: {', '.join(message.left)}", severity="error"
            )
        else:
            self.notify(f"killed {message.killed} orphaned process(es); nothing left")
        self.refresh_now()


class LogKeys:
    """l, i, /, n, N, w, !, G."""

    def action_log_tab(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.query_one(TabbedContent).active = "tab-log"
        self.query_one(LogView).focus()

    def action_info_tab(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.query_one(TabbedContent).active = "tab-info"

    def action_search(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.action_log_tab()
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self: VllmtuiApp, event: Input.Submitted) -> None:  # type: ignore[misc]
        if event.input.id != "search":
            return
        view = self.query_one(LogView)
        found = view.find(event.value, forward=True)
        event.input.display = False
        view.focus()
        if event.value and not found:
            self.notify(f"not found: {event.value}", severity="warning")

    def on_key(self: VllmtuiApp, event: object) -> None:  # type: ignore[misc]
        key = getattr(event, "key", "")
        box = self.query_one("#search", Input)
        if key == "escape" and box.has_focus:
            box.display = False
            self.query_one(LogView).focus()

    def action_next_match(self: VllmtuiApp) -> None:  # type: ignore[misc]
        view = self.query_one(LogView)
        if view.search:
            view.find(view.search, forward=True)

    def action_prev_match(self: VllmtuiApp) -> None:  # type: ignore[misc]
        view = self.query_one(LogView)
        if view.search:
            view.find(view.search, forward=False)

    def action_problems(self: VllmtuiApp) -> None:  # type: ignore[misc]
        view = self.query_one(LogView)
        view.set_problems_only(not view.problems_only)
        self.notify("log: warnings and errors only" if view.problems_only else "log: every line", timeout=2)

    def action_first_error(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.action_log_tab()
        status = self.status_of(self.selected)
        cause = status.failure.line if status and status.failure else None
        if not self.query_one(LogView).first_error(cause):
            self.notify("no error in the log shown", severity="information", timeout=2)

    def action_follow(self: VllmtuiApp) -> None:  # type: ignore[misc]
        self.query_one(LogView).follow_end()
