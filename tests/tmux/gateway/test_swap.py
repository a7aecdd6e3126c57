"""GPU-aware swap: when the model asked for does not fit beside the running ones, the least
recently used idle server the gateway started is put away (asleep when its profile sleeps,
else stopped); a server a user started by hand is never touched.

The controller runs in this process against real stand-in servers in tmux. The fit check is
a GPU STAND-IN (`room_for`): there is no GPU here, and the planner's real check on live GPUs
is proven on a real GPU (scripts/gpu-validate.sh)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tests.support.gateway import port_of, stats
from vllmtui.gateway.control import Controller
from vllmtui.profiles.gateway_config import GatewayConfig
from vllmtui.profiles.loading import find_profile
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet


def room_for(settings, servers: int) -> Callable[[LoadedProfile], list[str]]:
    """GPU STAND-IN fit check: the GPUs hold `servers` running servers, whoever started them."""

    def fits(loaded: LoadedProfile) -> list[str]:
        running = [s for s in Fleet(settings).statuses() if s.state in ("ready", "starting", "asleep")
                   and s.name != loaded.profile.name and s.state != "asleep"]
        if len(running) >= servers:
            return [f"memory: GPU STAND-IN: room for {servers} servers, {len(running)} running"]
        return []

    return fits


async def _serve(ctl: Controller, name: str) -> None:
    route = await ctl.acquire(ctl.profiles[name])
    ctl.release(route.profile)


async def test_the_lru_gateway_server_makes_room_and_a_hand_started_one_never(settings, backend_profile):
    backend_profile("alpha")
    sleepy = backend_profile("beta", env={"STANDIN_SLEEP": "1"}, enable_sleep_mode=True, idle="sleep 60m")
    backend_profile("gamma")
    backend_profile("manual")
    fleet = Fleet(settings)
    manual = find_profile(settings, "manual")
    fleet.start(manual)
    assert fleet.wait_ready(manual, timeout=30).state == "ready"
    async with aiohttp.ClientSession() as session:
        ctl = Controller(settings, GatewayConfig(idle_check=3600), fits=room_for(settings, 2))
        await ctl.start(session)
        try:
            await _serve(ctl, "alpha")  # manual + alpha: full
            assert fleet.status_by_name("alpha").state == "ready"

            await _serve(ctl, "beta")  # alpha (LRU, gateway's) is stopped for it; manual stays
            assert fleet.status_by_name("alpha").state in ("stopped", "exited")
            assert fleet.status_by_name("manual").state == "ready"
            assert fleet.status_by_name("beta").state == "ready"

            await _serve(ctl, "gamma")  # beta sleeps (its idle policy is sleep) to make room
            await ctl.refresh()
            assert fleet.status_by_name("beta").state == "asleep"
            assert stats(port_of(sleepy))["sleeps"] == 1
            assert fleet.status_by_name("gamma").state == "ready"
            assert fleet.status_by_name("manual").state == "ready"
            assert any("making room for gamma" in e for e in ctl.events)

            # gamma busy, manual not the gateway's: the sleeping beta is stopped, then the start
            # goes ahead anyway (the fit check warns, it never refuses) and says so
            ctl.in_flight["gamma"] = 1
            await _serve(ctl, "alpha")
            assert fleet.status_by_name("beta").state in ("stopped", "exited")
            assert fleet.status_by_name("gamma").state == "ready"
            assert fleet.status_by_name("manual").state == "ready"
            assert fleet.status_by_name("alpha").state == "ready"
            assert any("no idle gateway server can make room" in e for e in ctl.events)
        finally:
            await ctl.close()


async def test_waking_a_sleeping_server_makes_room_first(settings, backend_profile):
    """A server asleep gave its GPU memory away; what started meanwhile holds it. Waking it
    takes the memory back, so the LRU idle gateway server is put away before the wake."""
    sleepy = backend_profile("one", env={"STANDIN_SLEEP": "1"}, enable_sleep_mode=True, idle="sleep 60m")
    backend_profile("two")
    fleet = Fleet(settings)
    async with aiohttp.ClientSession() as session:
        ctl = Controller(settings, GatewayConfig(idle_check=3600), fits=room_for(settings, 1))
        await ctl.start(session)
        try:
            await _serve(ctl, "one")
            await _serve(ctl, "two")  # one sleeps to make room
            await ctl.refresh()
            assert fleet.status_by_name("one").state == "asleep"
            await _serve(ctl, "one")  # two is stopped first, then one wakes
            await ctl.refresh()
            assert fleet.status_by_name("two").state in ("stopped", "exited")
            assert fleet.status_by_name("one").state == "ready"
            assert stats(port_of(sleepy))["wakes"] == 1
            assert any("making room for one" in e for e in ctl.events)
        finally:
            await ctl.close()
