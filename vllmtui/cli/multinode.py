"""`start`, `stop` and `status` of a multi-node profile (`nodes:`): through `nodes.Cluster`,
which starts every node's process on its host in the plan's order and stops them backwards."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

from vllmtui.core.humanize import fmt_duration
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.nodes.cluster import Cluster
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.status import ServerStatus


def start(args: argparse.Namespace, settings: Settings, loaded: LoadedProfile) -> int:
    cluster = Cluster(settings, loaded)
    begin = time.monotonic()
    try:
        cluster.start(say=lambda m: print(m, flush=True))
        if not getattr(args, "wait", False):
            name = loaded.profile.name
            print(f"{name}: every node started; `vllmtui status {name}` shows them")
            return 0

        def on_change(status: ServerStatus) -> None:
            words = " ".join(w for w in (status.state, status.phase_label, status.detail) if w)
            print(f"[{time.monotonic() - begin:6.1f}s] {words}", flush=True)

        final = cluster.wait_ready(args.timeout, on_change)
    finally:
        cluster.hosts.close()
    if final.state == "ready":
        where = base_url(final.host, final.port or 0)
        print(f"{final.name} is ready at {where} on {cluster.main.host}"
              f" (time to ready {fmt_duration(time.monotonic() - begin)}, every node)")
        return 0
    print(f"{final.name} did not become ready: {final.state}: {final.detail}", file=sys.stderr)
    return 1


def stop(args: argparse.Namespace, settings: Settings, loaded: LoadedProfile) -> int:
    cluster = Cluster(settings, loaded)
    try:
        left = cluster.stop(force=args.force, say=lambda m: print(m, flush=True), timeout=args.timeout)
    finally:
        cluster.hosts.close()
    if left:
        print(f"{loaded.profile.name}: still running on its nodes:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    print(f"{loaded.profile.name}: every node is clean (no VLLM:: or ray:: process left)")
    return 0


def part(settings: Settings, loaded: LoadedProfile) -> tuple[ServerStatus | None, dict[str, Any]]:
    """A multi-node server as `status` shows it: its head's status (read where the head runs)
    with the server's state given its nodes, and the nodes' part for `status --json`."""
    cluster = Cluster(settings, loaded)
    try:
        head = cluster.head_status()
        if head is None or not head.running:
            return head, {"state": head.state if head else "unknown", "why": None,
                          "head": cluster.main.host, "nodes": []}
        states = cluster.node_states()
        state, why = cluster.verdict(head.state)
    finally:
        cluster.hosts.close()
    shown = replace(head, state=state, detail=why) if why else head
    nodes = [n.to_json() for n in states]
    return shown, {"state": state, "why": why, "head": cluster.main.host, "nodes": nodes}
