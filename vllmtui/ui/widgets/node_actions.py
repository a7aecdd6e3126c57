"""The server keys' work on a multi-node server (a profile with `nodes:`): its start and stop
go through every node (`nodes.Cluster`, docs/multinode.md), in the actions' workers."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widget import Widget

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.profiles.model import LoadedProfile
from vllmtui.ui.messages import ServerStopped, StopProgressed
from vllmtui.ui.screens.dialogs import ConfirmDialog
from vllmtui.ui.work import worker


class NodeActions(Widget):
    """ServerActions' base: the multi-node start and stop."""

    settings: Settings
    stopping: set[str]

    def _begin_stop(self, name: str, force: bool, restart: bool = False) -> None:
        raise NotImplementedError  # ServerActions'

    def _stop_spanning(self, force: bool) -> bool:
        """x / X on a multi-node profile's row: every node, wherever its head runs (after a
        confirmation naming the nodes for X); False for a one-machine profile."""
        selection = getattr(self, "selection", None)
        name = selection.name if selection else None
        loaded = selection.profile_of(name) if selection and name else None
        if loaded is None or not loaded.profile.nodes or name is None:
            return False
        if name in self.stopping:
            self.notify(f"{name} is being stopped already", severity="warning")
            return True
        if not force:
            self._begin_stop(name, force=False)
            return True
        nodes = ", ".join(f"node {i} on {n.host}" for i, n in enumerate(loaded.profile.nodes))
        body = (f"Force-stop {name}: SIGKILL its server on {loaded.profile.nodes[0].host}, then every"
                f" node's processes ({nodes}); each host is then checked for VLLM:: and ray:: processes.")

        def answered(yes: bool | None) -> None:
            if yes:
                self._begin_stop(name, force=True)

        self.app.push_screen(ConfirmDialog(f"Kill {name} on all its nodes?", body, yes="Kill"), answered)
        return True

    def _start_nodes(self, loaded: LoadedProfile) -> None:
        """A multi-node server: every node, then its server (nodes.Cluster; docs/multinode.md)."""
        from vllmtui.nodes.cluster import Cluster

        name = loaded.profile.name

        def say(text: str) -> None:  # each node's start, as a notification
            self.post_message(NodeActions.NodesDone(name, text))

        cluster = Cluster(self.settings, loaded)
        try:
            cluster.start(say=say)
        finally:
            cluster.hosts.close()
        say(f"{name}: every node started; its server is starting on {cluster.main.host}")

    @dataclass
    class NodesDone(Message):
        """A multi-node server's start or stop went through its nodes."""

        name: str
        text: str
        error: bool = False

    def on_node_actions_nodes_done(self, message: NodeActions.NodesDone) -> None:
        self.stopping.discard(message.name)
        self.notify(message.text, severity="error" if message.error else "information")

    @worker("stopping a multi-node server", group="actions")
    def stop_nodes(self, loaded: LoadedProfile, force: bool) -> None:
        from vllmtui.nodes.cluster import Cluster

        name = loaded.profile.name

        def say(text: str) -> None:  # the status cell follows the nodes' stop
            self.post_message(StopProgressed(name, text[:60]))

        try:
            cluster = Cluster(self.settings, loaded)
            try:
                left = cluster.stop(force=force, say=say)
            finally:
                cluster.hosts.close()
        except VllmtuiError as exc:
            self.post_message(ServerStopped(name, None, str(exc)))
            return
        self.post_message(ServerStopped(name, None, None))
        text = f"{name}: every node stopped and clean" if not left else f"{name}: still running: {left}"
        self.post_message(NodeActions.NodesDone(name, text, bool(left)))

