"""The Models tab (Textual Pilot) over a real hub cache in the test's folder (tests/support/
hf_cache.py): the listing while it is shown, D removing one revision after a confirmation that
names the space it frees, and the refusal while a running server (the STAND-IN, in the test's
own tmux server) uses the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hf_cache import add_revision, hub, repo_dir, tiny_model  # noqa: F401
from tests.support.ui import FROZEN, printed, until
from vllmtui.core.humanize import fmt_bytes
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import ConfirmDialog, PickDialog
from vllmtui.ui.widgets.models_panel import ModelsPanel


@pytest.fixture
def cache(hub: Path) -> Path:  # noqa: F811
    main = tiny_model(weights=4096)
    add_revision(hub, "org/tiny", main)
    add_revision(hub, "org/tiny", {**main, "model.safetensors": b"\x02" * 8192}, ref="v2")
    return hub


def body(app: VllmtuiApp) -> str:
    return printed(app.query_one("#models-body"))  # type: ignore[arg-type]


def notes(app: VllmtuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def shown(app: VllmtuiApp, pilot) -> ModelsPanel:
    await until(pilot, lambda: app.main.polls > 0, what="the first poll")
    app.query_one("#detail").active = "tab-models"
    panel = app.query_one(ModelsPanel)
    await until(pilot, lambda: panel.report is not None and "org/tiny" in body(app)
                and "tiny" in {p for m in panel.report.models for p in m.profiles}, what="a reading")
    return panel


async def pick(app: VllmtuiApp, pilot, wanted: str) -> None:
    await pilot.press("D")
    await until(pilot, lambda: isinstance(app.screen, PickDialog), what="the picker")
    names = app.screen.names  # type: ignore[attr-defined]
    index = next(i for i, name in enumerate(names) if wanted in name)
    for _ in range(index):
        await pilot.press("down")
    await pilot.press("enter")


async def test_the_tab_lists_the_cache_and_removes_a_revision(cache: Path, settings, standin_profile) -> None:
    standin_profile("tiny", model="org/tiny")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(140, 44)) as pilot:
        panel = await shown(app, pilot)
        text = body(app)
        assert "MODEL" in text and "REVISION" in text and "PROFILES" in text
        assert "2 revisions" in text and "(main)" in text and "(v2)" in text
        assert f"Hugging Face cache {cache}" in text and "total: " in text and " free of " in text
        assert "D removes a model" in text

        await pick(app, pilot, "(v2)")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        question = app.screen.body  # type: ignore[attr-defined]
        assert "remove org/tiny revision" in question and f"This frees {fmt_bytes(8192)}." in question
        await pilot.press("y")
        await until(pilot, lambda: any("removed org/tiny" in n for n in notes(app)), what="the removal")
        assert len(list((repo_dir(cache, "org/tiny") / "snapshots").iterdir())) == 1
        await until(pilot, lambda: "(v2)" not in body(app), what="a reading without v2")
        assert panel.pending is None


async def test_removal_is_refused_while_a_running_server_uses_it(cache: Path, settings, standin_profile) -> None:
    standin_profile("tiny", model="org/tiny", offline=True)
    Fleet(settings).start(find_profile(settings, "tiny"))
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(140, 44)) as pilot:
        await until(pilot, lambda: app.main.state_of("tiny") == "ready", what="ready")
        await shown(app, pilot)
        await pick(app, pilot, "all 2 revisions")
        await until(pilot, lambda: any("in use by the running server tiny" in n for n in notes(app)),
                    what="the refusal")
        assert not isinstance(app.screen, ConfirmDialog)
        assert any("stop it first (`vllmtui stop tiny`" in n for n in notes(app))
        assert len(list((repo_dir(cache, "org/tiny") / "snapshots").iterdir())) == 2
