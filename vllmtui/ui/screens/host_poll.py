"""The main screen's other hosts (hosts.yaml): read in a worker of their own, in parallel,
each within its own time (`Hosts.read`), so a host that hangs never slows this machine's rows;
the readings become the table's remote rows, the header's `hosts` segment and the GPU panel's
other hosts. No hosts.yaml (or only `local`): nothing is read, no host column."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.ui.messages import HostsRead
from vllmtui.ui.rows import COLUMNS, HOST_COLUMNS, Readings
from vllmtui.ui.screens.dialogs import PromptDialog
from vllmtui.ui.screens.panel_keys import PanelKeys
from vllmtui.ui.screens.tabs import panel_of
from vllmtui.ui.selection import Selection
from vllmtui.ui.widgets.remote_actions import RemoteActions
from vllmtui.ui.widgets.server_table import ServerTable
from vllmtui.ui.work import worker

if TYPE_CHECKING:
    from vllmtui.hosts.fleet import Hosts
    from vllmtui.hosts.forwards import Forwards
    from vllmtui.ui.host_rows import HostView

REMOTE_KEYS: dict[str, Callable[[RemoteActions], None]] = {
    "start": lambda a: a.start(),
    "stop": lambda a: a.stop(),
    "force_stop": lambda a: a.stop(force=True),
    "restart": lambda a: a.restart(),
    "attach": lambda a: a.attach(),
    "reap": lambda a: a.reap(),
    "probe_chat": lambda a: a.probe("chat"),
    "probe_tool": lambda a: a.probe("tools"),
    "duplicate": lambda a: a.duplicate(),
    "tunnel": lambda a: a.tunnel(),
}
"""The server keys that work on another host's row (run by that host's vllmtui; `e` too)."""

SPANNING_KEYS = ("start", "stop", "force_stop", "restart")
"""The keys that must act on every node of a multi-node server, not on its head's row alone."""

RELOAD_WAIT = 5.0
"""Seconds between two looks at hosts.yaml while it names no other host."""

HOST_WAIT = 0.9
"""Of each poll interval, how long the reading waits for slow hosts (their last reading
stands meanwhile)."""


class HostPoll(PanelKeys):
    """MainScreen's base: `poll_hosts` posts a `HostsRead` every poll interval."""

    settings: Settings

    def __init__(self) -> None:
        super().__init__()
        self.hosts: Hosts | None = None
        self.hosts_error: str | None = None
        self._host_poke = threading.Event()

    # MainScreen's
    readings: Readings

    def _on_screen(self) -> bool:
        raise NotImplementedError

    def _render_table(self) -> None:
        raise NotImplementedError

    def _render_topbar(self) -> None:
        raise NotImplementedError

    def _hand_down(self) -> None:
        raise NotImplementedError

    @worker("reading the other hosts", group="hosts", exclusive=True)
    def poll_hosts(self) -> None:
        """Every poll interval, the other hosts; hosts.yaml is read again when it changes (a
        host added, a mistake fixed), and not at all while there is none."""
        from vllmtui.hosts.config import hosts_stamp

        this = get_current_worker()
        seen: tuple[float, int] | None = None
        hosts: Hosts | None = None
        forwards = None
        names: tuple[str, ...] = ()
        try:
            while not this.is_cancelled:
                stamp = hosts_stamp(self.settings)
                if stamp != seen:
                    seen = stamp
                    if hosts is not None:
                        hosts.close()
                    hosts, names, forwards = self._open_hosts(stamp is not None)
                if hosts is not None and forwards is not None and names:
                    wait = min(HOST_WAIT, self.settings.poll_interval * 0.9)
                    readings = hosts.read(names=list(names), gpus=True, wait=wait)
                    endpoints = forwards.update(hosts, readings)
                    if this.is_cancelled:
                        return
                    self.post_message(HostsRead(readings, names, hosts, None, endpoints))
                self._host_poke.wait(self.settings.poll_interval if names else RELOAD_WAIT)
                self._host_poke.clear()
        finally:
            self.hosts = None
            if hosts is not None:
                hosts.close()

    def _open_hosts(self, exists: bool) -> tuple[Hosts | None, tuple[str, ...], Forwards | None]:
        """hosts.yaml's hosts (none when there is no file; a mistake in it is said in the header)."""
        from vllmtui.hosts.fleet import Hosts
        from vllmtui.hosts.forwards import Forwards

        self.hosts = None
        if not exists:
            self.post_message(HostsRead({}, ()))
            return None, (), None
        try:
            hosts = Hosts(self.settings)
        except VllmtuiError as exc:
            self.post_message(HostsRead({}, (), None, str(exc)))
            return None, (), None
        names = tuple(n for n in hosts.names() if not hosts.config(n).is_local)
        self.hosts = hosts
        if not names:
            self.post_message(HostsRead({}, ()))
        return hosts, names, Forwards()

    def refresh_hosts(self) -> None:
        self._host_poke.set()

    def on_hosts_read(self, message: HostsRead) -> None:
        if not self._on_screen():
            return
        self.hosts_error = f"hosts: {message.error}" if message.error else None
        from vllmtui.ui.host_rows import remote_statuses

        r = self.readings
        if message.names and not r.host_names:
            self.query_one(ServerTable).set_columns(HOST_COLUMNS)
        elif not message.names and r.host_names:  # hosts.yaml no longer names another host
            self.query_one(ServerTable).set_columns(COLUMNS)
        r.host_names = message.names
        r.hosts = message.readings
        r.hosts_stamp += 1
        r.remote = remote_statuses(message.readings)
        r.endpoints = message.endpoints
        gpu = panel_of(self, "tab-gpu")
        if gpu is not None:
            gpu.host_gpus = {h: reading.gpus for h, reading in message.readings.items()}  # type: ignore[attr-defined]
        self._render_table()
        self._render_topbar()
        self._hand_down()

    def remote_selection(self, selection: Selection) -> Selection:
        """`selection` for another host's row (its server's status, the host), else as it is."""
        name = selection.name
        if not name or "@" not in name:
            return selection
        from vllmtui.ui.host_rows import split_key

        server, host = split_key(name)
        found = self.readings.remote.get(name)
        return replace(selection, status=found[1] if found else None, loaded=None,
                       host=host or name.removeprefix("@"), hosts=self.hosts)

    def with_endpoints(self, selection: Selection) -> Selection:
        return replace(selection, endpoints=self.readings.endpoints) if self.readings.endpoints else selection

    # ---------------------------------------------------------------- keys on another host's row

    def on_remote(self, action: str) -> bool:
        """Run a server key on the selected row's host when the row is another host's (True:
        done here, or said why not); False: a row of this machine."""
        self._flush_hand_down()
        actions = self.query_one(RemoteActions)
        sel = actions.selection
        if not sel.remote:
            return False
        server = sel.status.name if sel.status else None
        spanning = self.readings.profiles.get(server or "")
        if spanning is not None and spanning.profile.nodes and action in SPANNING_KEYS:
            self.notify(f"{server} on {sel.host} is the head of the multi-node server {server}: use its own"
                        f" row ({server}): its keys act on every node", severity="warning")
            return True
        act = REMOTE_KEYS.get(action)
        if act is not None:
            act(actions)
            return True
        if action == "edit":
            actions.edit(self._remote_profile_path(sel))
            return True
        self.notify(f"{sel.name} is on {sel.host}: that key works on this machine's rows; there:"
                    f" `vllmtui --host {sel.host} ...`", severity="warning")
        return True

    def _remote_profile_path(self, sel: Selection) -> str | None:
        reading = self.readings.hosts.get(sel.host or "")
        name = sel.status.name if sel.status else None
        if reading is None or name is None:
            return None
        return next((p.path for p in reading.profiles if p.name == name), None)

    def on_remote_actions_done(self, message: RemoteActions.Done) -> None:
        self.readings.stop_progress.pop(message.key, None)
        self.refresh_hosts()
        self._render_table()

    def _view(self) -> HostView:
        from vllmtui.ui.host_rows import HostView

        return self.readings.view or HostView()

    def set_view(self, view: HostView) -> None:
        self.readings.view = view
        self._render_table()
        self._render_topbar()

    def action_filter_rows(self) -> None:
        def typed(text: str | None) -> None:
            if text is not None:
                self.set_view(replace(self._view(), filter=text.strip()))

        self.app.push_screen(PromptDialog("Show only the rows holding (name, host or state; empty: all):",
                                          self._view().filter), typed)

    def action_group_hosts(self) -> None:
        view = replace(self._view(), grouped=not self._view().grouped)
        self.set_view(view)
        self.notify("rows grouped by host" if view.grouped else "every server by name, hosts mixed")
