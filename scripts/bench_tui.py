#!/usr/bin/env python3
"""Speed of the TUI, measured in a real terminal: the app runs in a pane of a private tmux
server and is read back with `capture-pane`, like a user's screen. Every figure is printed
beside its goal (issue 19) and, where there is one, the same figure of a bare Textual app
(scripts/bench_bare_app.py: the same widgets, nothing else) from the same run.

Parts (--parts, default all, in this order):
  startup  `vllmtui` to the first full frame (10 profile rows), against the bare app
  runsh    `scripts/run.sh` to the first frame, against `vllmtui` (a machine already set up)
  idle5    idle CPU of the app with 5 running STAND-IN servers (and of the bare app)
  idle20   50 profiles, 20 running: idle CPU, how soon a change outside shows in the table,
           keypress-to-frame p99 (Down/Up), `x` to `stopping`, `vllmtui status --json`
  log      a 1 GiB log: its last line on screen after the first frame; followed while
           --rate lines/s are appended: the lag and the app's CPU
CPU is the app process's own CPU time (psutil; its children not counted); the machine's load
while measuring is printed too (2 cores: other work disturbs the figures).

Usage: .venv/bin/python scripts/bench_tui.py [--parts startup,idle5] [--idle 60] [--log-gb 1]
Everything runs on private tmux sockets and temp dirs; all of it is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_tui_support import (
    VLLMTUI,
    CpuWindow,
    Pane,
    appender,
    first_frame,
    lag_of,
    last_seq,
    make_big_log,
    median,
    p99,
    rss_mb,
    write_standin,
)

from vllmtui.core.settings import Settings
from vllmtui.profiles.loading import find_profile
from vllmtui.servers.fleet import Fleet

BARE = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'scripts' / 'bench_bare_app.py'))}"
PARTS = ("startup", "runsh", "idle5", "idle20", "log")


class Table:
    """Rows of: measure, figure, goal, passed (None: no goal), baseline, note."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool | None, str, str]] = []

    def add(self, measure: str, figure: str, goal: str = "", ok: bool | None = None,
            base: str = "", note: str = "") -> None:
        self.rows.append((measure, figure, goal, ok, base, note))
        print(f"  {measure}: {figure}  goal {goal or '-'}  {base}  {note}", file=sys.stderr, flush=True)

    def print(self) -> None:
        head = ("measure", "figure", "goal", "ok", "bare Textual / baseline", "notes")
        cells = [(m, f, g, "-" if ok is None else ("PASS" if ok else "FAIL"), b, n)
                 for m, f, g, ok, b, n in self.rows]
        widths = [max(len(str(r[i])) for r in [head, *cells]) for i in range(5)]
        for row in [head, *cells]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[5])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="vllmtui-bench-"))
        self.profiles = self.tmp / "profiles"
        self.profiles.mkdir()
        self.inner = f"vllmtui-bench-{uuid.uuid4().hex[:6]}"
        self.settings = replace(Settings(), profiles_dirs=(self.profiles,), state_dir=self.tmp / "state",
                                config_dir=self.tmp / "config", tmux_socket=self.inner)
        # PYTHONPATH: the vllmtui of this checkout (another checkout's bench measures that one)
        self.env = {"VLLMTUI_TMUX_SOCKET": self.inner, "VLLMTUI_STATE_DIR": str(self.tmp / "state"),
                    "VLLMTUI_CONFIG_DIR": str(self.tmp / "config"), "VLLMTUI_PROFILES": str(self.profiles),
                    "PYTHONPATH": str(ROOT)}
        self.pane = Pane(self.env, self.tmp)
        self.fleet = Fleet(self.settings)
        self.table = Table()
        self.running: list[str] = []
        self.last_start = 0.0

    # ------------------------------------------------------------ helpers

    def ensure_profiles(self, count: int) -> None:
        for i in range(count):
            if not (self.profiles / f"bench-{i:02d}.yaml").exists():
                write_standin(self.profiles, f"bench-{i:02d}", mode="ignore-sigint")

    def ensure_running(self, count: int) -> None:
        names = [f"bench-{i:02d}" for i in range(count) if f"bench-{i:02d}" not in self.running]
        for name in names:
            self.fleet.start(find_profile(self.settings, name))
        for name in names:
            self.fleet.wait_ready(find_profile(self.settings, name), timeout=60)
        self.running += names
        if names:
            self.last_start = time.monotonic()

    def open_app(self, total: int, running: int) -> int:
        self.pane.launch()
        header = f"servers {running}/{total}" + (" running" if running else "")
        self.pane.wait(lambda s: header in s and (running == 0 or " ready " in s), 60, header)
        return self.pane.pid()

    def idle_cpu(self, pid: int, seconds: float) -> tuple[float, float, float]:
        time.sleep(3)  # the first polls settle
        window = CpuWindow(pid)
        time.sleep(seconds)
        return window.end()

    def idle_rows(self, pid: int, what: str, goal: float, base: str = "") -> None:
        """Idle CPU twice: while the servers are in their first minute (every uptime ticks
        each second: each row is drawn again each second), then once they are past it (the
        table is read each second all the same, nothing on it changes)."""
        cpu, secs, load = self.idle_cpu(pid, self.args.idle)
        self.table.add(f"idle CPU, {what}, uptimes ticking", f"{cpu:.2f} % of a core", "", None, base,
                       f"the servers' first minute; over {secs:.0f} s; machine busy {load:.0f} %")
        time.sleep(max(0.0, self.last_start + 61 - time.monotonic()))
        window = CpuWindow(pid)
        time.sleep(self.args.idle)
        cpu, secs, load = window.end()
        self.table.add(f"idle CPU, {what}", f"{cpu:.2f} % of a core", f"<= {goal} %", cpu <= goal, base,
                       f"uptimes past their first minute; over {secs:.0f} s; machine busy {load:.0f} %")

    # ------------------------------------------------------------ parts

    def startup(self) -> None:
        self.ensure_profiles(10)

        def full(s: str) -> bool:
            return all(f"bench-{i:02d}" in s for i in range(10)) and "servers 0/10" in s

        ours, bare = [], []
        for _ in range(self.args.runs):  # interleaved: both see the same machine
            ours += first_frame(self.pane, VLLMTUI, 1, full)
            bare += first_frame(self.pane, f"{BARE} {shlex.quote(str(self.profiles))}", 1, full)
        ratio = median(ours) / median(bare)
        self.table.add("first full frame, 10 profiles", f"median {median(ours):.2f} s",
                       "<= 1.3x bare", ratio <= 1.3, f"bare {median(bare):.2f} s: {ratio:.2f}x",
                       f"{self.args.runs} runs each, interleaved;"
                       f" ours min {min(ours):.2f} max {max(ours):.2f}")

    def runsh(self) -> None:
        self.ensure_profiles(10)

        def full(s: str) -> bool:
            return all(f"bench-{i:02d}" in s for i in range(10))

        front = f"bash {shlex.quote(str(ROOT / 'scripts' / 'run.sh'))}"
        direct = shlex.quote(str(ROOT / ".venv" / "bin" / "vllmtui"))
        ours, plain = [], []
        for _ in range(self.args.runs):
            ours += first_frame(self.pane, front, 1, full)
            plain += first_frame(self.pane, direct, 1, full)
        extra = median(ours) - median(plain)
        self.table.add("scripts/run.sh to the first frame", f"median {median(ours):.2f} s",
                       "<= vllmtui + 0.5 s", extra <= 0.5, f"vllmtui {median(plain):.2f} s: +{extra:.2f} s",
                       "a machine already set up (setup.sh's stamp)")

    def idle5(self) -> None:
        self.ensure_profiles(10)
        self.ensure_running(5)
        bare_pid = self.pane.launch(f"{BARE} {shlex.quote(str(self.profiles))}")
        self.pane.wait(lambda s: "bench-09" in s, 30, "the bare app")
        bare, _, _ = self.idle_cpu(self.pane.pid() or bare_pid, min(self.args.idle, 20))
        self.pane.close()
        pid = self.open_app(10, 5)
        self.idle_rows(pid, "10 profiles / 5 running", 0.5, f"bare {bare:.2f} %")
        self.table.add("memory (RSS), 10 profiles / 5 running", f"{rss_mb(pid):.0f} MiB")
        self.pane.close()

    def idle20(self) -> None:
        self.ensure_profiles(50)
        self.ensure_running(20)
        pid = self.open_app(50, 20)
        self.idle_rows(pid, "50 profiles / 20 running", 1.5)
        self.table.add("memory (RSS), 50 profiles / 20 running", f"{rss_mb(pid):.0f} MiB")
        self.keypress(pid)
        self.outside_change()
        self.stop_key()
        self.pane.close()
        self.status_json()

    def keypress(self, pid: int) -> None:
        """Down/Up alternately: the time until the cursor row (its highlighted line) moved."""
        lat = []
        window = CpuWindow(pid)
        for i in range(self.args.keys):
            before = cursor_row(self.pane)
            key = "Down" if (i // 5) % 2 == 0 else "Up"
            begin = time.perf_counter()
            self.pane.keys(key)
            end = self.pane.wait(lambda _s, b=before: cursor_row(self.pane) not in (b, None), 5,
                                 f"the cursor to move ({key})", pause=0.0)
            lat.append(end - begin)
            time.sleep(0.05 + (i % 7) * 0.013)  # keys at no fixed phase of the poll
        cpu, _, _ = window.end()
        self.table.add("keypress to frame (Down/Up), 20 running", f"p99 {1000 * p99(lat):.0f} ms",
                       "p99 <= 50 ms", p99(lat) <= 0.05, "",
                       f"median {1000 * median(lat):.0f} ms, max {1000 * max(lat):.0f} ms, {len(lat)} keys;"
                       f" includes capture-pane's ~3 ms; app CPU meanwhile {cpu:.0f} %")

    def outside_change(self) -> None:
        """A server stopped outside the app (its session killed): how soon the header says so."""
        delays = []
        for k, name in enumerate(("bench-19", "bench-18", "bench-17")):
            time.sleep(0.37 * (k + 1))
            begin = time.perf_counter()
            self.fleet.tmux.kill_session(f"vllmtui-{name}")
            self.running.remove(name)
            want = f"servers {len(self.running)}/50"
            delays.append(self.pane.wait(lambda s, w=want: w in s, 10, want, pause=0.01) - begin)
        self.table.add("a server gone outside: the table says so", f"max {max(delays):.2f} s",
                       "<= 1.2 s (1 s polls)", max(delays) <= 1.2, "",
                       "session killed with tmux, 3 times: " + ", ".join(f"{d:.2f}" for d in delays))

    def stop_key(self) -> None:
        """`x` on the cursor's server (a running one): until its row says `stopping`."""
        lat = []
        for name in ("bench-00", "bench-01", "bench-02"):
            while cursor_name(self.pane) != name:
                self.pane.keys("Down" if (cursor_name(self.pane) or "") < name else "Up")
                time.sleep(0.1)
            time.sleep(0.3)

            def stopping(screen: str, row: str = name) -> bool:
                return any(line.lstrip().startswith(row) and "stopping" in line
                           for line in screen.splitlines())

            begin = time.perf_counter()
            self.pane.keys("x")
            lat.append(self.pane.wait(stopping, 10, f"{name} stopping") - begin)
            self.running.remove(name)
        self.table.add("keypress to frame, x (the row says stopping)", f"median {1000 * median(lat):.0f} ms",
                       "", None, "", f"max {1000 * max(lat):.0f} ms, 3 servers")

    def status_json(self) -> None:
        env = {**os.environ, **self.env}
        env.pop("TMUX", None)
        ours, bare = [], []
        for _ in range(self.args.runs):
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "vllmtui", "status", "--json"], env=env,
                                  capture_output=True, text=True)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env)
            bare.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"vllmtui status --json failed: {done.stderr}")
        running = sum(1 for line in done.stdout.split('"state"') if line.lstrip(': "').startswith("ready"))
        self.table.add(f"vllmtui status --json, 50 profiles / {running} ready",
                       f"median {1000 * median(ours):.0f} ms", "<= 150 ms", median(ours) <= 0.15,
                       f"python -c pass {1000 * median(bare):.0f} ms", f"min {1000 * min(ours):.0f} ms")

    def log(self) -> None:
        for p in self.profiles.glob("*.yaml"):
            p.unlink()
        write_standin(self.profiles, "biglog")
        run_dir = self.settings.runs_dir / "biglog" / "20260101T000000.000000Z"
        t = time.perf_counter()
        make_big_log(run_dir, self.args.log_gb)
        made = time.perf_counter() - t
        log = run_dir / "server.log"
        size = log.stat().st_size
        with open(log, "a") as fh:
            fh.write("(APIServer pid=4242) INFO appended line SEQ000000000 LAST-BEFORE-OPEN\n")
        subprocess.run(["sync"], check=False)
        frame = shown = 0.0
        begin = self.pane.launch()
        while not shown:
            screen = self.pane.screen()
            now = time.perf_counter()
            if not frame and "biglog" in screen and "servers 0/1" in screen:
                frame = now
            if "LAST-BEFORE-OPEN" in screen:
                shown, frame = now, frame or now
            if now - begin > 30:
                raise SystemExit("the big log's last line never showed")
        pid = self.pane.pid()
        self.table.add(f"{size / 2**30:.2f} GiB log: its last line after the first frame",
                       f"{shown - frame:.2f} s", "<= 0.1 s", shown - frame <= 0.1, "",
                       f"first frame {frame - begin:.2f} s after launch (log written in {made:.0f} s)")
        self.follow(log, pid)

    def follow(self, log: Path, pid: int) -> None:
        rate = self.args.rate
        stop = threading.Event()
        seq = [0]
        stamps: list[tuple[int, float]] = []
        writer = threading.Thread(target=appender, args=(log, rate, self.args.follow, stop, seq, stamps))
        window = CpuWindow(pid)
        writer.start()
        lags: list[float] = []
        while writer.is_alive():
            on_screen = last_seq(self.pane.screen())
            now = time.perf_counter()  # after the capture: a lag is never under-stated
            if on_screen is not None and stamps:
                lags.append(lag_of(on_screen, list(stamps), now))
            time.sleep(0.023)
        cpu, secs, load = window.end()
        t1 = time.perf_counter()
        final = seq[0]
        caught = self.pane.wait(lambda s: (last_seq(s) or -1) >= final - 1, 30, "the last appended line")
        p90 = sorted(lags)[int(0.9 * len(lags))]
        self.table.add(f"following {rate} lines/s ({secs:.0f} s): lag",
                       f"median {1000 * median(lags):.0f} ms", "<= 50 ms", median(lags) <= 0.05, "",
                       f"p90 {1000 * p90:.0f} ms, max {1000 * max(lags):.0f} ms;"
                       f" last line {1000 * (caught - t1):.0f} ms after the writer stopped")
        self.table.add(f"following {rate} lines/s: the app's CPU", f"{cpu:.1f} % of a core", "<= 5 %",
                       cpu <= 5, "", f"machine busy {load:.0f} % (the writer included)")
        self.table.add("memory (RSS) after following the big log", f"{rss_mb(pid):.0f} MiB")
        self.pane.close()

    def close(self) -> None:
        self.pane.close()
        for name in self.running:
            with contextlib.suppress(Exception):
                self.fleet.stop(name, force=True)
        subprocess.run(["tmux", "-L", self.inner, "kill-server"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def cursor_row(pane: Pane) -> int | None:
    """The screen line of the server table's cursor: the row drawn on the cursor's background
    (capture-pane -e keeps the colours; a line starts with its style when it changes)."""
    lines = pane.tmux("capture-pane", "-p", "-e", "-t", "b").splitlines()
    for n, line in enumerate(lines):
        if "bench-" in line and CURSOR_STYLE in line.split("bench-")[0]:
            return n
    return None


def cursor_name(pane: Pane) -> str | None:
    """The name in the cursor's row."""
    n = cursor_row(pane)
    if n is None:
        return None
    line = pane.screen().splitlines()[n].split()
    return line[0] if line else None


CURSOR_STYLE = os.environ.get("BENCH_CURSOR_STYLE", "48;5;32m")  # the focused table's cursor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated, of: " + ", ".join(PARTS))
    ap.add_argument("--runs", type=int, default=7, help="startup runs of each app (median)")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of each idle CPU measurement")
    ap.add_argument("--keys", type=int, default=200, help="keypresses for the p99")
    ap.add_argument("--log-gb", type=float, default=1.0)
    ap.add_argument("--rate", type=int, default=20000, help="lines/s appended to the big log")
    ap.add_argument("--follow", type=float, default=20.0, help="seconds of appending")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    load0 = os.getloadavg()[0]
    bench = Bench(args)
    try:
        for part in PARTS:
            if part in parts:
                getattr(bench, part)()
    finally:
        bench.close()
    bench.table.print()
    print(f"\nmachine: {os.cpu_count()} cores, load average {load0:.2f} at the start,"
          f" {os.getloadavg()[0]:.2f} at the end (1-minute; other work may have run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
