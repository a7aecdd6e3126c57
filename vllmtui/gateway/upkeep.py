"""The gateway's upkeep of the servers it started: sleep and wake (vLLM's sleep endpoints),
putting servers away (GPU-aware swap, the idle policy) and restart on crash. Works on the
Controller's state (`control.py`); runs in its event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import aiohttp

from vllmtui.core.errors import VllmtuiError
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers import runs
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ASLEEP, ServerStatus, session_name

from .errors import MANAGED, GatewayUnavailable

if TYPE_CHECKING:
    from .control import Controller

log = logging.getLogger("vllmtui.gateway")
SLEEP_TIMEOUT = 300.0  # a first level-1 sleep copies the weights to CPU memory (20 s for 15 GiB)


class Upkeep:
    """The policies of one Controller."""

    def __init__(self, ctl: Controller):
        self.ctl = ctl

    # ------------------------------------------------------------ sleep and wake

    async def backend(
        self, method: str, loaded: LoadedProfile, path: str, timeout: float
    ) -> aiohttp.ClientResponse:
        assert self.ctl.session is not None
        status = self.ctl.status.get(loaded.profile.name)
        route = self.ctl.route_for(loaded, status) if status else None
        if route is None:
            raise GatewayUnavailable(503, f"{loaded.profile.name} has no server", "model_unavailable", 5)
        headers = {"Authorization": f"Bearer {route.api_key}"} if route.api_key else {}
        return await self.ctl.session.request(method, route.url + path, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=timeout))

    async def is_sleeping(self, loaded: LoadedProfile) -> bool | None:
        try:
            async with await self.backend("GET", loaded, "/is_sleeping", 5.0) as resp:
                if resp.status != 200:
                    return None
                data = await resp.json(content_type=None)
                return bool(data.get("is_sleeping")) if isinstance(data, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def wake(self, loaded: LoadedProfile, status: ServerStatus) -> None:
        name = loaded.profile.name
        model = loaded.profile.model_name
        began = time.monotonic()
        try:
            async with await self.backend("POST", loaded, "/wake_up", self.ctl.config.wake_timeout) as resp:
                if resp.status >= 400:
                    raise GatewayUnavailable(503, f"{model} did not wake: /wake_up answered {resp.status}"
                                             f" {(await resp.text())[:200]}", "model_wake_failed", 10)
            while await self.is_sleeping(loaded) is not False:
                if time.monotonic() - began > self.ctl.config.wake_timeout:
                    raise GatewayUnavailable(503, f"{model} still asleep {self.ctl.config.wake_timeout:.0f} s"
                                             " after /wake_up", "model_wake_failed", 10)
                await asyncio.sleep(0.05)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnavailable(503, f"{model} did not wake: {exc or type(exc).__name__}",
                                     "model_wake_failed", 10) from None
        await asyncio.to_thread(self.ctl.reader.tmux.unset_option, session_name(name), ASLEEP)
        self.ctl.note(f"woke {name} in {time.monotonic() - began:.2f} s")
        self.ctl.status[name] = replace_state(status, "ready")  # until the next poll confirms it
        await self.ctl.wait_for(name, lambda s: s.state != "asleep", 5.0)

    async def sleep(self, loaded: LoadedProfile, level: int) -> None:
        name = loaded.profile.name
        async with await self.backend("POST", loaded, f"/sleep?level={level}", SLEEP_TIMEOUT) as resp:
            if resp.status >= 400:
                raise VllmtuiError(f"/sleep answered {resp.status}: {(await resp.text())[:200]}")
        if await self.is_sleeping(loaded) is not True:
            raise VllmtuiError("/is_sleeping does not say it sleeps after /sleep")
        await asyncio.to_thread(self.ctl.reader.tmux.set_options, session_name(name), {ASLEEP: str(level)})

    # ------------------------------------------------------------ putting servers away

    def put_away(self, loaded: LoadedProfile, action: str, reason: str) -> asyncio.Task[None]:
        """Sleep or stop a server; requests for it wait meanwhile (then wake or start it)."""
        name = loaded.profile.name
        self.ctl.busy[name] = asyncio.Event()  # set before any await: the fast path sees it at once
        return self.spawn(self.put_away_now(loaded, action, reason))

    async def put_away_now(self, loaded: LoadedProfile, action: str, reason: str) -> None:
        name = loaded.profile.name
        model = loaded.profile.model_name
        try:
            if action == "sleep":
                try:
                    await self.sleep(loaded, loaded.profile.idle.level)
                    self.ctl.note(f"put {name} to sleep (level {loaded.profile.idle.level}): {reason}")
                except (VllmtuiError, aiohttp.ClientError, TimeoutError, GatewayUnavailable) as exc:
                    self.ctl.note(f"could not put {name} to sleep ({exc}); stopping it instead")
                    action = "stop"
            if action == "stop":
                result = await asyncio.to_thread(Fleet(self.ctl.settings).stop, name)
                self.ctl.note(f"stopped {name}: {reason} ({result.method}, {result.seconds:.1f} s)")
            self.ctl.metrics.sleeps.labels(model, action).inc()
            await self.ctl.refresh()
        finally:
            event = self.ctl.busy.pop(name, None)
            if event is not None:
                event.set()

    def spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self.ctl.tasks.add(task)
        task.add_done_callback(self.task_done)
        return task

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.ctl.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("gateway task failed: %r", task.exception())

    def idle_since(self, name: str, status: ServerStatus) -> float:
        return max(self.ctl.last_used.get(name, 0.0), self.ctl.started_at, status.started or 0.0)

    def putaway_candidates(self, exclude: str) -> list[tuple[LoadedProfile, ServerStatus]]:
        """Servers the gateway started and nobody is using: ready ones least recently used
        first, then sleeping ones (which still hold a little GPU memory)."""
        found = []
        for name, status in self.ctl.status.items():
            loaded = self.ctl.profiles.get(name)
            if (loaded is None or name == exclude or status.managed_by != MANAGED
                    or status.state not in ("ready", "asleep") or self.ctl.in_flight.get(name)
                    or name in self.ctl.busy or name in self.ctl.pending):
                continue
            found.append((loaded, status))
        found.sort(key=lambda ls: (ls[1].state == "asleep", self.idle_since(ls[0].profile.name, ls[1])))
        return found

    def fit_warnings(self, loaded: LoadedProfile) -> list[str]:
        return Fleet(self.ctl.settings).fit_warnings(loaded)

    async def make_room(self, loaded: LoadedProfile) -> None:
        """Swap: while the model does not fit beside the running ones (the planner's fit check
        on the live GPUs), put the least recently used idle gateway server away."""
        if not self.ctl.config.swap:
            return
        name = loaded.profile.name
        for _ in range(len(self.ctl.profiles) + 1):
            warnings = await asyncio.to_thread(self.ctl.fits, loaded)
            if not warnings:
                return
            candidates = self.putaway_candidates(exclude=name)
            if not candidates:
                self.ctl.note(f"{name} may not fit ({warnings[0]}) and no idle gateway server can make"
                          " room: starting it anyway")
                return
            victim, status = candidates[0]
            action = ("sleep" if status.state == "ready" and victim.profile.sleep_mode
                      and victim.profile.idle.action == "sleep" else "stop")
            await self.put_away(victim, action, f"making room for {name} ({warnings[0]})")

    def idle(self) -> None:
        """The idle policy of the servers the gateway started."""
        now = time.time()
        for name, status in self.ctl.status.items():
            loaded = self.ctl.profiles.get(name)
            if loaded is None or status.managed_by != MANAGED or status.state != "ready":
                continue
            policy = loaded.profile.idle
            if (policy.action == "keep" or self.ctl.in_flight.get(name) or name in self.ctl.busy
                    or name in self.ctl.pending):
                continue
            idle_for = now - self.idle_since(name, status)
            if idle_for >= policy.after * 60:
                self.put_away(loaded, policy.action, f"idle for {idle_for / 60:.1f} min")

    # ------------------------------------------------------------ restart on crash

    def supervise(self) -> None:
        for name, status in self.ctl.status.items():
            if status.state != "crashed" or status.run_dir is None:
                continue
            key = str(status.run_dir)
            if key in self.ctl.crashes_seen:
                continue
            self.ctl.crashes_seen.add(key)
            loaded = self.ctl.profiles.get(name)
            if self.ctl.first or loaded is None or loaded.profile.restart.policy != "on-failure":
                continue  # crashed before this gateway ran, or not ours to restart
            if name in self.ctl.pending or name in self.ctl.restarting:
                continue
            self.ctl.restarting.add(name)
            self.spawn(self.restart(loaded, status))

    async def restart(self, loaded: LoadedProfile, crashed: ServerStatus) -> None:
        name = loaded.profile.name
        policy = loaded.profile.restart
        cause = crashed.failure.line if crashed.failure else crashed.detail
        try:
            recent = await asyncio.to_thread(self.recent_restarts, name, policy.window * 60)
            if recent >= policy.limit:
                self.ctl.note(f"{name} crashed again ({cause}); {recent} restarts in the last"
                          f" {policy.window:g} min reached the limit ({policy.limit}): left crashed")
                return
            delay = policy.backoff * (2 ** recent)
            self.ctl.note(f"{name} crashed ({cause}); restart {recent + 1} of {policy.limit}"
                          f" in {delay:.1f} s")
            await asyncio.sleep(delay)
            current = self.ctl.status.get(name)
            if current is None or current.state != "crashed" or current.run_dir != crashed.run_dir:
                self.ctl.note(f"{name}: not restarted (it is {self.ctl.state_of(name)} now)")
                return
            marks = {"restarts": str(crashed.restarts + 1)}
            if crashed.managed_by:
                marks["managed-by"] = crashed.managed_by
            notes: dict[str, object] = {"started_by": "gateway", "reason": "restart on failure",
                                        "restart": {"attempt": recent + 1, "of_run": str(crashed.run_dir),
                                                    "cause": cause, "limit": policy.limit}}
            self.ctl.failed.pop(name, None)
            try:
                await self.ctl.start_server(loaded, time.monotonic(), f"restart {recent + 1} after: {cause}",
                                  marks=marks, notes=notes)
                self.ctl.metrics.restarts.labels(loaded.profile.model_name).inc()
            except GatewayUnavailable as exc:
                self.ctl.note(f"{name}: restart {recent + 1} failed: {exc.message}")
                # the new run's crash, if any, is the supervisor's to see
                status = self.ctl.status.get(name)
                if status is not None and status.run_dir is not None:
                    self.ctl.crashes_seen.discard(str(status.run_dir))
        finally:
            self.ctl.restarting.discard(name)

    def recent_restarts(self, name: str, window: float) -> int:
        """Restarts of `name` in the last `window` seconds, read from its run history (so a
        restarted gateway keeps counting)."""
        since = time.time() - window
        return sum(1 for run in runs.runs_of(self.ctl.settings, name, limit=50)
                   if run.started >= since and isinstance(run.launch.get("restart"), dict))


def replace_state(status: ServerStatus, state: str) -> ServerStatus:
    return replace(status, state=state, taken_at=time.time())
