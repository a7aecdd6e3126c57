"""Every node's command of a multi-node profile (pure): what runs where, in which tmux session,
in which order. `vllmtui check` prints it before anything starts; the nodes' start follows it.

Ray (`distributed_executor_backend: ray`): `ray start --head --block` on the head, then
`ray start --address HEAD:PORT --block` on each other node, then `vllm serve` on the head
(tensor/pipeline parallel across the Ray cluster). vLLM's own multi-node data parallel: `vllm
serve` on every node, the head serving the API and each other node `--headless` with its
`--data-parallel-start-rank`; `--data-parallel-address` / `--data-parallel-rpc-port` name the
head. The order of the list is the start order; a stop goes backwards.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from vllmtui.profiles.launch import LaunchSpec
from vllmtui.profiles.model import Profile
from vllmtui.profiles.nodes_spec import node_gpus

SERVE = "serve"
RAY_HEAD = "ray-head"
RAY_WORKER = "ray-worker"
HEADLESS = "headless"


@dataclass(frozen=True)
class NodeCommand:
    """One process of a multi-node server. `main`: the server's own session
    (`vllmtui-NAME`: its endpoint, log and status, like a one-node server's)."""

    index: int
    host: str
    role: str
    session: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    main: bool = False

    def display(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"{env} {shlex.join(self.argv)}".strip()


def node_session(name: str, index: int, role: str) -> str:
    """The tmux session of node `index`'s process (the main one is `vllmtui-NAME`)."""
    return f"vllmtui-{name}-node{index}-{role}"


def ray_command(spec: LaunchSpec) -> list[str]:
    """The `ray` of the runtime vLLM runs from: the `ray` beside a `vllm` executable, else
    `PYTHON -m ray.scripts.scripts` for a python runtime."""
    first = spec.argv[0]
    base = os.path.basename(first)
    if base == "vllm":
        return [os.path.join(os.path.dirname(first), "ray") if os.path.dirname(first) else "ray"]
    if base.startswith("python"):
        return [first, "-m", "ray.scripts.scripts"]
    return ["ray"]


def _node_env(profile: Profile, index: int, address: str) -> dict[str, str]:
    nodes = profile.nodes or []
    env = {**nodes[index].env, "VLLM_HOST_IP": address}
    gpus = node_gpus(profile, nodes[index])
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    if profile.network.interface:
        env["NCCL_SOCKET_IFNAME"] = profile.network.interface
        env["GLOO_SOCKET_IFNAME"] = profile.network.interface
    return env


def plan_ray(profile: Profile, spec: LaunchSpec, addresses: list[str],
             ray: list[str] | None = None) -> list[NodeCommand]:
    ray = ray or ray_command(spec)
    head = addresses[0]
    port = profile.network.ray_port
    out: list[NodeCommand] = []
    for i, node in enumerate(profile.nodes or []):
        gpus = node_gpus(profile, node)
        common = ["--block", "--disable-usage-stats", "--node-ip-address", addresses[i]]
        if gpus is not None:
            common += ["--num-gpus", str(len(gpus))]
        if i == 0:
            argv = [*ray, "start", "--head", "--port", str(port), "--include-dashboard=false", *common]
            out.append(NodeCommand(i, node.host, RAY_HEAD, node_session(profile.name, i, "ray"),
                                   tuple(argv), {**spec.env, **_node_env(profile, i, addresses[i])}))
        else:
            argv = [*ray, "start", "--address", f"{head}:{port}", *common]
            out.append(NodeCommand(i, node.host, RAY_WORKER, node_session(profile.name, i, "ray"),
                                   tuple(argv), {**spec.env, **_node_env(profile, i, addresses[i])}))
    # the driver asks Ray for its GPUs: no CUDA_VISIBLE_DEVICES of its own
    env = {**spec.env, **_node_env(profile, 0, head), "RAY_ADDRESS": f"{head}:{port}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    first = (profile.nodes or [])[0]
    out.append(NodeCommand(0, first.host, SERVE, f"vllmtui-{profile.name}", spec.argv,
                           env, main=True))
    return out


def plan_dp(profile: Profile, spec: LaunchSpec, addresses: list[str]) -> list[NodeCommand]:
    tp = profile.tensor_parallel_size or 1
    head = addresses[0]
    rpc = profile.network.dp_rpc_port
    out: list[NodeCommand] = []
    rank = 0
    for i, node in enumerate(profile.nodes or []):
        local = len(node_gpus(profile, node) or [0] * tp) // tp
        argv = [*spec.argv, "--data-parallel-size-local", str(local), "--data-parallel-address", head,
                "--data-parallel-rpc-port", str(rpc)]
        env = {**spec.env, **_node_env(profile, i, addresses[i])}
        if i == 0:
            out.append(NodeCommand(i, node.host, SERVE, f"vllmtui-{profile.name}", tuple(argv), env,
                                   main=True))
        else:
            argv += ["--headless", "--data-parallel-start-rank", str(rank)]
            out.append(NodeCommand(i, node.host, HEADLESS, node_session(profile.name, i, "dp"),
                                   tuple(argv), env))
        rank += local
    return out


def plan_nodes(profile: Profile, spec: LaunchSpec, addresses: list[str],
               ray: list[str] | None = None) -> list[NodeCommand]:
    """Every node's command, in start order. `addresses[i]`: how the other nodes reach node i
    (the head's is the network's `head_address` when given)."""
    nodes = profile.nodes or []
    if len(addresses) != len(nodes):
        raise ValueError(f"{len(nodes)} nodes but {len(addresses)} addresses")
    addresses = list(addresses)
    if profile.network.head_address:
        addresses[0] = profile.network.head_address
    for i, node in enumerate(nodes):
        if node.address:
            addresses[i] = node.address
    if profile.distributed_executor_backend == "ray":
        return plan_ray(profile, spec, addresses, ray)
    return plan_dp(profile, spec, addresses)
