"""`Cluster`: a multi-node profile's server across its nodes: started in the plan's order (the
other nodes' processes in tmux sessions of their hosts, Ray's nodes counted before vLLM starts,
then the head's `vllm serve` as an ordinary server of the head host), read node by node, and
stopped backwards with every node checked clean.

The head's server is the profile without `nodes:` and with the head's part (its environment,
its data-parallel flags): a profile of its own, sent to the head host like any `start --host`
sends one (or started here when the head is `local`), so its run directory, log, status,
probes and the TUI work as for any server."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.hosts.fleet import Hosts
from vllmtui.hosts.sending import send_profile
from vllmtui.nodes.addresses import node_addresses
from vllmtui.profiles.launch import resolve
from vllmtui.profiles.loading import parse_profile_lines, read_profile_text
from vllmtui.profiles.model import LoadedProfile
from vllmtui.profiles.multinode import RAY_HEAD, NodeCommand, plan_nodes, ray_command
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus

Say = Callable[[str], None]
RAY_WAIT = 180.0
"""Seconds the Ray nodes have to join before the start gives up (and stops what it started)."""


@dataclass(frozen=True)
class NodeState:
    """One node's process now: `alive`, or why not (`exit_status`, its last lines), or
    `problem` when its host did not answer."""

    index: int
    host: str
    role: str
    session: str
    alive: bool
    exit_status: int | None = None
    last: tuple[str, ...] = ()
    problem: str | None = None

    def describe(self) -> str:
        if self.alive:
            return f"node {self.index} ({self.role} on {self.host}): running"
        exited = f"exited {self.exit_status}" if self.exit_status is not None else "not running"
        why = self.problem or exited
        tail = f": {self.last[-1]}" if self.last else ""
        return f"node {self.index} ({self.role} on {self.host}): {why}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "host": self.host, "role": self.role, "session": self.session,
                "alive": self.alive, "exit_status": self.exit_status, "last": list(self.last),
                "problem": self.problem}


def _extras(step: NodeCommand, base_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in step.env.items() if base_env.get(k) != v}


def _flag_args(argv: tuple[str, ...]) -> dict[str, Any]:
    """`--a 1 --b` -> {"a": "1", "b": True} (the head's data-parallel flags, for `args:`)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        name = argv[i].removeprefix("--")
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[name] = argv[i + 1]
            i += 2
        else:
            out[name] = True
            i += 1
    return out


class Cluster:
    """One multi-node profile's server (see the module's docstring)."""

    def __init__(self, settings: Settings, loaded: LoadedProfile, hosts: Hosts | None = None,
                 ray: list[str] | None = None):
        if not loaded.profile.nodes:
            raise UsageError(f"{loaded.profile.name} has no nodes: it is a one-machine server")
        self.settings = settings
        self.loaded = loaded
        self.profile = loaded.profile
        self.hosts = hosts or Hosts(settings)
        self.spec = resolve(self.profile, settings)
        self.ray = ray or ray_command(self.spec)
        addresses = node_addresses(self.profile, self.hosts.hosts)
        self.plan = plan_nodes(self.profile, self.spec, addresses, self.ray)
        self.main = next(step for step in self.plan if step.main)
        self.others = [step for step in self.plan if not step.main]
        self.ray_said = ""

    # ---------------------------------------------------------------- the head's server

    def head_profile_text(self) -> str:
        """The head's server as a one-machine profile (YAML)."""
        data = yaml.safe_load(read_profile_text(self.loaded.path)) or {}
        data = {k: v for k, v in data.items() if k not in ("nodes", "network", "box", "gpus")}
        data["name"] = self.profile.name
        data["env"] = {**(data.get("env") or {}), **_extras(self.main, self.spec.env)}
        extra = _flag_args(self.main.argv[len(self.spec.argv):])
        if extra:
            data["args"] = {**(data.get("args") or {}), **extra}
        data["description"] = f"the head (node 0) of the multi-node server {self.profile.name}"
        return yaml.safe_dump(data, sort_keys=False)

    def _start_head(self, say: Say) -> None:
        host, name, text = self.main.host, self.profile.name, self.head_profile_text()
        if self.hosts.config(host).is_local:
            profile, warnings, lines = parse_profile_lines(text, self.loaded.path)
            head = LoadedProfile(profile, self.loaded.path, warnings, lines)
            result = Fleet(self.settings).start(head, on_progress=say)
            say(f"node 0 (serve on {host}): started in tmux session {result.session}")
            return
        path = send_profile(self.hosts, host, name, text)
        done = self.hosts.run(host, ["start", path, "--host", "local"], timeout=120)
        if done.returncode != 0:
            said = done.stderr.strip() or done.stdout
            raise VllmtuiError(f"node 0 (serve on {host}) was not started: {said}")
        say(f"node 0 (serve on {host}): started ({done.stdout.strip().splitlines()[0]})")

    # ---------------------------------------------------------------- start

    def start(self, say: Say = print, ray_wait: float = RAY_WAIT) -> None:
        """Every node in order; on a failure, what this start started is stopped again (a
        server already running is refused first: nothing of it is touched)."""
        head = self.head_status()
        if head is not None and head.session is not None:
            raise VllmtuiError(f"{self.profile.name} is running already (its server on {self.main.host}):"
                               f" `vllmtui stop {self.profile.name}` first, or `vllmtui status` to see it")
        started: list[NodeCommand] = []
        try:
            for step in self.others:
                answer = self.hosts.ask(step.host, {
                    "op": "node-start", "session": step.session, "profile": self.profile.name,
                    "argv": list(step.argv), "env": step.env, "cwd": str(self.spec.cwd)}, timeout=30)
                if not answer.get("ok"):
                    where = f"node {step.index} ({step.role} on {step.host})"
                    raise VllmtuiError(f"{where}: {answer.get('error')}")
                if not answer.get("already"):  # a node left from an earlier start is kept as it is
                    started.append(step)
                say(f"node {step.index} ({step.role} on {step.host}): started in tmux session {step.session}")
            if self.profile.distributed_executor_backend == "ray":
                self.wait_ray(say, ray_wait)
            self._start_head(say)
        except (VllmtuiError, OSError) as exc:
            for step in reversed(started):
                self._stop_node(step, 5.0)
            raise VllmtuiError(f"{self.profile.name} was not started: {exc} (the nodes started were"
                               " stopped)") from None

    def ray_nodes(self) -> tuple[int, float] | None:
        """(nodes, GPUs) the Ray cluster reports now; None while it does not answer."""
        head = next(step for step in self.plan if step.role == RAY_HEAD)
        address = f"{head.env['VLLM_HOST_IP']}:{self.profile.network.ray_port}"
        answer = self.hosts.ask(head.host, {"op": "ray-nodes", "ray": self.ray, "address": address,
                                            "env": head.env}, timeout=30)
        self.ray_said = str(answer.get("said") or answer.get("error") or "").strip()
        if not answer.get("ok") or answer.get("nodes") is None:
            return None
        return int(answer["nodes"]), float(answer.get("gpus") or 0)

    def wait_ray(self, say: Say, timeout: float) -> None:
        want = len(self.profile.nodes or [])
        gpus = [len(g) for g in (n.gpus or self.profile.gpus for n in self.profile.nodes or []) if g]
        want_gpus = sum(gpus) if len(gpus) == want else 0
        deadline = time.monotonic() + timeout
        seen: tuple[int, float] | None = None
        while time.monotonic() < deadline:
            seen = self.ray_nodes()
            if seen is not None and seen[0] >= want and seen[1] >= want_gpus:
                say(f"ray: {seen[0]} nodes, {seen[1]:g} GPUs in the cluster")
                return
            for state in self.node_states():
                if not state.alive:
                    raise VllmtuiError(f"ray did not form: {state.describe()}")
            time.sleep(1.0)
        got = f"{seen[0]} nodes, {seen[1]:g} GPUs" if seen else "no answer"
        if self.ray_said:
            got += f" (ray status: {self.ray_said.splitlines()[-1][:200]})"
        raise VllmtuiError(f"ray did not report {want} nodes ({want_gpus} GPUs) within {timeout:g} s: {got}")

    # ---------------------------------------------------------------- reading

    def head_status(self) -> ServerStatus | None:
        """The head's server's status, read where it runs (None: its host did not answer)."""
        host = self.main.host
        if self.hosts.config(host).is_local:
            return Fleet(self.settings).status(self.loaded)
        reading = self.hosts.read(names=[host], gpus=False)[host]
        return next((st for st in reading.statuses if st.name == self.profile.name), None)

    def wait_ready(self, timeout: float,
                   on_change: Callable[[ServerStatus], None] | None = None) -> ServerStatus:
        """Until the head serves (or a node dies, or its server ends); raises after `timeout`."""
        deadline = time.monotonic() + timeout
        last: tuple[str, str | None] | None = None
        while True:
            status = self.head_status()
            if status is not None:
                state, why = self.verdict(status.state)
                if why:
                    status = replace(status, state=state, detail=why)
                if (status.state, status.phase) != last and on_change:
                    on_change(status)
                last = (status.state, status.phase)
                if status.state in ("ready", "crashed", "exited", "stopped", "degraded"):
                    return status
            if time.monotonic() >= deadline:
                raise VllmtuiError(f"{self.profile.name} not ready after {timeout:.0f} s; it keeps running:"
                                   f" `vllmtui status {self.profile.name}` shows each node")
            time.sleep(1.0)

    def node_states(self) -> list[NodeState]:
        """Every other node's process (the head's server has its ordinary status)."""
        out: list[NodeState] = []
        by_host: dict[str, list[NodeCommand]] = {}
        for step in self.others:
            by_host.setdefault(step.host, []).append(step)
        for host, steps in by_host.items():
            try:
                answer = self.hosts.ask(host, {"op": "node-state", "sessions": [s.session for s in steps]},
                                        timeout=10)
                found = answer.get("sessions") or {}
                problem = None if answer.get("ok") else str(answer.get("error"))
            except VllmtuiError as exc:
                found, problem = {}, str(exc)
            for step in steps:
                got = found.get(step.session) or {}
                why = problem or (None if got.get("exists", problem is None) else "not started")
                out.append(NodeState(step.index, step.host, step.role, step.session, bool(got.get("alive")),
                                     got.get("exit_status"), tuple(got.get("last") or ()), why))
        return sorted(out, key=lambda s: s.index)

    def verdict(self, main_state: str) -> tuple[str, str | None]:
        """The server's state with its nodes: `degraded` (which node, why) when the head
        serves but a node is gone; the head's own state otherwise."""
        if main_state not in ("ready", "starting", "unhealthy"):
            return main_state, None
        dead = [s for s in self.node_states() if not s.alive]
        if not dead:
            return main_state, None
        return "degraded", "; ".join(s.describe() for s in dead)

    # ---------------------------------------------------------------- stop

    def _stop_node(self, step: NodeCommand, timeout: float) -> list[int]:
        answer = self.hosts.ask(step.host, {"op": "node-stop", "session": step.session, "timeout": timeout},
                                timeout=timeout + 20)
        return [int(p) for p in answer.get("left") or []]

    def stop(self, force: bool = False, say: Say = print, timeout: float | None = None) -> list[str]:
        """The head's server first (gracefully, or `force`), then the other nodes backwards;
        then every node's host checked for what is left (`VLLM::`, `ray::`, raylet...).
        Returns what is left, as `host: pid command` lines (none: clean)."""
        host, name = self.main.host, self.profile.name
        if self.hosts.config(host).is_local:
            fleet = Fleet(self.settings)
            if fleet.tmux.session(f"vllmtui-{name}") is not None:
                say(fleet.stop(name, force=force, timeout=timeout, on_progress=say).summary())
        else:
            argv = ["stop", name, *(["--force"] if force else []), "--host", "local"]
            done = self.hosts.run(host, argv, timeout=(timeout or 60) + 60)
            lines = (done.stdout or done.stderr).strip().splitlines()
            say(f"node 0 (serve on {host}): {lines[-1] if lines else 'stopped'}")
        for step in reversed(self.others):
            left = self._stop_node(step, 2.0 if force else (timeout or 15.0))
            say(f"node {step.index} ({step.role} on {step.host}): stopped"
                + (f", still running: {left}" if left else ""))
        leftovers: list[str] = []
        for node_host in dict.fromkeys(step.host for step in self.plan):
            answer = self.hosts.ask(node_host, {"op": "leftovers"}, timeout=20)
            leftovers += [f"{node_host}: {p['pid']} {p['command']}" for p in answer.get("processes") or []]
        return leftovers
