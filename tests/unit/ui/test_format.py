"""The status column's words (pure): a server pulling its model shows the pull's own line."""

from __future__ import annotations

from vllmtui.servers.status import ServerStatus
from vllmtui.ui.format import state_words


def test_a_download_shows_its_figures_without_the_starting_prefix() -> None:
    status = ServerStatus(name="m", state="starting", phase="downloading",
                          detail="downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left")
    assert state_words(status) == "downloading 3.2/15.2 GB, 120 MB/s, ~1m40s left"
    loading = ServerStatus(name="m", state="starting", phase="loading")
    assert state_words(loading).startswith("starting: ")
