#!/usr/bin/env python3
"""Speed of the TUI, measured in a real terminal: `vllmtui` runs in a pane of a private tmux
server and is read back with `capture-pane`, like a user's screen. Prints a table.

  1. startup: `vllmtui` to the first full frame (all 10 profile rows drawn), median of N
  2. idle CPU of the app with 5 running STAND-IN servers, over --idle seconds
  3. keypress-to-frame latency of `x` (the row shows `stopping`), median of 5
  4. a 1 GB log: time to show its last line, then followed while 20,000 lines/s are
     appended: how far behind the screen is (lines and seconds), the app's CPU
  5. the app's memory (RSS) after each part

Usage: .venv/bin/python scripts/bench_tui.py [--idle 60] [--log-gb 1] [--rate 20000]
Everything runs on private tmux sockets and temp dirs; all of it is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet

STANDIN = ROOT / "tests" / "standin" / "fake_vllm_standin.py"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pane:
    """`vllmtui` in a pane of its own tmux server."""

    def __init__(self, env: dict[str, str], cwd: Path, width: int = 160, height: int = 48):
        self.socket = f"vllmtui-bench-term-{uuid.uuid4().hex[:6]}"
        self.env, self.cwd, self.size = env, cwd, (width, height)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True).stdout

    def launch(self) -> float:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = f"unset TMUX; export {exports} TERM=xterm-256color; exec {sys.executable} -m vllmtui"
        self.tmux("kill-server")
        begin = time.perf_counter()
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "b", "-x",
                        str(self.size[0]), "-y", str(self.size[1]), "-c", str(self.cwd), cmd],
                       check=True)
        return begin

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "b")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "b", *keys)

    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "b", "#{pane_pid}").strip())

    def wait(self, predicate, timeout: float = 30.0, what: str = "") -> float:  # type: ignore[no-untyped-def]
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            screen = self.screen()
            if predicate(screen):
                return time.perf_counter()
            time.sleep(0.005)
        raise SystemExit(f"timed out waiting for {what}:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-server")


def write_standin(profiles: Path, name: str, mode: str = "ok") -> None:
    data = {
        "model": "standin-model",
        "port": free_port(),
        "runtime": {"command": [sys.executable, str(STANDIN)]},
        "env": {"STANDIN_MODE": mode, "STANDIN_DELAY": "0.1"},
        "stop": {"timeout": 2, "term_timeout": 2},
    }
    (profiles / f"{name}.yaml").write_text(yaml.safe_dump(data))


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def make_big_log(run_dir: Path, size_gb: float) -> int:
    """A log of `size_gb` GiB made of vLLM-like lines; returns its line count."""
    run_dir.mkdir(parents=True)
    (run_dir / "launch.json").write_text(json.dumps({"profile": "biglog", "started": time.time(),
                                                     "argv": ["vllm"], "env_names": []}))
    line = ("(APIServer pid=4242) INFO 11-22 03:00:00 [loggers.py:123] Engine 000: Avg prompt "
            "throughput: 1234.5 tokens/s, Avg generation throughput: 567.8 tokens/s\n")
    block = (line * 8192).encode()
    target = int(size_gb * 2**30)
    written = 0
    with open(run_dir / "server.log", "wb") as fh:
        while written < target:
            fh.write(block)
            written += len(block)
    return written // len(line)


def appender(path: Path, rate: int, seconds: float, stop: threading.Event, seq: list[int]) -> None:
    """Append `rate` numbered lines per second in 50 ms batches."""
    batch = max(1, rate // 20)
    n = 0
    begin = time.perf_counter()
    with open(path, "a", buffering=1 << 20) as fh:
        while not stop.is_set() and time.perf_counter() - begin < seconds:
            lines = "".join(f"(APIServer pid=4242) INFO appended line SEQ{n + i:09d}\n"
                            for i in range(batch))
            fh.write(lines)
            fh.flush()
            n += batch
            seq[0] = n
            due = begin + n / rate
            time.sleep(max(0.0, due - time.perf_counter()))


def last_seq(screen: str) -> int | None:
    found = [int(tok[3:12]) for tok in screen.split() if tok.startswith("SEQ")]
    return max(found) if found else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="startup runs (median)")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--log-gb", type=float, default=1.0)
    ap.add_argument("--rate", type=int, default=20000, help="lines/s appended to the big log")
    ap.add_argument("--follow", type=float, default=20.0, help="seconds of appending")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vllmtui-bench-"))
    profiles = tmp / "profiles"
    profiles.mkdir()
    inner = f"vllmtui-bench-{uuid.uuid4().hex[:6]}"
    settings = replace(Settings(), profiles_dirs=(profiles,), state_dir=tmp / "state",
                       config_dir=tmp / "config", tmux_socket=inner)
    env = {"VLLMTUI_TMUX_SOCKET": inner, "VLLMTUI_STATE_DIR": str(tmp / "state"),
           "VLLMTUI_CONFIG_DIR": str(tmp / "config"), "VLLMTUI_PROFILES": str(profiles)}
    pane = Pane(env, tmp)
    fleet = Fleet(settings)
    rows: list[tuple[str, str, str]] = []
    try:
        # 1. startup with 10 profiles
        for i in range(10):
            write_standin(profiles, f"bench-{i:02d}")
        times = []
        for _ in range(args.runs):
            begin = pane.launch()
            end = pane.wait(lambda s: all(f"bench-{i:02d}" in s for i in range(10))
                            and "servers 0/10" in s, 30, "10 rows")
            times.append(end - begin)
            pane.close()
        rows.append(("startup to first full frame, 10 profiles",
                     f"median {statistics.median(times):.2f} s",
                     f"min {min(times):.2f} s, max {max(times):.2f} s, {args.runs} runs"))

        # 2. idle CPU with 5 running servers
        for i in range(5):
            (profiles / f"bench-{i:02d}.yaml").unlink()
            write_standin(profiles, f"bench-{i:02d}", mode="ignore-sigint")
            fleet.start(find_profile(settings, f"bench-{i:02d}"))
        for i in range(5):
            fleet.wait_ready(find_profile(settings, f"bench-{i:02d}"), timeout=60)
        pane.launch()
        pane.wait(lambda s: "servers 5/10 running" in s and s.count(" ready ") >= 5, 30, "5 ready")
        pid = pane.pid()
        time.sleep(3)  # let the first polls settle before measuring
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(pid), time.perf_counter()
        rows.append(("idle CPU, 5 running servers", f"{100 * (c1 - c0) / (t1 - t0):.1f} % of one core",
                     f"over {t1 - t0:.0f} s"))
        rows.append(("memory (RSS), 10 profiles / 5 running", f"{rss_mb(pid):.0f} MiB", ""))

        # 3. x: keypress to the frame showing `stopping`
        lat = []
        for i in range(5):
            row = f"bench-{i:02d}"

            def stopping(screen: str, row: str = row) -> bool:
                return any(line.lstrip().startswith(row) and "stopping" in line
                           for line in screen.splitlines())

            begin = time.perf_counter()
            pane.keys("x")
            lat.append(pane.wait(stopping, 10, f"{row} stopping") - begin)
            pane.keys("Down")
            time.sleep(0.3)
        rows.append(("keypress-to-frame, x", f"median {1000 * statistics.median(lat):.0f} ms",
                     f"max {1000 * max(lat):.0f} ms (capture-pane polled every ~5 ms)"))
        for i in range(5):
            with contextlib.suppress(Exception):  # already stopped by x
                fleet.stop(f"bench-{i:02d}", force=True)
        pane.close()

        # 4. a 1 GB log, opened and followed while lines are appended
        for p in profiles.glob("*.yaml"):
            p.unlink()
        write_standin(profiles, "biglog")
        run_dir = settings.runs_dir / "biglog" / "20260101T000000.000000Z"
        t = time.perf_counter()
        make_big_log(run_dir, args.log_gb)
        made = time.perf_counter() - t
        log = run_dir / "server.log"
        size = log.stat().st_size
        with open(log, "a") as fh:
            fh.write("(APIServer pid=4242) INFO appended line SEQ000000000 LAST-BEFORE-OPEN\n")
        begin = pane.launch()
        shown = pane.wait(lambda s: "LAST-BEFORE-OPEN" in s, 30, "the big log's last line")
        pid = pane.pid()
        rows.append((f"{size / 2**30:.2f} GiB log: launch to its last line on screen",
                     f"{shown - begin:.2f} s", f"(log written in {made:.0f} s)"))
        stop = threading.Event()
        seq = [0]
        writer = threading.Thread(target=appender, args=(log, args.rate, args.follow, stop, seq))
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        writer.start()
        lags: list[float] = []
        while writer.is_alive():
            written = seq[0]
            on_screen = last_seq(pane.screen())
            if on_screen is not None and written:
                lags.append(max(0, written - on_screen) / args.rate)
            time.sleep(0.25)
        c1, t1 = cpu_seconds(pid), time.perf_counter()
        final = seq[0]
        caught = pane.wait(lambda s: (last_seq(s) or -1) >= final - 1, 30, "the last appended line")
        rows.append((f"follow while {args.rate} lines/s appended ({args.follow:.0f} s)",
                     f"lag median {1000 * statistics.median(lags):.0f} ms",
                     f"max {1000 * max(lags):.0f} ms; last line shown {1000 * (caught - t1):.0f} ms"
                     f" after the writer stopped; app CPU {100 * (c1 - c0) / (t1 - t0):.0f} %"))
        rows.append(("memory (RSS) after following the 1 GB log", f"{rss_mb(pid):.0f} MiB", ""))
    finally:
        pane.close()
        subprocess.run(["tmux", "-L", inner, "kill-server"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'figure':<22}  notes")
    for name, figure, note in rows:
        print(f"{name:<{width}}  {figure:<22}  {note}")
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
          " (other work was running)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
