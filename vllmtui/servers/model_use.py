"""Which running servers use a model's files: what `models.removal.remove` is told, so a
removal refuses while a server still reads (or has mapped) the weights. The models layer
knows no tmux; this module joins its removal plan with the fleet's statuses."""

from __future__ import annotations

from collections.abc import Iterable

from vllmtui.models.removal import Removal
from vllmtui.servers.status import ServerStatus


def removal_users(removal: Removal) -> set[str]:
    """The profiles that load what `removal` deletes: every profile of the model when the
    whole repo goes, else those whose revision is one of the removed snapshots."""
    if removal.whole_repo:
        return set(removal.model.profiles)
    return {name for revision in removal.revisions for name in revision.profiles}


def servers_using(removal: Removal, statuses: Iterable[ServerStatus]) -> list[str]:
    """`name (port N)` of each running server (starting, ready, asleep, unhealthy, stopping)
    whose profile loads the files `removal` deletes."""
    users = removal_users(removal)
    return [f"{s.name} (port {s.port})" if s.port else s.name
            for s in statuses if s.running and s.name in users]
