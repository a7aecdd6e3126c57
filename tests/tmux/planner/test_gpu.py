"""GPU processes are mapped to servers through real process trees in real tmux sessions;
orphans are flagged first.

This machine has no NVIDIA driver, so the NVML query itself is replaced by
`standin_nvml_query` (tests/support/gpu.py), a STAND-IN listing real pids with made-up memory
figures; everything after the query (process trees, tmux sessions, orphans) is real. The real
query is proven on the GPU machine (docs/gpu-and-plan.md)."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.support.gpu import standin_nvml_query
from tests.support.helpers import wait_for
from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.planner.gpu import read_gpus
from vllmtui.servers.fleet import Fleet


def _titled(title: str, new_session: bool) -> subprocess.Popen[bytes]:
    """A real process whose command line starts with `title` (as vLLM's children do)."""
    return subprocess.Popen(["bash", "-c", f"exec -a {title} sleep 300"], start_new_session=new_session)


def test_processes_map_to_their_server_and_orphans_come_first(settings: Settings, fake_server: int) -> None:
    from tests.support.helpers import spawn_orphan

    orphan_pid = spawn_orphan("VLLM::Worker_TP0")  # reparented: its API server is gone
    other = _titled("python3", new_session=True)  # somebody else's job
    try:
        wait_for(lambda: all(procs.alive([orphan_pid, other.pid])), what="helper processes")
        query = standin_nvml_query({fake_server: 40_000, orphan_pid: 12_000, other.pid: 3_000})
        snap = read_gpus(Fleet(settings), query=query)
        assert snap.ok
        by_pid = {p.pid: p for p in snap.processes}
        assert by_pid[fake_server].server == "fake"
        assert by_pid[fake_server].command.startswith("VLLM::EngineCore")
        assert by_pid[orphan_pid].orphan and by_pid[orphan_pid].server is None
        assert not by_pid[other.pid].orphan and by_pid[other.pid].owner == "other"
        assert [p.pid for p in snap.unowned] == [orphan_pid, other.pid]
        usage = snap.usage_by_server()["fake"]
        assert usage.gpus == (0,) and usage.memory == 40_000 << 20 and usage.pids == (fake_server,)
        assert "1 ORPHAN(S)" in snap.summary()
        assert snap.to_json()["hint"] and "vllmtui reap" in snap.to_json()["hint"]
    finally:
        os.kill(orphan_pid, signal.SIGKILL)
        other.kill()
        other.wait()


def test_a_multinode_servers_node_sessions_map_to_the_server(settings: Settings, fake_server: int,
                                                              tmux: object) -> None:
    """Ray's workers live under a node session (kind node, profile naming the server): their
    GPU memory is the server's, beside its own session's, and they are not servers themselves."""
    from vllmtui.core.tmux import Tmux
    from vllmtui.hosts import node_ops

    assert isinstance(tmux, Tmux)
    node_ops.start(settings, {"op": "node-start", "session": "vllmtui-fake-node1-ray", "profile": "fake",
                              "argv": ["bash", "-c", "(exec -a ray::RayWorkerWrapper sleep 300) & wait"]})
    try:
        def worker() -> int | None:
            info = tmux.session("vllmtui-fake-node1-ray")
            tree = procs.tree_of(info.pane_pid) if info and info.pane_pid else []
            titled = [p.pid for p in tree if p.command.startswith("ray::")]
            return titled[0] if titled else None

        ray_worker = int(wait_for(worker, what="the node's Ray worker"))  # type: ignore[arg-type]
        query = standin_nvml_query({fake_server: 40_000, ray_worker: 30_000})
        usage = read_gpus(Fleet(settings), query=query).usage_by_server()["fake"]
        assert set(usage.pids) == {fake_server, ray_worker} and usage.memory == 70_000 << 20
        assert [s.name for s in Fleet(settings).server_sessions()] == ["vllmtui-fake"]
    finally:
        node_ops.stop(settings, {"session": "vllmtui-fake-node1-ray", "timeout": 2})
    assert tmux.session("vllmtui-fake-node1-ray") is None
