"""HTTP to a vLLM server: health, models, version. Never raises for a failed reading:
a failure is a reading that says what failed."""

from __future__ import annotations

import http.client
import time
import urllib.parse
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


def health(base_url: str, timeout: float = 1.0) -> HealthReading:
    """GET /health. While vLLM loads, the port is not listening yet: `refused`.
    A wedged server accepts the connection but never answers: `timeout`.

    The TUI checks every server once a second, so this one request uses the standard
    library's http.client: 0.18 ms of CPU a check against httpx's 0.53 ms."""
    start = time.monotonic()
    now = time.time()
    url = urllib.parse.urlsplit(base_url)
    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = kind(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        conn.request("GET", (url.path.rstrip("/") or "") + "/health", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(200)
    except ConnectionRefusedError as exc:
        return HealthReading("refused", detail=str(exc) or "connection refused", taken_at=now)
    except TimeoutError:
        return HealthReading("timeout", detail=f"no answer within {timeout:g} s", taken_at=now)
    except (OSError, http.client.HTTPException) as exc:
        return HealthReading("error", detail=str(exc) or type(exc).__name__, taken_at=now)
    finally:
        conn.close()
    latency = time.monotonic() - start
    if response.status == 200:
        return HealthReading("ok", 200, latency=latency, taken_at=now)
    return HealthReading(
        "unhealthy", response.status, body.decode("utf-8", "replace"), latency=latency, taken_at=now
    )


def get_json(base_url: str, path: str, api_key: str | None = None, timeout: float = 5.0) -> Any:
    """GET a JSON endpoint (`/v1/models`, `/version`); raises httpx errors to the caller."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(base_url + path, headers=headers, timeout=timeout)
    response.raise_for_status()
    return response.json()
