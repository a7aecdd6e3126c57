"""Status derivation: tmux + /health + log -> state (pure, no processes)."""

from __future__ import annotations

import pytest

from vllmtui.core.tmux import SessionInfo
from vllmtui.servers.endpoint import HealthReading
from vllmtui.servers.failures import failure_of
from vllmtui.servers.logs import LogState
from vllmtui.servers.status import derive_state


def session(dead: bool = False, status: int | None = None, signal: int | None = None,
            **options: str) -> SessionInfo:
    return SessionInfo("vllmtui-x", 0.0, False, 100, dead, status, signal, "python", options)


def log(phase: str | None = None, failure: str | None = None) -> LogState:
    state = LogState(phase=phase)
    if failure:
        state.failure = failure_of(failure)
    return state


OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.mark.parametrize(
    ("sess", "reading", "state_log", "expected"),
    [
        (None, None, log(), ("stopped", "")),
        (session(), None, log(), ("starting", "waiting for the first health check")),
        (session(), HealthReading("refused"), log(), ("starting", "importing")),
        (session(), HealthReading("refused"), log("loading"), ("starting", "loading weights")),
        (session(), HealthReading("refused"), log("compiling"), ("starting", "compiling / CUDA graphs")),
        (session(), HealthReading("ok", 200), log("ready"), ("ready", "")),
        (session(), HealthReading("unhealthy", 503), log("ready"), ("unhealthy", "/health answered 503")),
        (session(), HealthReading("timeout", detail="no answer within 1 s"), log("ready"),
         ("unhealthy", "/health: no answer within 1 s (wedged?)")),
        (session(), HealthReading("refused"), log("ready"), ("unhealthy", "was ready, now refuses connections")),
        # a fatal start failure while /health refuses: crashed at once (vLLM takes seconds to exit)
        (session(), HealthReading("refused"), log("loading", OOM), ("crashed", OOM)),
        # a generic error line is no verdict: still starting
        (session(), HealthReading("refused"), log("loading", "ValueError: something odd"),
         ("starting", "loading weights")),
        (session(stopping="1"), None, log("ready"), ("stopping", "stop requested")),
        (session(dead=True, status=0), None, log("ready"), ("exited", "exit status 0")),
        (session(dead=True, status=1), None, log("loading", OOM), ("crashed", OOM)),
        (session(dead=True, status=1), None, log("loading"), ("crashed", "exit status 1")),
        (session(dead=True, signal=9), None, log("ready"), ("crashed", "killed by signal 9")),
        # tmux has no exit status (yet, or ever): not a clean exit
        (session(dead=True), None, log("ready"), ("crashed", "exit status unknown")),
        (session(dead=True, status=1, stopping="1"), None, log("ready"), ("exited", "stopped (exit status 1)")),
    ],
)
def test_derive_state(sess: SessionInfo | None, reading: HealthReading | None, state_log: LogState,
                      expected: tuple[str, str]) -> None:
    assert derive_state(sess, reading, state_log) == expected


@pytest.mark.parametrize(
    ("sess", "code"),
    [(session(), None), (session(dead=True, status=0), 0), (session(dead=True, status=3), 3),
     (session(dead=True, signal=9), 137), (session(dead=True, signal=15), 143), (session(dead=True), None)],
)
def test_exit_code_is_a_shells(sess: SessionInfo, code: int | None) -> None:
    assert sess.exit_code == code
