"""The feature panels wired into the main screen: their tabs, table columns and keys.
The stand-in server answers /health and /v1/models but no chat and no /metrics, so these
tests check the wiring (a probe runs and its failure is shown, metrics read as stale, a
tunnel toggle's refusal is shown); the real-vLLM test runs a chat probe that passes."""

from __future__ import annotations

from tests.support.ui import FROZEN, until
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.main import TABS
from vllmtui.ui.widgets.server_table import ServerTable


def cell(app: VllmtuiApp, name: str, column: str) -> str:
    return str(app.query_one(ServerTable).get_cell(name, column))


async def test_every_feature_tab_has_its_place(settings):
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.main.polls > 0, what="the first poll")
        lazy = {"tab-gpu": "#gpu-panel", "tab-metrics": "MetricsTab", "tab-tunnels": "#tunnels-panel",
                "tab-plan": "#plan-view", "tab-bench": "#bench-view", "tab-gateway": "#gateway-panel",
                "tab-models": "#models-panel"}
        for tab_id, _title in TABS:
            app.query_one("#detail").active = tab_id
            await pilot.pause()
            assert app.query_one("#detail").active == tab_id
            # the screen tells each panel whether it is shown: hidden ones do not re-render
            shown = {tab: app.query_one(selector).shown for tab, selector in lazy.items()}
            assert shown == {tab: tab == tab_id for tab in lazy}


async def test_plan_and_bench_tabs_follow_the_selection(settings, standin_profile):
    standin_profile("planned")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.main.state_of("planned") == "stopped", what="the table")
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
        await until(pilot, lambda: app.main.state_of("probed") == "stopped", what="the table")
        await pilot.press("s")
        await until(pilot, lambda: app.main.state_of("probed") == "ready", what="ready")
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
        await until(pilot, lambda: app.main.state_of("untunneled") == "stopped", what="the table")
        before = len(app._notifications)
        await pilot.press("T")
        await until(pilot, lambda: len(app._notifications) > before, what="an answer")
        text = str(list(app._notifications)[-1].message)
        assert "tunnel" in text.lower()
