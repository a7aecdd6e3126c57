"""The gateway's control plane: which profile serves a model, bringing its server up for a
request (start on demand, wake from sleep, wait for a start already under way), making room
on the GPUs (LRU swap), the idle policy (sleep or stop) and restart on crash.

One poller reads every served server's status (tmux, /health, the log: `Fleet.statuses`)
about once a second, five times a second while a request waits; requests never read tmux
themselves, they read the poller's last snapshot (a dict lookup on the data plane's fast
path). The gateway touches only servers it started (`managed-by: gateway` on the session):
a server a user started by hand is routed to but never slept, stopped or swapped out. A
crashed server is restarted when its profile says `restart: on-failure`, whoever started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.profiles.gateway_config import GatewayConfig, served_profiles
from vllmtui.profiles.loading import discover
from vllmtui.profiles.model import LoadedProfile
from vllmtui.servers.fleet import Fleet, record_ready
from vllmtui.servers.status import ServerStatus

from .errors import MANAGED, GatewayUnavailable
from .metrics import GatewayMetrics
from .upkeep import Upkeep, replace_state

log = logging.getLogger("vllmtui.gateway")
POLL_IDLE = 1.0
POLL_BUSY = 0.2
PROFILES_EVERY = 2.0
_SETTLED = ("ready", "crashed", "exited", "stopped")  # what a start ends in (unhealthy may pass)


@dataclass(frozen=True)
class Route:
    """Where a request for a model goes."""

    profile: str
    model: str
    url: str  # http://host:port
    api_key: str | None


@dataclass
class _Failure:
    at: float
    error: GatewayUnavailable


def model_names(loaded: LoadedProfile) -> list[str]:
    """The names a client may send as `model` for a profile: its served name, its model id and
    the profile's own name (which picks that profile when several serve the same model)."""
    p = loaded.profile
    return list(dict.fromkeys([p.model_name, p.model, p.name]))


class Controller:
    """The profiles a gateway serves and the state of their servers, kept by one poller."""

    def __init__(
        self,
        settings: Settings,
        config: GatewayConfig,
        metrics: GatewayMetrics | None = None,
        fits: Callable[[LoadedProfile], list[str]] | None = None,
    ):
        self.settings = settings
        self.upkeep = Upkeep(self)
        self.config = config
        self.metrics = metrics or GatewayMetrics()
        self.reader = Fleet(settings)
        self.fits = fits or self.upkeep.fit_warnings
        self.profiles: dict[str, LoadedProfile] = {}
        self.by_model: dict[str, list[LoadedProfile]] = {}
        self.status: dict[str, ServerStatus] = {}
        self.in_flight: dict[str, int] = {}
        self.last_used: dict[str, float] = {}
        self.events: list[str] = []
        self._profiles_read = 0.0
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.busy: dict[str, asyncio.Event] = {}
        self.failed: dict[str, _Failure] = {}
        self.crashes_seen: set[str] = set()
        self.restarting: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self.first = True
        self._idle_checked = 0.0
        self.started_at = time.time()
        self.session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ life

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        await self.refresh()
        self._poller = asyncio.create_task(self._poll_forever())

    async def close(self) -> None:
        tasks = [t for t in [self._poller, *self.tasks, *self.pending.values()] if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def note(self, text: str) -> None:
        """An event worth the gateway's log (its tmux pane) and /gateway/state."""
        line = f"{time.strftime('%H:%M:%S')} {text}"
        log.info(text)
        self.events = [*self.events[-49:], line]

    # ------------------------------------------------------------ reading

    def _load_profiles(self) -> None:
        now = time.monotonic()
        if self.profiles and now - self._profiles_read < PROFILES_EVERY:
            return
        self._profiles_read = now
        found, _broken = discover(self.settings)
        served = served_profiles(self.config, found)
        self.profiles = {p.profile.name: p for p in served}
        by_model: dict[str, list[LoadedProfile]] = {}
        for loaded in served:
            for name in model_names(loaded):
                by_model.setdefault(name, []).append(loaded)
        # a profile's own name is its alone
        for loaded in served:
            by_model[loaded.profile.name] = [loaded]
        self.by_model = by_model

    async def refresh(self) -> None:
        """Read every served server once; then the restart and idle policies act on it."""
        await asyncio.to_thread(self._load_profiles)
        served = list(self.profiles.values())
        statuses = await asyncio.to_thread(self.reader.statuses, served)
        self.status = {s.name: s for s in statuses if s.name in self.profiles}
        async with self._changed:
            self._changed.notify_all()
        self.upkeep.supervise()
        now = time.monotonic()
        if now - self._idle_checked >= self.config.idle_check:
            self._idle_checked = now
            self.upkeep.idle()
        self.first = False

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the poller must outlive a bad reading
                log.warning("status poll failed: %s", exc)
            interval = POLL_BUSY if (self.pending or self.busy or self.restarting) else POLL_IDLE
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), interval)

    async def wait_for(
        self, name: str, done: Callable[[ServerStatus], bool], timeout: float
    ) -> ServerStatus | None:
        """The first status of `name` for which `done` holds, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                status = self.status.get(name)
                if status is not None and done(status):
                    return status
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._poke.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    # ------------------------------------------------------------ the data plane's side

    def route_of(self, model: str) -> LoadedProfile | None:
        """The profile a request for `model` goes to. Several profiles serving one model (say
        two settings of one model): the one whose server is up (ready first), else the first."""
        found = self.by_model.get(model)
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        rank = {"ready": 0, "asleep": 1, "starting": 2}
        return min(found, key=lambda p: rank.get(self.state_of(p.profile.name), 3))

    def try_acquire(self, loaded: LoadedProfile) -> Route | None:
        """The fast path: the server is ready and nothing is putting it away. Counts the
        request in flight (no await between the check and the count)."""
        name = loaded.profile.name
        status = self.status.get(name)
        if status is None or status.state != "ready" or name in self.busy:
            return None
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        self.last_used[name] = time.time()
        return self.route_for(loaded, status)

    async def acquire(self, loaded: LoadedProfile) -> Route:
        """A route to a ready server for `loaded`: started, woken or waited for as needed.
        Raises GatewayUnavailable (with the cause) when it cannot be had in time."""
        name = loaded.profile.name
        for _ in range(6):
            route = self.try_acquire(loaded)
            if route is not None:
                return route
            busy = self.busy.get(name)
            if busy is not None:
                await busy.wait()
                continue
            task = self.pending.get(name)
            if task is None or task.done():
                task = asyncio.create_task(self._bring_up(loaded))
                self.pending[name] = task
                task.add_done_callback(functools.partial(self._pending_done, name))
            await asyncio.shield(task)  # a client that leaves does not cancel the start
        raise GatewayUnavailable(503, f"{name} did not stay ready (state"
                                 f" {self.state_of(name)}); retry", "model_unavailable", 5)

    def _pending_done(self, name: str, task: asyncio.Task[None]) -> None:
        """Forget a finished bring-up (its waiters have its outcome)."""
        if self.pending.get(name) is task:
            del self.pending[name]
        if not task.cancelled():
            task.exception()  # retrieved: the waiters got it

    def release(self, name: str) -> None:
        self.in_flight[name] = max(0, self.in_flight.get(name, 0) - 1)
        self.last_used[name] = time.time()

    def lost(self, name: str) -> None:
        """The backend refused a connection: it is not ready, whatever the last poll said."""
        status = self.status.get(name)
        if status is not None and status.state == "ready":
            self.status[name] = replace_state(status, "starting")
        self._poke.set()

    def route_for(self, loaded: LoadedProfile, status: ServerStatus) -> Route:
        p = loaded.profile
        key = os.environ.get(p.api_key_env) if p.api_key_env else None
        host = status.host or p.host
        port = status.port or p.port
        return Route(p.name, p.model_name, base_url(host, port), key)

    def state_of(self, name: str) -> str:
        status = self.status.get(name)
        return status.state if status else "unknown"

    # ------------------------------------------------------------ bringing a server up

    async def _bring_up(self, loaded: LoadedProfile) -> None:
        name = loaded.profile.name
        model = loaded.profile.model_name
        began = time.monotonic()
        status = self.status.get(name)
        state = status.state if status else "stopped"
        if state == "ready":
            return
        if state == "asleep" and status is not None:
            # waking takes its GPU memory back: what was started meanwhile may have to go first
            await self.upkeep.make_room(loaded)
            await self.upkeep.wake(loaded, status)
            self.metrics.woke(model, time.monotonic() - began)
            return
        if state == "unhealthy" and status is not None:
            raise GatewayUnavailable(503, f"{model} is unhealthy ({status.detail}); see"
                                     f" `vllmtui logs {name}`", "model_unhealthy", 10)
        if state == "stopping":
            await self.wait_for(name, lambda s: s.state != "stopping", 60.0)
            state = self.state_of(name)
        if state == "starting":
            await self._await_start(loaded, began, started_here=False)
            return
        if state in ("stopped", "exited", "crashed", "unknown"):
            await self.start_server(loaded, began, reason=f"on demand: a request for {model}")

    async def start_server(self, loaded: LoadedProfile, began: float, reason: str,
                     marks: dict[str, str] | None = None, notes: dict[str, object] | None = None) -> None:
        name = loaded.profile.name
        model = loaded.profile.model_name
        failed = self.failed.get(name)
        if failed is not None and time.monotonic() - failed.at < self.config.retry_after:
            raise failed.error  # a start that just failed is not tried again at once
        await self.upkeep.make_room(loaded)
        others = list(self.profiles.values())
        self.note(f"starting {name} ({reason})")
        try:
            await asyncio.to_thread(
                Fleet(self.settings).start, loaded, others, None,
                marks or {"managed-by": MANAGED},
                notes or {"started_by": "gateway", "reason": reason},
            )
        except VllmtuiError as exc:
            error = GatewayUnavailable(
                503, f"{model} could not be started: {exc}", "model_start_failed",
                self.config.retry_after)
            self._fail(name, model, error, began)
            raise error from None
        await self._await_start(loaded, began, started_here=True)

    async def _await_start(self, loaded: LoadedProfile, began: float, started_here: bool) -> None:
        name = loaded.profile.name
        model = loaded.profile.model_name
        since = time.time()
        left = self.config.start_timeout - (time.monotonic() - began)
        status = await self.wait_for(
            name, lambda s: s.taken_at >= since and s.state in _SETTLED, max(1.0, left))
        if status is None:
            current = self.status.get(name)
            phase = current.phase_label if current else "unknown"
            eta = int(current.eta) if current is not None and current.eta else self.config.retry_after
            error = GatewayUnavailable(
                503, f"{model} is not ready after {self.config.start_timeout:.0f} s (still starting:"
                f" {phase}); it keeps starting: retry later, `vllmtui logs {name}` shows why",
                "model_start_timeout", max(1, eta))
            self.metrics.started(model, "timeout", time.monotonic() - began)
            self.metrics.error(model, "start_timeout", error.message)
            raise error
        if status.state == "ready":
            await asyncio.to_thread(record_ready, status)  # the run's time to ready, like `start --wait`
            if started_here:
                self.metrics.started(model, "ready", time.monotonic() - began)
                self.note(f"{name} ready in {time.monotonic() - began:.1f} s")
            self.failed.pop(name, None)
            return
        cause = status.failure.line if status.failure else status.detail or status.state
        hint = f" (hint: {status.failure.hint})" if status.failure and status.failure.hint else ""
        error = GatewayUnavailable(
            503, f"{model} failed to start: {cause}{hint}; `vllmtui logs {name}` has the rest",
            "model_start_failed", self.config.retry_after)
        if status.state == "crashed" and status.run_dir is not None:
            self.crashes_seen.add(str(status.run_dir))  # a failed start is not restarted
        self._fail(name, model, error, began)
        raise error

    def _fail(self, name: str, model: str, error: GatewayUnavailable, began: float) -> None:
        self.failed[name] = _Failure(time.monotonic(), error)
        self.metrics.started(model, "failed", time.monotonic() - began)
        self.metrics.error(model, "start_failed", error.message)
        self.note(f"{name}: {error.message}")

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, object]:
        """What /gateway/state answers: every model with its server's state and figures."""
        models = []
        for name, loaded in self.profiles.items():
            status = self.status.get(name)
            fig = self.metrics.of(loaded.profile.model_name).as_dict()
            models.append({
                "model": loaded.profile.model_name, "profile": name,
                "state": status.state if status else "unknown",
                "detail": status.detail if status else "",
                "managed": bool(status and status.managed_by == MANAGED),
                "restarts": status.restarts if status else 0,
                "idle": loaded.profile.idle.action if loaded.profile.idle.action == "keep"
                else f"{loaded.profile.idle.action} {loaded.profile.idle.after:g}m",
                "restart": loaded.profile.restart.policy,
                "pending": name in self.pending,
                **fig,
            })
        return {"models": models, "events": self.events[-20:], "started": self.started_at}
