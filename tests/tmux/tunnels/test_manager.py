"""Toggling tunnels (the `T` key) on a real tmux socket."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.tunnels.manager import Tunnels


def test_toggling_a_profile_without_tunnels_says_how_to_add_one(
    settings: Settings, write_profile: Callable[..., Path],
) -> None:
    write_profile("srv", model="m", port=8000)
    with pytest.raises(UsageError, match="profile 'srv' has no tunnel: add a `tunnels:` entry"):
        Tunnels(settings).toggle("srv")
    with pytest.raises(UsageError, match="no tunnel named 'nope'"):
        Tunnels(settings).toggle("nope")
