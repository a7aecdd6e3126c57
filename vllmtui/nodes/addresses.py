"""How the nodes of a multi-node server reach each other, from hosts.yaml."""

from __future__ import annotations

from vllmtui.core.errors import UsageError
from vllmtui.hosts.config import HostConfig
from vllmtui.hosts.ssh import resolved_hostname
from vllmtui.profiles.model import Profile


def host_address(config: HostConfig, resolve: bool = False) -> str:
    """The address of a host as the other nodes would dial it: 127.0.0.1 for this machine,
    else the host part of its `ssh:` destination (`user@gpu1:22` -> `gpu1`); with `resolve`,
    what ssh's configuration makes of it (an ~/.ssh/config alias's HostName). A node's own
    `address:` wins over both (the plan applies it)."""
    if config.is_local or config.ssh is None:
        return "127.0.0.1"
    if resolve:
        found = resolved_hostname(config)
        if found:
            return found
    dest = config.ssh.rpartition("@")[2]
    if dest.startswith("["):  # [v6]:port
        return dest[1:].partition("]")[0]
    return dest.partition(":")[0] if dest.count(":") == 1 else dest


def node_addresses(profile: Profile, hosts: dict[str, HostConfig]) -> list[str]:
    """One address per node (a node's own `address:` wins later, in the plan). UsageError
    naming the node when its host is not in hosts.yaml."""
    out = []
    for i, node in enumerate(profile.nodes or []):
        config = hosts.get(node.host)
        if config is None:
            known = ", ".join(hosts)
            raise UsageError(f"{profile.name}: nodes.{i}.host: no host named {node.host!r} in hosts.yaml"
                             f" (hosts: {known}): add it there, or use local")
        out.append(node.address or host_address(config, resolve=True))
    return out
