"""A profile's `nodes:` (one server spanning several machines) and its `network:` (the interface
NCCL and Gloo use); what a multi-node profile may and may not say (`multinode_problems`).

    nodes: [gpu1, gpu2]                  # hosts.yaml names (or local); the first is the head
    nodes:                               # or one entry per node, a host listed twice is fine
      - {host: local, gpus: [0]}         # (two nodes on one box, each its own GPUs)
      - {host: local, gpus: [1]}
    distributed_executor_backend: ray    # Ray across the nodes; without it: vLLM's own
                                         # multi-node data parallel (--headless on the others)
    network: {interface: eth0, head_address: 10.0.0.1, ray_port: 6379, dp_rpc_port: 13345}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from vllmtui.profiles.model import Profile

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:^,-]{1,64}$")


class NodeSpec(BaseModel):
    """One node of a multi-node server: the hosts.yaml host it runs on, and its GPUs there
    (CUDA_VISIBLE_DEVICES; None: the profile's `gpus`, else every GPU of the host)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    gpus: list[int] | None = None
    address: str | None = None
    """How the other nodes reach this one (VLLM_HOST_IP, Ray's --node-ip-address); None: the
    network's `head_address` for the head, the host's own name otherwise."""
    env: dict[str, str] = Field(default_factory=dict)
    """This node's own environment (on top of the profile's `env:`), e.g. RAY_TMPDIR."""

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not _HOST_NAME.match(value):
            raise ValueError(f"{value!r} is not a hosts.yaml host name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or len(set(value)) != len(value) or min(value) < 0):
            raise ValueError("list each GPU index once, at least one, e.g. [0, 1]")
        return value


class NetworkSpec(BaseModel):
    """What the nodes talk over: `interface` becomes NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME,
    `head_address` the head's VLLM_HOST_IP (and Ray's and vLLM's data-parallel address)."""

    model_config = ConfigDict(extra="forbid")

    interface: str | None = None
    head_address: str | None = None
    ray_port: int = Field(default=6379, ge=1, le=65535)
    dp_rpc_port: int = Field(default=13345, ge=1, le=65535)

    @field_validator("interface")
    @classmethod
    def _check_interface(cls, value: str | None) -> str | None:
        if value is not None and not _IFNAME.match(value):
            raise ValueError(f"{value!r} is not an interface name (e.g. eth0, ib0, or ^lo,docker0)")
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> NetworkSpec:
        if self.ray_port == self.dp_rpc_port:
            raise ValueError(f"ray_port and dp_rpc_port are both {self.ray_port}: give them different ports")
        return self


def parse_nodes(value: Any) -> Any:
    """`[gpu1, gpu2]` (names) or a list of `{host, gpus, address}`: all become node entries."""
    if isinstance(value, list):
        return [{"host": v} if isinstance(v, str) else v for v in value]
    return value


def node_gpus(profile: Profile, node: NodeSpec) -> list[int] | None:
    return node.gpus if node.gpus is not None else profile.gpus


def gpus_per_node(profile: Profile) -> list[int | None]:
    """How many GPUs each node gives the server (None: not said: every GPU there)."""
    return [len(g) if (g := node_gpus(profile, n)) is not None else None for n in profile.nodes or []]


def _ray_problems(profile: Profile, counts: list[int | None]) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    world = (profile.tensor_parallel_size or 1) * (profile.pipeline_parallel_size or 1)
    if world < 2:
        found.append((("tensor_parallel_size",), "a Ray server across nodes needs tensor_parallel_size x"
                      " pipeline_parallel_size of at least 2 (one GPU per node at least)"))
    if None not in counts and world > sum(c or 0 for c in counts):
        found.append((("tensor_parallel_size",), f"tensor_parallel_size x pipeline_parallel_size = {world}"
                      f" needs {world} GPUs but the nodes give {sum(c or 0 for c in counts)}: list more"
                      " GPUs or lower the sizes"))
    if profile.data_parallel_size and profile.data_parallel_size > 1:
        found.append((("data_parallel_size",), "Ray here spans tensor/pipeline parallel: for data parallel"
                      " across nodes leave out distributed_executor_backend (vLLM's own launcher)"))
    return found


def _dp_problems(profile: Profile, counts: list[int | None]) -> list[tuple[tuple[str, ...], str]]:
    size = profile.data_parallel_size
    if not size or size < 2:
        return [(("nodes",), "without distributed_executor_backend: ray the nodes run vLLM's own data"
                 f" parallel: set data_parallel_size (at least the {len(counts)} nodes), or"
                 " distributed_executor_backend: ray for tensor/pipeline parallel across the nodes")]
    tp = profile.tensor_parallel_size or 1
    found: list[tuple[tuple[str, ...], str]] = []
    for i, count in enumerate(counts):
        if count is not None and count % tp:
            found.append((("nodes", str(i), "gpus"), f"gives {count} GPUs, not a multiple of"
                          f" tensor_parallel_size {tp}: each data-parallel rank takes {tp}"))
    if None in counts:
        found.append((("nodes",), "list each node's gpus (nodes: [{host: gpu1, gpus: [0, 1]}, ...]):"
                      " vLLM needs each node's --data-parallel-size-local"))
    elif not found and sum(c // tp for c in counts if c) != size:
        ranks = sum(c // tp for c in counts if c)
        found.append((("data_parallel_size",), f"is {size} but the nodes' GPUs make {ranks} ranks of"
                      f" tensor_parallel_size {tp}: set data_parallel_size: {ranks}, or change the"
                      " nodes' gpus"))
    return found


def multinode_problems(profile: Profile) -> list[tuple[tuple[str, ...], str]]:
    """Rules of a multi-node profile, as (key path, message): at least two nodes, one backend's
    sizes that fit the nodes' GPUs, no `box:` (the nodes say where), Ray's executor only with
    `nodes:`."""
    nodes = profile.nodes
    if not nodes:
        return []
    found: list[tuple[tuple[str, ...], str]] = []
    if len(nodes) < 2:
        found.append((("nodes",), "lists one node: a server on one machine needs no nodes: (use box:)"))
    if profile.box:
        found.append((("box",), "and nodes: both say where it runs: keep nodes: (its first is the head)"))
    counts = gpus_per_node(profile)
    if profile.distributed_executor_backend == "ray":
        found += _ray_problems(profile, counts)
    elif profile.distributed_executor_backend == "mp":
        found.append((("distributed_executor_backend",), "mp runs on one machine: across nodes write ray,"
                      " or leave it out for vLLM's own multi-node data parallel"))
    else:
        found += _dp_problems(profile, counts)
    return found
