"""The Gateway tab's pure rendering: its text, the header's segment and the tab's keys."""

from __future__ import annotations

from tests.ui.gateway_samples import sample_status
from vllmtui.gateway.manage import GatewayStatus
from vllmtui.ui.keys import key_allowed
from vllmtui.ui.widgets.gateway_panel import GatewayReading, gateway_segment, gateway_text


def _segment(status: GatewayStatus, configured: bool = True) -> str | None:
    text = gateway_segment(GatewayReading(status, configured))
    return None if text is None else text.plain


def test_the_header_segment_says_the_state_port_and_models() -> None:
    assert _segment(sample_status()) == "gateway: up :8080 3 models"
    assert _segment(sample_status(models=())) == "gateway: up :8080 0 models"
    assert _segment(GatewayStatus("dead", "http://127.0.0.1:8080/v1")) == "gateway: dead"
    assert _segment(GatewayStatus("down", "http://127.0.0.1:8080/v1")) == "gateway: down"
    dead = gateway_segment(GatewayReading(GatewayStatus("dead", "u"), True))
    assert dead is not None and any("red" in str(span.style) for span in dead.spans)
    problems = GatewayStatus("down", "u", problems=("g.yaml:3: port: too big",))
    assert _segment(problems, configured=True) == "gateway: down (1 problem)"


def test_a_machine_with_no_gateway_adds_nothing_to_the_header() -> None:
    assert gateway_segment(None) is None  # before the first reading
    assert _segment(GatewayStatus("down", "http://127.0.0.1:8080/v1"), configured=False) is None
    # two profiles serving one model name are a problem only for a gateway: not the header's
    shared = GatewayStatus("down", "u", problems=("a.yaml: served_model_name: a and b both serve 'm'",))
    assert _segment(shared, configured=False) is None


def test_the_tab_shows_the_models_events_and_problems() -> None:
    status = sample_status(problems=("/c/gateway.yaml:4: swap: not a boolean",))
    text = gateway_text(GatewayReading(status, True))
    plain = text.plain
    assert "gateway  up for 2h00m   http://127.0.0.1:8080/v1   pid 4242" in plain
    assert "config   /home/me/.config/vllmtui/gateway.yaml\n" in plain
    assert "/c/gateway.yaml:4: swap: not a boolean" in plain
    rows = {line.split()[1]: line.split() for line in plain.splitlines() if "-7b " in line or "70b " in line}
    assert rows["qwen-7b"][2:5] == ["asleep", "gw", "42"]
    assert rows["mistral-7b"][2:] == ["ready", "gw", "7", "2", "3", "0", "2", "stop", "30m", "95"]
    assert rows["llama-70b"][2:] == ["ready", "120", "1", "0", "0", "0", "keep", "182"]
    assert "last error: upstream closed the connection" in plain
    assert "the gateway wakes it on the next request" in plain
    assert "event 11" in plain and "event 2" in plain and "event 1\n" not in plain  # the last 10
    problem = plain.index("swap: not a boolean")
    assert any("red" in str(s.style) for s in text.spans if s.start <= problem < s.end)


def test_the_tab_says_how_to_start_a_gateway_that_is_down() -> None:
    status = GatewayStatus("down", "http://127.0.0.1:8080/v1", detail="not running: `vllmtui gateway up` starts it")
    plain = gateway_text(GatewayReading(status, False), pending="starting the gateway...").plain
    assert plain.startswith("starting the gateway...\n")
    assert "gateway  down   http://127.0.0.1:8080/v1" in plain
    assert "`vllmtui gateway up` starts it" in plain and "press g to start it here" in plain
    assert "reading the gateway" in gateway_text(None).plain


def test_g_and_big_g_belong_to_the_gateway_tab() -> None:
    assert key_allowed("gateway_up", "tab-gateway") and key_allowed("gateway_down", "tab-gateway")
    assert not key_allowed("gateway_up", "tab-log") and not key_allowed("gateway_down", "tab-log")
    assert key_allowed("follow", "tab-log") and not key_allowed("follow", "tab-gateway")
    assert key_allowed("start", "tab-gateway") and key_allowed("no_such_action", "tab-log")
