"""The gateway's own figures, per model: requests, errors, on-demand starts and wakes with
their wait, time to first byte through the gateway. Served as Prometheus text at /metrics
(prometheus_client's registry and exposition) and as JSON in /gateway/state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# seconds: a proxied first byte takes a millisecond or two; a cold start takes minutes
TTFB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)


@dataclass
class ModelFigures:
    """One model's counts since the gateway started (what /gateway/state reports)."""

    requests: int = 0
    errors: int = 0
    starts: int = 0
    wakes: int = 0
    in_flight: int = 0
    last_used: float | None = None
    last_error: str = ""
    ttfb_sum: float = 0.0
    ttfb_count: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests, "errors": self.errors, "starts": self.starts,
            "wakes": self.wakes, "in_flight": self.in_flight, "last_used": self.last_used,
            "last_error": self.last_error,
            "ttfb_mean_ms": round(1000 * self.ttfb_sum / self.ttfb_count, 3) if self.ttfb_count else None,
        }


@dataclass
class GatewayMetrics:
    """Counters kept by the proxy and the controller, exposed for Prometheus."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    figures: dict[str, ModelFigures] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("vllmtui_gateway_requests", "Requests routed, by model, path and HTTP status",
                                ["model", "path", "status"], registry=r)
        self.errors = Counter("vllmtui_gateway_errors", "Requests the gateway answered with an error"
                              " (or whose backend failed), by model and reason", ["model", "reason"],
                              registry=r)
        self.starts = Counter("vllmtui_gateway_on_demand_starts", "Servers started on demand, by model"
                              " and outcome", ["model", "outcome"], registry=r)
        self.start_wait = Histogram("vllmtui_gateway_on_demand_wait_seconds", "Seconds each request"
                                    " waited for an on-demand start or wake, by model", ["model"],
                                    buckets=WAIT_BUCKETS, registry=r)
        self.start_seconds = Histogram("vllmtui_gateway_on_demand_start_seconds", "Seconds an on-demand"
                                       " start or wake took, by model and outcome", ["model", "outcome"],
                                       buckets=WAIT_BUCKETS, registry=r)
        self.wakes = Counter("vllmtui_gateway_wakes", "Servers woken from sleep, by model", ["model"],
                             registry=r)
        self.sleeps = Counter("vllmtui_gateway_idle_actions", "Idle servers put to sleep or stopped, by model"
                              " and action", ["model", "action"], registry=r)
        self.restarts = Counter("vllmtui_gateway_restarts", "Crashed servers restarted, by model", ["model"],
                                registry=r)
        self.ttfb = Histogram("vllmtui_gateway_time_to_first_byte_seconds", "Seconds from a request's"
                              " arrival to the first byte of its answer through the gateway, by model",
                              ["model"], buckets=TTFB_BUCKETS, registry=r)
        self.in_flight = Gauge("vllmtui_gateway_in_flight", "Requests being served, by model", ["model"],
                               registry=r)
        self.up_since = Gauge("vllmtui_gateway_start_time_seconds", "When the gateway started (Unix time)",
                              registry=r)
        self.up_since.set(time.time())

    def of(self, model: str) -> ModelFigures:
        fig = self.figures.get(model)
        if fig is None:
            fig = self.figures[model] = ModelFigures()
        return fig

    def began(self, model: str) -> None:
        fig = self.of(model)
        fig.in_flight += 1
        fig.last_used = time.time()
        self.in_flight.labels(model).inc()

    def ended(self, model: str, path: str, status: int, error: str | None = None) -> None:
        fig = self.of(model)
        fig.in_flight -= 1
        fig.requests += 1
        fig.last_used = time.time()
        self.in_flight.labels(model).dec()
        self.requests.labels(model, path, str(status)).inc()
        if error is not None:
            self.error(model, error)

    def error(self, model: str, reason: str, detail: str = "") -> None:
        fig = self.of(model)
        fig.errors += 1
        fig.last_error = detail or reason
        self.errors.labels(model, reason).inc()

    def first_byte(self, model: str, seconds: float) -> None:
        fig = self.of(model)
        fig.ttfb_sum += seconds
        fig.ttfb_count += 1
        self.ttfb.labels(model).observe(seconds)

    def started(self, model: str, outcome: str, took: float) -> None:
        """An on-demand start ended (`ready`, `failed`, `timeout`) after `took` seconds; the
        wait of each request held for it is observed by the proxy (`start_wait`)."""
        if outcome == "ready":
            self.of(model).starts += 1
        self.starts.labels(model, outcome).inc()
        self.start_seconds.labels(model, outcome).observe(took)

    def woke(self, model: str, took: float) -> None:
        self.of(model).wakes += 1
        self.wakes.labels(model).inc()
        self.start_seconds.labels(model, "woken").observe(took)

    def text(self) -> bytes:
        return generate_latest(self.registry)
