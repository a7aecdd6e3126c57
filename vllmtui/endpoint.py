"""HTTP to a vLLM server: health, models, version. Never raises for a failed reading:
a failure is a reading that says what failed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class HealthReading:
    """One `/health` check. `state`: ok | unhealthy | refused | timeout | error."""

    state: str
    code: int | None = None
    detail: str = ""
    latency: float | None = None
    taken_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ok"


_CLIENT: httpx.Client | None = None


def _health_client() -> httpx.Client:
    """One shared client for health checks: a new one per call loads an SSL context
    (~25 ms of CPU), which made a 1 s status poll of 5 servers cost 12 % of a core."""
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = httpx.Client()
    return _CLIENT


def health(base_url: str, timeout: float = 1.0) -> HealthReading:
    """GET /health. While vLLM loads, the port is not listening yet: `refused`.
    A wedged server accepts the connection but never answers: `timeout`."""
    start = time.monotonic()
    now = time.time()
    try:
        response = _health_client().get(base_url + "/health", timeout=timeout)
    except httpx.ConnectError as exc:
        return HealthReading("refused", detail=str(exc) or "connection refused", taken_at=now)
    except httpx.TimeoutException:
        return HealthReading("timeout", detail=f"no answer within {timeout:g} s", taken_at=now)
    except httpx.HTTPError as exc:
        return HealthReading("error", detail=str(exc) or type(exc).__name__, taken_at=now)
    latency = time.monotonic() - start
    if response.status_code == 200:
        return HealthReading("ok", 200, latency=latency, taken_at=now)
    return HealthReading(
        "unhealthy", response.status_code, response.text[:200], latency=latency, taken_at=now
    )


def get_json(base_url: str, path: str, api_key: str | None = None, timeout: float = 5.0) -> Any:
    """GET a JSON endpoint (`/v1/models`, `/version`); raises httpx errors to the caller."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(base_url + path, headers=headers, timeout=timeout)
    response.raise_for_status()
    return response.json()
