"""Multi-node profiles: what they may say (each refusal with file, line, field and fix), and every
node's command in start order for Ray and for vLLM's own multi-node data parallel."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllmtui.core.errors import ProfileError, UsageError
from vllmtui.core.settings import Settings
from vllmtui.hosts.config import LOCAL_HOST, HostConfig
from vllmtui.nodes.addresses import host_address, node_addresses
from vllmtui.profiles.launch import LaunchSpec, resolve
from vllmtui.profiles.loading import parse_profile
from vllmtui.profiles.multinode import HEADLESS, RAY_HEAD, RAY_WORKER, SERVE, plan_nodes, ray_command

P = Path("/p/x.yaml")
RAY = "model: m\nnodes: [a, b]\ndistributed_executor_backend: ray\n"

REFUSED = [
    (RAY + "tensor_parallel_size: 1\n",
     "/p/x.yaml:4: tensor_parallel_size: a Ray server across nodes needs tensor_parallel_size x"
     " pipeline_parallel_size of at least 2 (one GPU per node at least)"),
    ("model: m\nnodes: [{host: a, gpus: [0]}, {host: b, gpus: [0]}]\ndistributed_executor_backend: ray\n"
     "tensor_parallel_size: 4\n",
     "/p/x.yaml:4: tensor_parallel_size: tensor_parallel_size x pipeline_parallel_size = 4 needs 4 GPUs"
     " but the nodes give 2: list more GPUs or lower the sizes"),
    ("model: m\nnodes: [a]\ndistributed_executor_backend: ray\ntensor_parallel_size: 2\n",
     "/p/x.yaml:2: nodes: lists one node: a server on one machine needs no nodes: (use box:)"),
    (RAY + "tensor_parallel_size: 2\nbox: a\n",
     "/p/x.yaml:5: box: and nodes: both say where it runs: keep nodes: (its first is the head)"),
    ("model: m\nnodes: [a, b]\n",
     "/p/x.yaml:2: nodes: without distributed_executor_backend: ray the nodes run vLLM's own data"
     " parallel: set data_parallel_size (at least the 2 nodes), or distributed_executor_backend: ray for"
     " tensor/pipeline parallel across the nodes"),
    ("model: m\nnodes: [a, b]\ndata_parallel_size: 2\n",
     "/p/x.yaml:2: nodes: list each node's gpus (nodes: [{host: gpu1, gpus: [0, 1]}, ...]): vLLM needs"
     " each node's --data-parallel-size-local"),
    ("model: m\nnodes: [{host: a, gpus: [0, 1]}, {host: b, gpus: [0]}]\ndata_parallel_size: 2\n"
     "tensor_parallel_size: 2\n",
     "/p/x.yaml:2: nodes.1.gpus: gives 1 GPUs, not a multiple of tensor_parallel_size 2: each"
     " data-parallel rank takes 2"),
    ("model: m\nnodes: [{host: a, gpus: [0, 1]}, {host: b, gpus: [0, 1]}]\ndata_parallel_size: 3\n",
     "/p/x.yaml:3: data_parallel_size: is 3 but the nodes' GPUs make 4 ranks of tensor_parallel_size 1:"
     " set data_parallel_size: 4, or change the nodes' gpus"),
    (RAY + "tensor_parallel_size: 2\nnetwork: {interface: 'eth 0'}\n",
     "/p/x.yaml:5: network.interface: 'eth 0' is not an interface name (e.g. eth0, ib0, or ^lo,docker0)"),
    (RAY + "tensor_parallel_size: 2\nnetwork: {ray_port: 7000, dp_rpc_port: 7000}\n",
     "/p/x.yaml:5: network: ray_port and dp_rpc_port are both 7000: give them different ports"),
    ("model: m\nnodes: [{host: a, gpus: [0, 0]}, b]\n",
     "/p/x.yaml:2: nodes.0.gpus: list each GPU index once, at least one, e.g. [0, 1]"),
    ("model: m\nnodes: [{hots: a}, b]\n",
     "/p/x.yaml:2: nodes.0.hots: unknown field (did you mean host?)"),
    ("model: m\nnodes: [{hots: a}, b]\n", "/p/x.yaml:2: nodes.0.host: is required"),
    ("model: m\nnodes: [a, b]\ndistributed_executor_backend: mp\n",
     "/p/x.yaml:3: distributed_executor_backend: mp runs on one machine: across nodes write ray, or"
     " leave it out for vLLM's own multi-node data parallel"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_a_wrong_multinode_profile_is_refused_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, P)
    assert message in info.value.problems


def _spec(argv: list[str]) -> LaunchSpec:
    return LaunchSpec(tuple(argv), {"HF_HOME": "/cache"})


def test_ray_plan_head_workers_then_serve_on_the_head() -> None:
    profile, _ = parse_profile(
        "name: big\nmodel: m\nnodes: [{host: local, gpus: [0]}, {host: local, gpus: [1]}]\n"
        "distributed_executor_backend: ray\ntensor_parallel_size: 2\nnetwork: {interface: eth0}\n", P)
    spec = resolve(profile, Settings())
    plan = plan_nodes(profile, spec, ["127.0.0.1", "127.0.0.1"], ray=["/v/bin/ray"])
    assert [(s.index, s.role, s.session, s.main) for s in plan] == [
        (0, RAY_HEAD, "vllmtui-big-node0-ray", False), (1, RAY_WORKER, "vllmtui-big-node1-ray", False),
        (0, SERVE, "vllmtui-big", True)]
    head, worker, serve = plan
    assert head.argv[:4] == ("/v/bin/ray", "start", "--head", "--port") and "--block" in head.argv
    assert worker.argv[:4] == ("/v/bin/ray", "start", "--address", "127.0.0.1:6379")
    assert head.env["CUDA_VISIBLE_DEVICES"] == "0" and worker.env["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker.env["NCCL_SOCKET_IFNAME"] == worker.env["GLOO_SOCKET_IFNAME"] == "eth0"
    assert "--distributed-executor-backend" in serve.argv and "ray" in serve.argv
    assert serve.argv[serve.argv.index("--tensor-parallel-size") + 1] == "2"
    assert serve.env["RAY_ADDRESS"] == "127.0.0.1:6379" and "CUDA_VISIBLE_DEVICES" not in serve.env
    assert serve.env["VLLM_HOST_IP"] == "127.0.0.1"


def test_dp_plan_the_head_serves_the_others_are_headless_with_their_ranks() -> None:
    profile, _ = parse_profile(
        "name: dp\nmodel: m\nnodes: [{host: a, gpus: [0, 1, 2, 3]}, {host: b, gpus: [0, 1]}]\n"
        "data_parallel_size: 3\ntensor_parallel_size: 2\nnetwork: {head_address: 10.0.0.1}\n", P)
    plan = plan_nodes(profile, _spec(["vllm", "serve", "m", "--data-parallel-size", "3"]),
                      ["gpu-a", "gpu-b"])
    head, other = plan
    assert (head.role, head.main, other.role, other.session) == (SERVE, True, HEADLESS, "vllmtui-dp-node1-dp")

    def flag(argv: tuple[str, ...], name: str) -> str:
        return argv[argv.index(name) + 1]

    assert flag(head.argv, "--data-parallel-size-local") == "2" and "--headless" not in head.argv
    assert flag(other.argv, "--data-parallel-size-local") == "1"
    assert flag(other.argv, "--data-parallel-start-rank") == "2" and "--headless" in other.argv
    assert flag(head.argv, "--data-parallel-address") == flag(other.argv, "--data-parallel-address") == "10.0.0.1"
    assert flag(other.argv, "--data-parallel-rpc-port") == "13345"
    assert head.env["VLLM_HOST_IP"] == "10.0.0.1" and other.env["VLLM_HOST_IP"] == "gpu-b"
    assert other.env["CUDA_VISIBLE_DEVICES"] == "0,1" and other.env["HF_HOME"] == "/cache"


def test_addresses_from_hosts_yaml_and_the_ray_of_the_runtime() -> None:
    assert host_address(LOCAL_HOST) == "127.0.0.1"
    assert host_address(HostConfig("g", "me@gpu1.lab:2222")) == "gpu1.lab"
    assert host_address(HostConfig("g", "gpu1")) == "gpu1"
    assert host_address(HostConfig("g", "me@[fe80::1]:22")) == "fe80::1"
    profile, _ = parse_profile("name: x\nmodel: m\ndata_parallel_size: 2\n"
                               "nodes: [{host: local, gpus: [0]}, {host: nowhere, gpus: [0]}]\n", P)
    with pytest.raises(UsageError, match=r"nodes.1.host: no host named 'nowhere' in hosts.yaml"):
        node_addresses(profile, {"local": LOCAL_HOST})
    assert ray_command(_spec(["/opt/v/bin/vllm", "serve"])) == ["/opt/v/bin/ray"]
    assert ray_command(_spec(["/usr/bin/python3", "-m", "vllm"])) == ["/usr/bin/python3", "-m", "ray.scripts.scripts"]
