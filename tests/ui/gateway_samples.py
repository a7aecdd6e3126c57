"""A gateway status as `gateway_status` returns it for a gateway serving three models (one
asleep, one restarted after crashes): fixed values, so the snapshot of the Gateway tab is
the same on every run (the uptime shows as 2h00m for the first minute after `sample_status`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vllmtui.gateway.manage import GatewayStatus


def _model(model: str, profile: str, state: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": model, "profile": profile, "state": state, "detail": "", "managed": False,
        "restarts": 0, "idle": "keep", "restart": "never", "pending": False, "requests": 0,
        "errors": 0, "starts": 0, "wakes": 0, "in_flight": 0, "last_used": None,
        "last_error": None, "ttfb_mean_ms": None,
    }
    base.update(fields)
    return base


MODELS = (
    _model("meta-llama/Llama-3.1-70B", "llama-70b", "ready", requests=120, errors=1, ttfb_mean_ms=182.4),
    _model("Qwen/Qwen2.5-7B-Instruct", "qwen-7b", "asleep", managed=True, idle="sleep 10m",
           detail="sleep level 1: GPU memory freed; the gateway wakes it on the next request",
           requests=42, starts=1, wakes=3, ttfb_mean_ms=1250.0),
    _model("mistralai/Mistral-7B", "mistral-7b", "ready", managed=True, idle="stop 30m",
           restart="on-failure", restarts=2, requests=7, errors=2, starts=3, ttfb_mean_ms=95.0,
           last_error="upstream closed the connection"),
)
EVENTS = tuple(f"12:{m:02d}:00 event {m}" for m in range(12))


def sample_status(**fields: Any) -> GatewayStatus:
    base: dict[str, Any] = {
        "state": "up", "url": "http://127.0.0.1:8080/v1", "pid": 4242,
        "started": time.time() - 7200, "config_path": Path("/home/me/.config/vllmtui/gateway.yaml"),
        "models": MODELS, "events": EVENTS,
    }
    base.update(fields)
    return GatewayStatus(**base)
