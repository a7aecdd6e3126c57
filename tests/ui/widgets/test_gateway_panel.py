"""The Gateway tab (Textual Pilot): with no gateway it says so and how to start one; it
renders what the gateway reports (its reader injected); g starts the real gateway (tmux
session vllmtui-gateway on the test's own tmux server) and G stops it after a confirmation."""

from __future__ import annotations

from tests.support.gateway import gateway_config  # noqa: F401 - a fixture
from tests.support.ui import FROZEN, Harness, printed, until
from tests.ui.gateway_samples import sample_status
from vllmtui.gateway.manage import gateway_down, gateway_status
from vllmtui.ui.app import VllmtuiApp
from vllmtui.ui.screens.dialogs import ConfirmDialog
from vllmtui.ui.widgets.gateway_panel import GatewayPanel


def _tab(app: VllmtuiApp) -> str:
    return printed(app.query_one("#gateway-body"))


def _header(app: VllmtuiApp) -> str:
    return str(app.query_one("#topbar").render())


async def _show_gateway_tab(app: VllmtuiApp, pilot) -> GatewayPanel:
    await until(pilot, lambda: app.main.polls > 0, what="the first poll")
    app.query_one("#detail").active = "tab-gateway"
    panel = app.query_one(GatewayPanel)
    await until(pilot, lambda: panel.shown and panel.reading is not None, what="a gateway reading")
    return panel


async def test_with_no_gateway_the_tab_says_down_and_how_to_start_it(settings):
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = await _show_gateway_tab(app, pilot)
        await until(pilot, lambda: "gateway  down" in _tab(app), what="the tab rendered")
        text = _tab(app)
        assert "not running: `vllmtui gateway up` starts it" in text
        assert "press g to start it here" in text
        assert f"config   {settings.config_dir / 'gateway.yaml'}  (not written: the defaults)" in text
        assert panel.reading.status.state == "down"
        assert "gateway" not in _header(app)  # no gateway on this machine: the header stays short
        # g and G are the Gateway tab's keys, in its footer; elsewhere G follows the log
        keys = app.screen.active_bindings
        assert keys["g"].binding.action == "gateway_up" and keys["G"].binding.action == "gateway_down"
        app.query_one("#detail").active = "tab-log"
        await pilot.pause()
        keys = app.screen.active_bindings
        assert "g" not in keys and keys["G"].binding.action == "follow"


async def test_the_tab_renders_the_models_the_gateway_reports(settings):
    status = sample_status(problems=(f"{settings.config_dir}/gateway.yaml:4: swap: not a boolean",))
    panel = GatewayPanel(settings, reader=lambda _settings: status, id="gateway-panel")
    app = Harness(panel)
    async with app.run_test(size=(120, 36)) as pilot:
        panel.shown = True
        await until(pilot, lambda: panel.reading is not None, what="a reading")
        await pilot.pause()
        text = printed(app.query_one("#gateway-body"))
        assert "gateway  up for 2h00m   http://127.0.0.1:8080/v1   pid 4242" in text
        rows = {line.split()[1]: line.split() for line in text.splitlines() if line.startswith(("Qwen", "mis"))}
        assert rows["qwen-7b"][2:4] == ["asleep", "gw"]
        assert rows["mistral-7b"][8] == "2"  # restarted twice
        assert "swap: not a boolean" in text


async def test_g_starts_the_gateway_and_big_g_stops_it_after_a_confirmation(settings, gateway_config):  # noqa: F811
    port = gateway_config()
    app = VllmtuiApp(settings, FROZEN)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            panel = await _show_gateway_tab(app, pilot)
            assert "gateway: down" in _header(app)  # gateway.yaml is written: a gateway to start
            await pilot.press("g")
            assert panel.pending == "starting the gateway..."
            await until(pilot, lambda: panel.reading and panel.reading.status.state == "up",
                        what="the gateway up", timeout=40)
            await until(pilot, lambda: f"gateway: up :{port} 0 models" in _header(app), what="the header")
            await until(pilot, lambda: any("gateway up at" in n.message for n in app._notifications),
                        what="the notification")
            assert gateway_status(settings).state == "up"
            await pilot.press("G")
            dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen,
                                 what="the confirmation")
            assert f"127.0.0.1:{port}" in dialog.body and "keep running" in dialog.body
            await pilot.press("y")
            await until(pilot, lambda: panel.reading and panel.reading.status.state == "down",
                        what="the gateway down", timeout=30)
            assert gateway_status(settings).state == "down"
    finally:
        gateway_down(settings)


async def test_g_says_why_a_bad_gateway_yaml_is_refused(settings):
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    (settings.config_dir / "gateway.yaml").write_text("port: 8080\nswapp: true\n")
    app = VllmtuiApp(settings, FROZEN)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = await _show_gateway_tab(app, pilot)
        await until(pilot, lambda: "swapp" in _tab(app), what="the problem on the tab")
        await pilot.press("g")
        said = await until(pilot, lambda: [n for n in app._notifications if "swapp" in n.message],
                           what="the refusal")
        assert "gateway.yaml has problems (nothing was started)" in said[0].message
        assert said[0].severity == "error" and "Traceback" not in said[0].message
        await until(pilot, lambda: panel.pending is None, what="the key done")
        assert gateway_status(settings).state == "down"
