"""What scripts/bench_tui.py drives: a terminal (a pane of a private tmux server) running a
command, stand-in servers' profiles, CPU time of a process, a big log and its appender."""

from __future__ import annotations

import bisect
import json
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "standin" / "fake_vllm_standin.py"
VLLMTUI = f"{shlex.quote(sys.executable)} -m vllmtui"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pane:
    """A command in a pane of its own tmux server, read back like a user's screen."""

    def __init__(self, env: dict[str, str], cwd: Path, width: int = 160, height: int = 48):
        self.socket = f"vllmtui-bench-term-{uuid.uuid4().hex[:6]}"
        self.env, self.cwd, self.size = env, cwd, (width, height)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True).stdout

    def launch(self, command: str = VLLMTUI) -> float:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = f"unset TMUX; export {exports} TERM=xterm-256color; exec {command}"
        self.tmux("kill-server")
        for attempt in range(5):  # the server just killed may still be on its way out
            begin = time.perf_counter()
            done = subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "b", "-x",
                                   str(self.size[0]), "-y", str(self.size[1]), "-c", str(self.cwd), cmd],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                return begin
            time.sleep(0.1 * (attempt + 1))
        raise SystemExit(f"tmux new-session failed: {done.stderr}")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "b")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "b", *keys)

    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "b", "#{pane_pid}").strip())

    def wait(self, predicate: Callable[[str], bool], timeout: float = 30.0, what: str = "",
             pause: float = 0.005) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if predicate(self.screen()):
                return time.perf_counter()
            time.sleep(pause)
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
    return float(psutil.Process(pid).memory_info().rss / 2**20)


def cpu_seconds(pid: int) -> float:
    """The process's own CPU time (its children's not counted)."""
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


class CpuWindow:
    """A process's own CPU over a window, and the machine's other load meanwhile."""

    def __init__(self, pid: int):
        self.pid = pid
        self.c0, self.t0 = cpu_seconds(pid), time.perf_counter()
        psutil.cpu_percent(None)

    def end(self) -> tuple[float, float, float]:
        """(% of one core, seconds, the machine's busy % of all its cores)."""
        c1, t1 = cpu_seconds(self.pid), time.perf_counter()
        return 100 * (c1 - self.c0) / (t1 - self.t0), t1 - self.t0, psutil.cpu_percent(None)


def first_frame(pane: Pane, command: str, runs: int, ready: Callable[[str], bool]) -> list[float]:
    times = []
    for _ in range(runs):
        begin = pane.launch(command)
        times.append(pane.wait(ready, 30, f"the first frame of {command}") - begin)
        pane.close()
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


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


def appender(path: Path, rate: int, seconds: float, stop: threading.Event, seq: list[int],
             stamps: list[tuple[int, float]] | None = None) -> None:
    """Append `rate` numbered lines per second in 50 ms batches; `stamps` gets (lines written
    so far, when) after each batch."""
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
            if stamps is not None:
                stamps.append((n, time.perf_counter()))
            due = begin + n / rate
            time.sleep(max(0.0, due - time.perf_counter()))


def last_seq(screen: str) -> int | None:
    found = [int(tok[3:12]) for tok in screen.split() if tok.startswith("SEQ") and tok[3:12].isdigit()]
    return max(found) if found else None


def lag_of(shown: int, stamps: list[tuple[int, float]], now: float) -> float:
    """How long the oldest line not on screen yet has been in the file: 0 when the screen
    shows the last line written (`shown`: the number of the last line on screen)."""
    counts = [n for n, _ in stamps]
    first_unseen = bisect.bisect_right(counts, shown + 1)  # the batch that holds line shown + 1
    if first_unseen >= len(stamps):
        return 0.0
    return max(0.0, now - stamps[first_unseen][1])
