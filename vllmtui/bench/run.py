"""Benchmark a profile's running server in one call: what the CLI and the TUI's bench worker
use. Finds the server (URL, model, API key from the profile's env var, current run dir), checks
it is ready, runs the benchmark and saves the JSON in the run directory."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from vllmtui.bench import report as bench_report
from vllmtui.bench.load import BenchConfig, BenchOptions, ProgressFn, run_bench
from vllmtui.bench.stats import LevelResult
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.net import base_url
from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.endpoint import get_json, health
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import session_name


@dataclass(frozen=True)
class BenchTarget:
    """What a bench or metrics command talks to."""

    name: str
    base_url: str
    model: str | None
    api_key: str | None
    run_dir: Path | None


def resolve_target(settings: Settings, name: str | None, url: str | None, model: str | None) -> BenchTarget:
    """A profile's running server (its URL, model, key and current run dir), or a bare URL."""
    if url:
        return BenchTarget(name or "adhoc", url.rstrip("/"), model, None, None)
    if not name:
        raise UsageError("name a profile (vllmtui bench NAME) or give --url")
    profile = find_profile(settings, name).profile
    session = Fleet(settings).tmux.session(session_name(profile.name))
    if session is None:
        raise VllmtuiError(f"{profile.name} is not running: start it first"
                           f" (vllmtui start {profile.name} --wait)")
    run_dir = session.option("run-dir")
    key = os.environ.get(profile.api_key_env) if profile.api_key_env else None
    # the running session knows the host and port it was started with (--port overrides)
    host = session.option("host") or profile.host
    port = session.option("port") or profile.port
    return BenchTarget(profile.name, base_url(host, int(port)), model or profile.model_name, key,
                  Path(run_dir) if run_dir else None)


def model_name(target: BenchTarget) -> str:
    """The model to request: the profile's, or the first card of `/v1/models`."""
    if target.model:
        return target.model
    try:
        cards = get_json(target.base_url, "/v1/models", target.api_key).get("data", [])
        return str(cards[0]["id"])
    except Exception as exc:  # noqa: BLE001 - any failure here is "cannot learn the model"
        raise VllmtuiError(f"cannot learn the model name from {target.base_url}/v1/models ({exc}):"
                           " give --model") from None


@dataclass(frozen=True)
class BenchOutcome:
    """A finished (or failed, or cancelled) benchmark: never an exception into the UI."""

    name: str
    levels: tuple[LevelResult, ...] = ()
    path: Path | None = None
    error: str | None = None
    cancelled: bool = False
    config: dict[str, object] = field(default_factory=dict)


def make_config(target: BenchTarget, options: BenchOptions) -> BenchConfig:
    choices = {f.name: getattr(options, f.name) for f in fields(BenchOptions)}
    cfg = BenchConfig(**choices, base_url=target.base_url, model=model_name(target), api_key=target.api_key)
    cfg.check()
    return cfg


def check_ready(target: BenchTarget) -> None:
    reading = health(target.base_url, timeout=3.0)
    if not reading.ok:
        raise VllmtuiError(f"{target.name} at {target.base_url} is not ready"
                           f" ({reading.state}: {reading.detail})")


def bench_server(settings: Settings, name: str, options: BenchOptions,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 save: bool = True, url: str | None = None) -> BenchOutcome:
    """Benchmark profile `name`'s running server (or, with `url`, the server there, saved as
    `name`: another host's, through a forward); blocking (call it from a worker thread).
    `progress` is called on this thread. A failure is an outcome with `error` set."""
    try:
        target = resolve_target(settings, name, url, None)
        check_ready(target)
        cfg = make_config(target, options)
        started = time.time()
        levels = run_bench(cfg, progress, cancel)
    except VllmtuiError as exc:
        return BenchOutcome(name, error=str(exc))
    cancelled = cancel is not None and cancel.is_set()
    path = None
    if save and levels and not cancelled:
        where = target.run_dir or settings.state_dir / "bench" / target.name
        path = bench_report.save_report(where, target.name, cfg, levels, started)
    return BenchOutcome(name, tuple(levels), path, None, cancelled,
                        {"input_len": cfg.input_len, "output_len": cfg.output_len,
                         "num_prompts": cfg.num_prompts})
