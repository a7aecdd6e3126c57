"""The server keys' work: start (s), stop (x), kill (X), restart (r), attach (a), edit (e),
duplicate (d) and reap (R). A widget with nothing to show: it holds the selection it is
handed, asks in dialogs, runs the blocking domain calls (Fleet, Tmux, profile operations) in
its own workers, says what happened in notifications and posts the results up so the screen
can read the servers again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.app import SuspendNotSupported
from textual.message import Message
from textual.reactive import var

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.profiles import ops as profile_ops
from vllmtui.profiles.loading import find_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus
from vllmtui.ui import readings
from vllmtui.ui.format import countdown_words
from vllmtui.ui.messages import (
    ForceTargetsRead,
    OrphansRead,
    OrphansReaped,
    ProfileDuplicated,
    ProfileEdited,
    ServerStarted,
    ServerStopped,
    StartRefused,
    StopProgressed,
)
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PickDialog, PromptDialog
from vllmtui.ui.selection import Selection
from vllmtui.ui.widgets.node_actions import NodeActions
from vllmtui.ui.work import worker


class ServerActions(NodeActions):
    """Runs what the server keys ask for, on `selection`."""

    DEFAULT_CSS = "ServerActions { display: none; }"

    @dataclass
    class Detached(Message):
        """The user came back from a server's tmux session."""

        session: str

    selection: var[Selection] = var(Selection(), init=False, always_update=True)

    def __init__(self, settings: Settings, fleet: Fleet, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.fleet = fleet
        self.stopping: set[str] = set()

    # ---------------------------------------------------------------- start

    def _stopped_profiles(self) -> list[str]:
        sel = self.selection
        names = [s.name for s in sel.statuses if sel.profile_of(s.name) and not s.running]
        return names + [b.name for b in sel.broken if sel.status_of(b.name) is None]

    def start(self) -> None:
        sel = self.selection
        name, status = sel.name, sel.status
        startable = sel.profile_of(name) is not None or sel.broken_of(name) is not None
        if name and startable and (status is None or not status.running):
            self.start_server(name)
            return
        choices = self._stopped_profiles()
        if not choices:
            self.notify(
                "every profile is running already"
                if sel.statuses
                else "no profiles found: put a profile YAML in "
                + ", ".join(str(d) for d in self.settings.profiles_dirs[:2]),
                severity="warning",
            )
            return

        def picked(name: str | None) -> None:
            if name:
                self.start_server(name)

        self.app.push_screen(PickDialog("Start which profile?", choices), picked)

    @worker("starting a server", group="actions")
    def start_server(self, name: str) -> None:
        self._start(name)

    def _start(self, name: str) -> None:
        try:
            loaded = find_profile(self.settings, name)
            if loaded.profile.nodes:
                self._start_nodes(loaded)
                return
            others, _, _ = readings.read_profiles(self.settings)
            result = self.fleet.start(loaded, others)
        except VllmtuiError as exc:
            self.post_message(StartRefused(name, str(exc)))
            return
        except OSError as exc:
            self.post_message(StartRefused(name, f"{name} was not started: {exc}"))
            return
        self.post_message(ServerStarted(result))

    def on_server_started(self, message: ServerStarted) -> None:
        result = message.result
        text = f"{result.name}: started in tmux session {result.session}"
        if result.warnings:
            text += "\nwarnings:\n" + "\n".join(result.warnings)
        self.notify(text, severity="warning" if result.warnings else "information")

    def on_start_refused(self, message: StartRefused) -> None:
        self.app.push_screen(
            MessageDialog(f"{message.name}: not started (nothing was started)", message.message)
        )

    # ---------------------------------------------------------------- stop, kill, restart

    def _needs_session(self, verb: str) -> ServerStatus | None:
        status = self.selection.status
        if status is None or status.session is None:
            self.notify(f"{self.selection.name or 'nothing'} is not running: nothing to {verb}",
                        severity="warning")
            return None
        return status

    def stop(self) -> None:
        if self._stop_spanning(force=False):
            return
        status = self._needs_session("stop")
        if status is None:
            return
        if status.name in self.stopping:
            self.notify(f"{status.name} is being stopped already", severity="warning")
            return
        self._begin_stop(status.name, force=False)

    def _begin_stop(self, name: str, force: bool, restart: bool = False) -> None:
        self.stopping.add(name)
        spanning = self.selection.profile_of(name)
        if spanning is not None and spanning.profile.nodes:  # every node, backwards
            self.post_message(StopProgressed(name, "stopping its nodes"))
            self.stop_nodes(spanning, force)
            return
        self.post_message(StopProgressed(name, "killing (SIGKILL)" if force else "sending SIGINT"))
        self.stop_server(name, force, restart)

    @worker("stopping a server", group="actions")
    def stop_server(self, name: str, force: bool, restart: bool = False) -> None:
        def progress(text: str) -> None:
            self.post_message(StopProgressed(name, countdown_words(text)))

        try:
            result = self.fleet.stop(name, force=force, on_progress=progress)
        except VllmtuiError as exc:
            self.post_message(ServerStopped(name, None, str(exc), restart))
            return
        self.post_message(ServerStopped(name, result, None, restart))
        if restart:
            self._start(name)

    def on_server_stopped(self, message: ServerStopped) -> None:
        self.stopping.discard(message.name)
        if message.error:
            self.notify(message.error, severity="error")
        elif message.result is not None:
            self.notify(message.result.summary(), severity="error" if message.result.left else "information")

    def force_stop(self) -> None:
        if self._stop_spanning(force=True):
            return
        status = self._needs_session("kill")
        if status is not None:
            self.read_force_targets(status.name, status.pid)

    @worker("listing what a forced stop kills", group="actions")
    def read_force_targets(self, name: str, pid: int | None) -> None:
        try:
            self.post_message(ForceTargetsRead(name, readings.force_targets(pid)))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog instead
            self.post_message(ForceTargetsRead(name, [], f"could not list the processes: {exc}"))

    def on_force_targets_read(self, message: ForceTargetsRead) -> None:
        name = message.name
        none = "  (no live process; the session is removed)"
        targets = "\n".join(f"  {t}" for t in message.targets) or none
        body = (
            f"Force-stop {name}: SIGKILL, no graceful shutdown. This kills:\n{targets}\n"
            f"and removes the tmux session vllmtui-{name}."
        )
        if message.error:
            body += f"\n({message.error})"

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_stop(name, force=True)

        self.app.push_screen(ConfirmDialog(f"Kill {name}?", body, yes="Kill"), answered)

    def restart(self) -> None:
        name, status = self.selection.name, self.selection.status
        if name is None:
            return
        if status is not None and status.session is not None:
            if name in self.stopping:
                self.notify(f"{name} is being stopped already", severity="warning")
                return
            self._begin_stop(name, force=False, restart=True)
        else:
            self.start_server(name)

    # ---------------------------------------------------------------- attach, edit, duplicate

    def _foreground(self, job: Callable[[], object]) -> object:
        """Run `job` with the terminal handed over (App.suspend)."""
        try:
            with self.app.suspend():
                return job()
        except SuspendNotSupported:
            return job()  # headless (tests): nothing to hand over

    def attach(self) -> None:
        status = self._needs_session("attach to")
        if status is None or status.session is None:
            return
        session = status.session
        if session.startswith("slurm job "):  # a batch job on a node: no console here
            self.notify(f"{status.name} runs as {session}: no console to attach to; the Log tab follows its"
                        " output", severity="warning")
            return
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
        self.post_message(self.Detached(session))

    def _profile_path(self, name: str | None) -> Path | None:
        loaded, broken = self.selection.profile_of(name), self.selection.broken_of(name)
        return loaded.path if loaded else broken.path if broken else None

    def edit(self) -> None:
        name = self.selection.name
        path = self._profile_path(name)
        if name is None or path is None:
            self.notify("no profile file for this server (it was started elsewhere)", severity="warning")
            return
        try:
            loaded = self._foreground(lambda: profile_ops.edit(path))
            assert isinstance(loaded, LoadedProfile)
            text = f"{path}: valid"
            if loaded.warnings:
                text += ", with warnings:\n" + "\n".join(loaded.warnings)
            message = ProfileEdited(name, True, text)
        except VllmtuiError as exc:
            message = ProfileEdited(name, False, str(exc))
        self.post_message(message)

    def on_profile_edited(self, message: ProfileEdited) -> None:
        if message.ok:
            self.notify(message.message)
        else:
            self.app.push_screen(MessageDialog(f"{message.name}: the profile has errors", message.message))

    def duplicate(self) -> None:
        name = self.selection.name
        loaded = self.selection.profile_of(name)
        if name is None or loaded is None:
            self.notify("select a valid profile to duplicate", severity="warning")
            return
        taken = {p.profile.name for p in self.selection.profiles} | {b.name for b in self.selection.broken}
        suggestion, n = f"{name}-copy", 1
        while suggestion in taken:
            n += 1
            suggestion = f"{name}-copy{n}"

        def answered(new_name: str | None) -> None:
            if new_name:
                self.duplicate_profile(loaded, new_name)

        self.app.push_screen(PromptDialog(f"Duplicate {name} as (a new free port is chosen):", suggestion),
                             answered)

    @worker("duplicating a profile", group="actions")
    def duplicate_profile(self, loaded: LoadedProfile, new_name: str) -> None:
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

    def on_profile_duplicated(self, message: ProfileDuplicated) -> None:
        if message.ok:
            self.notify(message.message)
        else:
            self.app.push_screen(MessageDialog("duplicate: nothing was written", message.message))

    # ---------------------------------------------------------------- R: reap orphans

    @worker("listing orphaned vLLM processes", group="actions")
    def reap(self) -> None:
        try:
            found = self.fleet.orphans()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.post_message(OrphansRead([], f"could not list the processes: {exc}"))
            return
        self.post_message(OrphansRead([f"{p.pid} ({p.title})" for p in found]))

    def on_orphans_read(self, message: OrphansRead) -> None:
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

        self.app.push_screen(ConfirmDialog("Reap orphaned vLLM processes?", body, yes="Kill"), answered)

    @worker("reaping orphaned vLLM processes", group="actions")
    def reap_orphans(self) -> None:
        try:
            killed, left = self.fleet.reap()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.post_message(OrphansReaped(0, [], str(exc)))
            return
        self.post_message(OrphansReaped(len(killed), [f"{p.pid} ({p.title})" for p in left]))

    def on_orphans_reaped(self, message: OrphansReaped) -> None:
        if message.error:
            self.notify(f"reap failed: {message.error}", severity="error")
        elif message.left:
            left = ", ".join(message.left)
            self.notify(f"killed {message.killed}; STILL RUNNING: {left}", severity="error")
        else:
            self.notify(f"killed {message.killed} orphaned process(es); nothing left")
