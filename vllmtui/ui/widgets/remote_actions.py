"""The server keys on another host's row: start (s), stop (x), kill (X), restart (r), attach
(a), edit (e), duplicate (d), probes (c, t), reap (R) and a tunnel here (T), each run by that
host's own vllmtui over its ssh connection (`Hosts.run`: the state, the profiles and the API
keys are the host's). A widget with nothing
to show, like ServerActions: dialogs ask, workers run, notifications say what happened and
`RemoteDone` tells the screen to read the hosts again."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import SuspendNotSupported
from textual.message import Message
from textual.reactive import var
from textual.widget import Widget

from vllmtui.core.errors import VllmtuiError
from vllmtui.servers.status import ServerStatus
from vllmtui.ui.messages import StopProgressed
from vllmtui.ui.screens.dialogs import ConfirmDialog, MessageDialog, PromptDialog
from vllmtui.ui.selection import Selection
from vllmtui.ui.work import worker

if TYPE_CHECKING:
    from vllmtui.hosts.fleet import Hosts

START_TIMEOUT = 60.0
"""Seconds a host has to answer a start (which returns once the tmux session is up)."""
STOP_TIMEOUT = 180.0
"""Seconds a host has to finish a graceful stop (vLLM's own shutdown, then SIGTERM, SIGKILL)."""


def said(done: subprocess.CompletedProcess[str]) -> str:
    """What the host's vllmtui printed, in a few lines (its error first)."""
    text = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-8:]) or f"exit {done.returncode}"


class RemoteActions(Widget):
    """Runs the server keys on `selection` when it is another host's row."""

    DEFAULT_CSS = "RemoteActions { display: none; }"

    @dataclass
    class Done(Message):
        """A command ran on a host: `key` is the row, `ok` whether it worked."""

        key: str
        host: str
        what: str
        ok: bool
        text: str
        report: bool = False
        """Shown in a dialog even when it worked (a probe's report)."""

    selection: var[Selection] = var(Selection(), init=False, always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.busy: set[str] = set()

    # ---------------------------------------------------------------- what every key checks

    def _target(self, verb: str, running: bool | None = None) -> tuple[Hosts, str, str, str] | None:
        """(hosts, host, server name, row key) of the selected row, or None and a notification."""
        sel = self.selection
        host, hosts, status, key = sel.host, sel.hosts, sel.status, sel.name or ""
        if host is None or hosts is None:
            self.notify(f"{host or 'that host'}: not connected yet; try again in a second",
                        severity="warning")
            return None
        if status is None:
            self.notify(f"{host}: no server on this row (it is the host's own: {verb} needs a server row)",
                        severity="warning")
            return None
        if running is True and status.session is None:
            self.notify(f"{status.name} on {host} is not running: nothing to {verb}", severity="warning")
            return None
        if running is False and status.running:
            self.notify(f"{status.name} on {host} is running already", severity="warning")
            return None
        if key in self.busy:
            self.notify(f"{status.name} on {host}: a command runs there already", severity="warning")
            return None
        return hosts, host, status.name, key

    def _run(self, key: str, host: str, what: str, hosts: Hosts, argv: list[str], timeout: float) -> None:
        self.busy.add(key)
        self.run_there(key, host, what, hosts, argv, timeout)

    @worker("running a command on another host", group="remote")
    def run_there(self, key: str, host: str, what: str, hosts: Hosts, argv: list[str],
                  timeout: float) -> None:
        done = hosts.run(host, [*argv, "--host", "local"], timeout=timeout)
        self.post_message(self.Done(key, host, what, done.returncode == 0, said(done)))

    def on_remote_actions_done(self, message: RemoteActions.Done) -> None:
        # not stopped: the screen reads the hosts again
        self.busy.discard(message.key)
        if message.ok and not message.report:
            self.notify(f"{message.host}: {message.what}: {message.text.splitlines()[-1]}")
            return
        title = f"{message.host}: {message.what} {'passed' if message.ok else 'failed'}"
        self.app.push_screen(MessageDialog(title, message.text, error=not message.ok))

    # ---------------------------------------------------------------- the keys

    def start(self) -> None:
        found = self._target("start", running=False)
        if found:
            hosts, host, name, key = found
            self._run(key, host, f"start {name}", hosts, ["start", name], START_TIMEOUT)

    def stop(self, force: bool = False) -> None:
        found = self._target("kill" if force else "stop", running=True)
        if not found:
            return
        hosts, host, name, key = found
        if not force:
            self.post_message(StopProgressed(key, f"stopping on {host}"))
            self._run(key, host, f"stop {name}", hosts, ["stop", name], STOP_TIMEOUT)
            return
        pid = self.selection.status.pid if self.selection.status else None
        body = (f"Force-stop {name} on {host}: SIGKILL, no graceful shutdown. This kills the process"
                f" tree of its tmux pane there{f' (pid {pid})' if pid else ''} and removes the"
                f" session vllmtui-{name} on {host}.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(StopProgressed(key, f"killing on {host}"))
                self._run(key, host, f"kill {name}", hosts, ["stop", name, "--force"], STOP_TIMEOUT)

        self.app.push_screen(ConfirmDialog(f"Kill {name} on {host}?", body, yes="Kill"), answered)

    def restart(self) -> None:
        status = self.selection.status
        if status is not None and status.session is None:
            self.start()
            return
        found = self._target("restart", running=True)
        if found:
            hosts, host, name, key = found
            self.post_message(StopProgressed(key, f"restarting on {host}"))
            self.restart_there(key, host, name, hosts)

    @worker("restarting a server on another host", group="remote")
    def restart_there(self, key: str, host: str, name: str, hosts: Hosts) -> None:
        self.busy.add(key)
        stopped = hosts.run(host, ["stop", name, "--host", "local"], timeout=STOP_TIMEOUT)
        if stopped.returncode != 0:
            self.post_message(self.Done(key, host, f"restart {name} (stop)", False, said(stopped)))
            return
        started = hosts.run(host, ["start", name, "--host", "local"], timeout=START_TIMEOUT)
        self.post_message(self.Done(key, host, f"restart {name}", started.returncode == 0, said(started)))

    def attach(self) -> None:
        found = self._target("attach to", running=True)
        if not found:
            return
        hosts, host, name, key = found
        argv = hosts.command_argv(host, ["attach", name, "--host", "local"], tty=True)
        code = self._foreground(lambda: subprocess.call(argv))
        if code not in (0, None):
            self.notify(f"attach to {name} on {host} failed (exit {code}); from a shell:"
                        f" vllmtui attach {name} --host {host}", severity="error")
        self.post_message(self.Done(key, host, f"attach {name}", True, "detached"))

    def edit(self, path: str | None) -> None:
        """The host's profile in the host's editor (the app suspends), then checked there."""
        found = self._target("edit")
        if not found:
            return
        hosts, host, name, key = found
        if path is None:
            self.notify(f"{name} on {host} has no profile file there (it was started elsewhere)",
                        severity="warning")
            return
        self._foreground(lambda: subprocess.call(hosts.edit_argv(host, path)))
        self._run(key, host, f"edit {name}: {path} checked", hosts, ["check", name], 60)

    def duplicate(self) -> None:
        """The host's profile copied beside it there, under a new name with a new port."""
        found = self._target("duplicate")
        if not found:
            return
        hosts, host, name, key = found

        def answered(new: str | None) -> None:
            if new:
                self.duplicate_there(key, host, name, new.strip(), hosts)

        self.app.push_screen(PromptDialog(f"Duplicate {name} on {host} as (a new free port is chosen there):",
                                          f"{name}-copy"), answered)

    @worker("duplicating a profile on another host", group="remote")
    def duplicate_there(self, key: str, host: str, name: str, new: str, hosts: Hosts) -> None:
        try:
            answer = hosts.ask(host, {"op": "duplicate", "name": name, "new": new}, timeout=30)
        except VllmtuiError as exc:
            self.post_message(self.Done(key, host, f"duplicate {name}", False, str(exc)))
            return
        if not answer.get("ok"):
            self.post_message(self.Done(key, host, f"duplicate {name}", False, str(answer.get("error"))))
            return
        self.post_message(self.Done(key, host, f"duplicate {name}", True,
                                    f"{answer['path']} written there (port {answer['port']})"))

    def tunnel(self) -> None:
        """A local port that reaches the server over the host's ssh connection (kept while this
        vllmtui runs): its URL, for a client here."""
        found = self._target("reach", running=True)
        if found:
            hosts, host, name, key = found
            status = self.selection.status
            assert status is not None
            self.forward_there(key, host, name, status, hosts)

    @worker("forwarding a port to another host", group="remote")
    def forward_there(self, key: str, host: str, name: str, status: ServerStatus, hosts: Hosts) -> None:
        try:
            url = hosts.base_url(host, status)
        except VllmtuiError as exc:
            self.post_message(self.Done(key, host, f"tunnel to {name}", False, str(exc)))
            return
        self.post_message(self.Done(key, host, f"tunnel to {name}", True,
                                    f"{name} is reachable here at {url} (over ssh, while vllmtui runs)"))

    def _foreground(self, job: Callable[[], int]) -> int | None:
        try:
            with self.app.suspend():
                return job()
        except SuspendNotSupported:
            return None  # headless (tests): no terminal to hand over

    def probe(self, kind: str) -> None:
        found = self._target(f"probe ({kind})", running=True)
        if found:
            hosts, host, name, key = found
            self.notify(f"{name} on {host}: {kind} probe running there...")
            self.probe_there(key, host, name, kind, hosts)

    @worker("probing a server on another host", group="remote")
    def probe_there(self, key: str, host: str, name: str, kind: str, hosts: Hosts) -> None:
        from vllmtui.probes.report import report_lines
        from vllmtui.probes.results import ProbeResult

        argv = ["probe", name, "--json", "--tools" if kind == "tools" else "--chat", "--host", "local"]
        done = hosts.run(host, argv, timeout=STOP_TIMEOUT)
        try:
            results = [ProbeResult.from_json(r) for r in json.loads(done.stdout)]
        except (ValueError, TypeError, KeyError, AttributeError):
            self.post_message(self.Done(key, host, f"{kind} probe of {name}", False, said(done), True))
            return
        ok = bool(results) and all(r.ok for r in results)
        lines = [line for r in results for line in report_lines(r)]
        self.post_message(self.Done(key, host, f"{kind} probe of {name}", ok, "\n".join(lines) or said(done),
                                    True))

    def reap(self) -> None:
        host, hosts = self.selection.host, self.selection.hosts
        if host is None or hosts is None:
            self.notify("that host is not connected yet; try again in a second", severity="warning")
            return
        self.list_orphans_there(host, hosts)

    @worker("listing orphans on another host", group="remote")
    def list_orphans_there(self, host: str, hosts: Hosts) -> None:
        done = hosts.run(host, ["reap", "--dry-run", "--host", "local"], timeout=30)
        self.post_message(self.OrphansListed(host, hosts, done.returncode == 0, said(done)))

    @dataclass
    class OrphansListed(Message):
        host: str
        hosts: Hosts
        ok: bool
        text: str

    def on_remote_actions_orphans_listed(self, message: RemoteActions.OrphansListed) -> None:
        message.stop()
        host, hosts = message.host, message.hosts
        if not message.ok or message.text.startswith("no orphaned"):
            self.notify(f"{host}: {message.text}", severity="information" if message.ok else "error")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(f"@{host}", host, "reap", hosts, ["reap"], 30)

        body = f"These vLLM processes on {host} belong to no server. SIGKILL them?\n{message.text}"
        self.app.push_screen(ConfirmDialog(f"Reap orphaned vLLM processes on {host}?", body, yes="Kill"),
                             answered)
