"""The feature panels wired into the main screen: their tabs, table columns and keys.
The stand-in server answers /health and /v1/models but no chat and no /metrics, so these
tests check the wiring (a probe runs and its failure is shown, metrics read as stale, a
tunnel toggle's refusal is shown); the real-vLLM test runs a chat probe that passes."""

from __future__ import annotations

import pytest

from tests.test_ui_support import FROZEN, until
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.features import TABS
from vllmtui.ui.widgets.server_table import ServerTable


def cell(app: VllmtuiApp, name: str, column: str) -> str:
    return str(app.query_one(ServerTable).get_cell(name, column))


async def test_every_feature_tab_has_its_place(settings):
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.polls > 0, what="the first poll")
        for tab_id, _title, _module, _what in TABS:
            app.query_one("#detail").active = tab_id
            await pilot.pause()
            assert app.query_one("#detail").active == tab_id
        assert app.found.gpu and app.found.metrics and app.found.probes and app.found.tunnels
        assert app.found.plan and app.found.bench


async def test_plan_and_bench_tabs_follow_the_selection(settings, standin_profile):
    standin_profile("planned")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.state_of("planned") == "stopped", what="the table")
        app.query_one("#detail").active = "tab-plan"
        view = app.query_one("#plan-view")
        # the stand-in's model has no config.json: the plan says why, naming the model
        await until(pilot, lambda: view.message is not None, what="a plan")
        assert view.message.name == "planned" and "config.json" in (view.message.error or "")
        app.query_one("#detail").active = "tab-bench"
        await until(pilot, lambda: app.query_one("#bench-view").server == "planned",
                    what="the bench view on the selected server")


async def test_c_runs_a_chat_probe_and_shows_its_result(settings, standin_profile):
    standin_profile("probed")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.state_of("probed") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.state_of("probed") == "ready", what="ready")
        await pilot.press("c")
        assert app.query_one("#detail").active == "tab-probe"
        panel = app.query_one("#probe-panel")
        await until(pilot, lambda: "chat" in panel.latest, what="the probe's result")
        assert panel.latest["chat"].ok is False  # the stand-in cannot chat
        await until(pilot, lambda: "chat FAIL" in cell(app, "probed", "probe"), what="the cell")
        # metrics: the stand-in has no /metrics: the column says the reading is stale
        await until(pilot, lambda: "stale" in cell(app, "probed", "load"), what="metrics cell")
        await pilot.press("t")
        await until(pilot, lambda: "tools" in panel.latest, what="the tool probe's result")


async def test_T_without_a_tunnel_says_why(settings, standin_profile):  # noqa: N802
    standin_profile("untunneled")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.state_of("untunneled") == "stopped", what="the table")
        before = len(app._notifications)
        await pilot.press("T")
        await until(pilot, lambda: len(app._notifications) > before, what="an answer")
        text = str(list(app._notifications)[-1].message)
        assert "tunnel" in text.lower()


@pytest.mark.e2e
async def test_c_chat_probe_passes_on_real_vllm(vllm_server):
    app = VllmtuiApp(vllm_server.settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        name = vllm_server.name
        await until(pilot, lambda: app.state_of(name) == "ready", what="the real server ready")
        app.query_one(ServerTable).select(name)
        await pilot.press("c")
        panel = app.query_one("#probe-panel")
        await until(pilot, lambda: "chat" in panel.latest, timeout=120, what="the chat probe")
        assert panel.latest["chat"].ok, panel.latest["chat"].summary()
        await until(pilot, lambda: "tok/s" in cell(app, name, "load") or "/" in cell(app, name, "load"),
                    what="a metrics reading")
