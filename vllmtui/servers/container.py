"""Servers in a container (docs/containers.md): what a start adds (the image pull step, the
session options that name the container) and how one stops.

The pane runs the engine's client (`docker run --rm ...`); the container's processes are the
engine's, not the pane's. Killing the client would leave the container running, so a stop goes
through the engine: graceful is `ENGINE stop -t TIMEOUT NAME` (the container's stop signal,
SIGTERM, then SIGKILL after the profile's `stop.timeout`), forced is `ENGINE kill NAME`. Either
way the stop then waits for the client to end, checks with the engine that the container is
gone (`ENGINE rm -f NAME` as the last resort) and reports whatever is left.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from vllmtui.core import procs
from vllmtui.core.containers import ENGINE_OPTION, NAME_OPTION, Container, of_session
from vllmtui.core.tmux import SessionInfo
from vllmtui.profiles.container_spec import container_name, container_of, engine_exe, hub_cache
from vllmtui.profiles.launch import LaunchSpec
from vllmtui.profiles.model import Profile
from vllmtui.servers import image_pull

Progress = Callable[[str], None]
COUNTDOWN_AFTER = 1.0
STOP_GRACE = 30.0
"""Seconds past its own timeout that `ENGINE stop` may take before it is given up on."""


def prepare(
    profile: Profile, spec: LaunchSpec, marks: dict[str, str] | None
) -> tuple[LaunchSpec, dict[str, str]]:
    """For a container profile: the spec whose pane pulls the image first (unless `pull:
    never`), and the session options that name the container and its engine (a stop, the
    status and the GPU view find it by them, whatever the profile says by then)."""
    marks = dict(marks or {})
    found = container_of(profile.runtime)
    if found is None:
        return spec, marks
    kind, section = found
    exe = engine_exe(kind, section)
    engine = shutil.which(exe) or exe
    if section.hf_cache:  # an engine would make a missing mount source itself, owned by root
        with contextlib.suppress(OSError):
            hub_cache(profile)[0].mkdir(parents=True, exist_ok=True)
    if section.pull != "never":
        spec = replace(spec, argv=(*image_pull.step_argv(engine, section.image, section.pull), "--",
                                   *spec.argv))
    marks.update({NAME_OPTION: container_name(profile.name), ENGINE_OPTION: engine})
    return spec, marks


def end(session: SessionInfo) -> None:
    """Kill and remove a session's container at once (a crashed server that is still exiting)."""
    box = of_session(session)
    if box is not None:
        box.kill()
        box.remove()


def stop(
    box: Container,
    tree: list[procs.ProcInfo],
    pane_pid: int | None,
    force: bool,
    timeouts: tuple[float, float],
    say: Progress,
) -> tuple[str, list[procs.ProcInfo], list[procs.ProcInfo]]:
    """Stop a server's container and its client (`tree`, the pane's processes); (method,
    what was signalled, what is still running). `timeouts`: the profile's (stop.timeout,
    stop.term_timeout)."""
    engine = os.path.basename(box.engine)
    inside = box.processes()
    signalled = sorted({p.pid: p for p in [*tree, *inside]}.values(), key=lambda p: p.pid)
    if force:
        method = "force"
        say(f"{engine} kill {box.name} (SIGKILL to the container), SIGKILL to its client")
        killed = box.kill()
        if not killed.ok:
            say(f"{engine} kill: {killed.reason()}")
        _signal(tree, pane_pid, signal.SIGKILL)
        _signal(inside, None, signal.SIGKILL)  # the engine's kill should have: make sure
    elif not inside and not box.exists():  # no container yet: the pane still pulls the image
        method = "graceful"
        say(f"sending SIGINT (Ctrl-C) to the pane: no container {box.name} yet (pulling its image?)")
        _signal(tree, pane_pid, signal.SIGINT)
        _end_client(tree, pane_pid, timeouts[1], say)
    else:
        timeout, term_timeout = timeouts
        method = _engine_stop(box, timeout, say)
        _end_client(tree, pane_pid, term_timeout, say)
    if not box.wait_gone(5.0):
        say(f"{box.name} is still there: {engine} rm -f {box.name}")
        box.remove()
        box.wait_gone(5.0)
    left = _wait_gone(signalled, 5.0)
    if box.exists():
        left.append(procs.ProcInfo(0, 0, None, None, "?", f"container {box.name} ({engine} ps -a)", 0))
    return method, signalled, left


def _engine_stop(box: Container, timeout: float, say: Progress) -> str:
    """`ENGINE stop -t TIMEOUT NAME`, with a countdown; `container-stop` when the container
    ended on the stop signal, `container-kill` when the engine had to kill it."""
    engine = os.path.basename(box.engine)
    seconds = max(0, round(timeout))  # what the engine takes: whole seconds
    say(f"{engine} stop -t {seconds} {box.name}: SIGTERM to the container, SIGKILL after {seconds} s")
    begin = time.monotonic()
    proc = box.stop(seconds)
    last_tick = None
    while proc.poll() is None:
        elapsed = time.monotonic() - begin
        if elapsed > seconds + STOP_GRACE:
            proc.kill()
            say(f"{engine} stop did not return in {seconds + STOP_GRACE:.0f} s")
            break
        tick = math.ceil(seconds - elapsed)
        if elapsed >= COUNTDOWN_AFTER and tick != last_tick and tick > 0:
            say(f"the container is still running; {engine} kills it in {tick} s")
            last_tick = tick
        time.sleep(0.1)
    took = time.monotonic() - begin
    _out, err = proc.communicate()
    if proc.returncode not in (0, None):
        lines = [ln for ln in (err or "").splitlines() if ln.strip()]
        say(f"{engine} stop: {lines[-1].strip() if lines else f'exit status {proc.returncode}'}")
    return "container-kill" if seconds > 0 and took >= seconds - 0.25 else "container-stop"


def _end_client(tree: list[procs.ProcInfo], pane_pid: int | None, term_timeout: float, say: Progress) -> None:
    """The client exits when its container ends; one that does not (the pane was still
    pulling the image, the engine did not answer) gets SIGTERM, then SIGKILL."""
    left = _wait_gone(tree, 3.0)
    if not left:
        return
    say(f"the pane's {left[0].title or 'process'} is still running: sending SIGTERM")
    _signal(left, pane_pid, signal.SIGTERM)
    left = _wait_gone(left, term_timeout)
    if left:
        say(f"still running after SIGTERM: sending SIGKILL to {len(left)} process(es)")
        _signal(left, pane_pid, signal.SIGKILL)


def _signal(targets: list[procs.ProcInfo], pane_pid: int | None, sig: int) -> None:
    if pane_pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pane_pid, sig)
    procs.signal_all([p.pid for p in targets], sig)


def _wait_gone(targets: list[procs.ProcInfo], timeout: float) -> list[procs.ProcInfo]:
    deadline = time.monotonic() + timeout
    while True:
        alive = set(procs.alive([p.pid for p in targets]))
        if not alive or time.monotonic() >= deadline:
            return [p for p in targets if p.pid in alive]
        time.sleep(0.1)
