#!/usr/bin/env python3
"""Soak test of vllmtui against the real tiny vLLM (CPU build), on isolated sockets.

    .venv/bin/python scripts/soak.py [--quick] [--tui-kills N] [--cycles N] [--races N]
                                     [--crashes N] [--tunnel-drops N] [--only STEP,...]
                                     [--json FILE] [--markdown] [--keep] [-v]

Everything runs apart from the user's: its own tmux sockets (one for vllmtui's servers, one
for the "terminal" the TUI runs in), temp state/data/config/profile directories, free ports,
its own OpenSSH sshd on loopback. vllmtui is driven through its real CLI (`vllmtui start`,
`stop`, `status --json`, `tunnel ...`) and its real TUI (a tmux pane running `vllmtui`);
timings that need more resolution than one CLI call (about a second on a 2-core box) are
read in-process with the same functions `vllmtui status` calls, and then confirmed by the CLI.

Steps (docs/reliability.md says what each one shows and why):
  tui       the TUI SIGKILLed N times: servers and tunnels rediscovered identically
  secrets   a random API key is looked for in argv, tmux environments/options, every
            process's environment but vLLM's, the state/data/config dirs, logs, screens
  tunnel    sshd killed under a tunnel: failed within 5 s, back up by itself
  crash     crash-to-`crashed` latency (max_model_len above the model's limit)
  races     two `vllmtui start` at once: one server, a clear error, no leftovers
  cycles    start/stop cycles: graceful, --force, SIGKILL of the API server, stopped while
            importing, loading or ready; then 0 vLLM processes, sessions, phantom runs

Prints one line per check, then a table of figures with their goals; exit status 1 if any
figure fails. Always cleans up (its tmux servers, sshd, every process it started), also on
Ctrl-C. Never touches another tmux server or another vLLM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import getpass
import json
import os
import platform
import random
import re
import secrets
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vllmtui.core import procs
from vllmtui.core.settings import Settings
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus
from vllmtui.tunnels.manager import Tunnels, TunnelStatus

T = TypeVar("T")
STEPS = ("tui", "secrets", "tunnel", "crash", "races", "cycles")
PROFILE = "soak"  # the warm server, the tunnel, the races and the cycles
CRASHER = "soak-crash"  # max_model_len above the tiny model's 4,096: vLLM refuses it
CRASH_MARK = "is greater than the derived max_model_len"  # the fatal line of that crash
KEY_ENV = "SOAK_KEY"  # the profiles' api_key_env
MARK_ENV = "VLLMTUI_SOAK_ID"  # in every environment this soak hands out: finds its processes
API_SERVER = "vllm.entrypoints.openai.api_server"
MOMENTS = ("importing", "loading", "ready")
KINDS = ("graceful", "force", "sigkill")
GOAL_FAILED_S = 5.0
GOAL_BACK_S = 35.0  # the longest reconnect backoff (retry_max, 30 s) plus a verification
GOAL_CRASH_S = 1.0


class SoakError(Exception):
    """A step could not go on (what was needed did not happen)."""


class Interrupted(BaseException):
    """SIGTERM / SIGHUP: stop and clean up like Ctrl-C."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll until predicate() is truthy (returns it); SoakError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SoakError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def spread(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"min {min(values):.2f} / median {statistics.median(values):.2f} /"
            f" max {max(values):.2f} s (n={len(values)})")


# ---------------------------------------------------------------- processes


def read_proc(pid: int, what: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes()
    except OSError:
        return b""


def user_pids() -> list[int]:
    """Every process of this user (by /proc ownership), this one included."""
    me = os.getuid()
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == me:
                    out.append(int(entry.name))
    return out


def zombie(pid: int) -> bool:
    """An ended process its parent has not reaped yet (this VM's init reaps late): it holds
    nothing, so it is not left over (vllmtui skips them too)."""
    stat = read_proc(pid, "stat")
    return b") Z" in stat[stat.rfind(b")"):] if stat else False


def argv_of(pid: int) -> list[str]:
    return [a.decode(errors="replace") for a in read_proc(pid, "cmdline").split(b"\0") if a]


def describe(pid: int) -> str:
    """pid, parent, state and command line, for a report."""
    try:
        proc = psutil.Process(pid)
        return f"{pid} (ppid {proc.ppid()}, {proc.status()}) {' '.join(argv_of(pid))[:90]}"
    except psutil.Error:
        return f"{pid} (gone)"


def tree(pid: int) -> list[int]:
    """A process, its descendants and every process of its session or group (vLLM's
    children stay in both when their API server dies): vllmtui's own notion of a server."""
    return [p.pid for p in procs.tree_of(pid)]


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    me = os.getpid()
    for pid in pids:
        if pid != me:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def pidfd_wait(pid: int) -> Callable[[float], bool]:
    """A function that waits up to N s for `pid` to end and says whether it has (pidfd:
    the exact moment, without being its parent)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return lambda _timeout: True

    def wait(timeout: float) -> bool:
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        return bool(ready)

    return wait


# ---------------------------------------------------------------- sshd


class Sshd:
    """An OpenSSH sshd on 127.0.0.1:port with throwaway host and user keys and a client
    config (`ssh -F`) whose alias `box` reaches it. `stop()` kills the listener and its
    per-connection processes, as a rebooted server would; `start()` brings it back on the
    same port with the same host key."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vllmtui-soak",
                            "-f", str(root / key)], check=True, capture_output=True)
        (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
        host_pub = " ".join((root / "host_key.pub").read_text().split()[:2])
        (root / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"PidFile none\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
            "AllowTcpForwarding yes\nGatewayPorts no\nLogLevel VERBOSE\n"
        )
        self.client_config = root / "ssh_config"
        self.client_config.write_text(
            f"Host box\n  HostName 127.0.0.1\n  Port {self.port}\n"
            f"  IdentityFile {root / 'user_key'}\n"
            f"Host *\n  User {getpass.getuser()}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {root / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel INFO\n"
        )
        self.log = root / "sshd.log"

    def start(self, env: dict[str, str]) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.root / "sshd_config")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise SoakError(f"sshd exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
            if time.monotonic() > deadline:
                raise SoakError(f"sshd did not listen: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the listener and every connection it serves."""
        if self.proc is None:
            return
        try:
            victims = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            victims = []
        self.proc.send_signal(signal.SIGTERM)
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        psutil.wait_procs(victims, timeout=5)
        self.proc = None


# ---------------------------------------------------------------- results


@dataclass
class Figure:
    """One line of the final table: a figure, its goal, and whether it met it (None: a
    figure for information, without a goal)."""

    name: str
    value: str
    goal: str
    ok: bool | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.ok]


@dataclass
class Cli:
    """One finished `vllmtui` command."""

    args: tuple[str, ...]
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return (self.out + self.err).strip()

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Clean:
    """What is left after a server was stopped (all empty: clean)."""

    vllm: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.vllm or self.sessions or self.phantoms or self.other)

    def problems(self) -> list[str]:
        return ([f"vLLM process left: {v}" for v in self.vllm]
                + [f"stray tmux session: {s}" for s in self.sessions]
                + [f"phantom run: {p}" for p in self.phantoms] + self.other)


@dataclass
class Place:
    """One place the secret scan looked at: how many items, and what it found there."""

    name: str
    items: int = 0
    hits: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the soak


class Soak:
    """The isolated world (directories, sockets, ports, sshd, environment) and the steps."""

    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.id = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix=f"vllmtui-soak-{self.id}-"))
        self.state = self.root / "state"
        self.data = self.root / "data"
        self.config = self.root / "config"
        self.profiles = self.root / "profiles"
        for d in (self.state, self.data, self.config, self.profiles):
            d.mkdir()
        self.sock = f"vllmtui-soak-{self.id}"  # vllmtui's tmux server
        self.term_sock = f"vllmtui-soak-term-{self.id}"  # the "user's terminal" for the TUI
        self.secret = "soak-" + secrets.token_hex(16)
        self.runtime = find_runtime()
        self.vllmtui = self._vllmtui_argv()
        self.sshd: Sshd | None = None
        self.children: list[subprocess.Popen[str]] = []
        self.pane_pids: set[int] = set()  # every server pane seen: their sessions find orphans
        self.launched: dict[str, set[Path]] = {PROFILE: set(), CRASHER: set()}
        self.figures: list[Figure] = []
        self.lines: list[str] = []
        self.details: dict[str, Any] = {}
        self.cli_times: dict[str, list[float]] = {}
        self.tui_baseline: dict[str, Any] | None = None
        self.sampler: Sampler | None = None
        self.reported: set[str] = set()  # phantom runs already counted
        self.ports = {"server": free_port(), "crash": free_port(), "tunnel": free_port()}
        self.settings = replace(
            Settings(), profiles_dirs=(self.profiles,), state_dir=self.state,
            config_dir=self.config, data_dir=self.data, tmux_socket=self.sock,
        )
        self.env = self._env()
        (self.root / "secret").write_text(self.secret + "\n")
        (self.root / "secret").chmod(0o600)

    # ------------------------------------------------------------ setup

    @staticmethod
    def _vllmtui_argv() -> list[str]:
        script = ROOT / ".venv" / "bin" / "vllmtui"
        return [str(script)] if script.exists() else [sys.executable, "-m", "vllmtui"]

    def _env(self) -> dict[str, str]:
        """The environment of every vllmtui command: the user's, pointed at the soak's
        world, with the API key exported (as a user exports it before `vllmtui start`)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLMTUI_") and k not in ("TMUX", "TMUX_PANE")}
        env.update(
            VLLMTUI_TMUX_SOCKET=self.sock, VLLMTUI_STATE_DIR=str(self.state),
            VLLMTUI_CONFIG_DIR=str(self.config), VLLMTUI_DATA_DIR=str(self.data),
            VLLMTUI_PROFILES=str(self.profiles), VLLMTUI_RUNTIME_VLLM_CPU=str(self.runtime),
            PYTHONUNBUFFERED="1",
        )
        env[MARK_ENV] = self.id
        env[KEY_ENV] = self.secret
        return env

    def plain_env(self) -> dict[str, str]:
        """The soak's environment without the key (sshd, the terminal's tmux server)."""
        return {k: v for k, v in self.env.items() if k != KEY_ENV}

    def setup(self) -> None:
        for tool in ("tmux", "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise SoakError(f"{tool} is not installed (scripts/setup-test-deps.sh installs it)")
        if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
            raise SoakError("sshd is not installed (apt install openssh-server)")
        self.sshd = Sshd(self.root / "sshd")
        self.sshd.start(self.plain_env())
        base = yaml.safe_load((ROOT / "profiles" / "tiny-cpu.yaml").read_text())
        base.pop("name", None)
        base["api_key_env"] = KEY_ENV
        base["env"] = {**base.get("env", {}), MARK_ENV: self.id}
        base["stop"] = {"timeout": 20, "term_timeout": 10}
        soak = {**base, "port": self.ports["server"], "description": "vllmtui soak",
                "tunnels": [{"direction": "local", "destination": "box",
                             "bind_port": self.ports["tunnel"],
                             "ssh_config": str(self.sshd.client_config)}]}
        crash = {**base, "port": self.ports["crash"], "max_model_len": 100000,
                 "description": "vllmtui soak: vLLM refuses max_model_len 100000"}
        for name, data in ((PROFILE, soak), (CRASHER, crash)):
            (self.profiles / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        shipped = Settings.from_env().models_dir / "tiny"
        if (shipped / "config.json").exists():  # saves generating it (vllmtui would)
            shutil.copytree(shipped, self.data / "models" / "tiny")
        (self.root / "tui.sh").write_text(self._tui_script())
        log(f"soak {self.id}: root {self.root}, tmux -L {self.sock}, sshd :{self.sshd.port},"
            f" ports {self.ports}")

    def _tui_script(self) -> str:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())
                           if k.startswith("VLLMTUI_") or k == MARK_ENV)
        # a user over plain SSH who exported the key in their shell: not inside tmux
        return ("unset TMUX TMUX_PANE\n"
                f"export {exports} TERM=xterm-256color\n"
                f"IFS= read -r {KEY_ENV} < {shlex.quote(str(self.root / 'secret'))}\n"
                f"export {KEY_ENV}\n"
                f"cd {shlex.quote(str(self.root))}\n"
                f"exec {shlex.join(self.vllmtui)}\n")

    # ------------------------------------------------------------ driving vllmtui

    def cli(self, *args: str, timeout: float = 300.0) -> Cli:
        begin = time.monotonic()
        try:
            proc = subprocess.run([*self.vllmtui, *args], env=self.env, cwd=self.root,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SoakError(f"`vllmtui {' '.join(args)}` took over {timeout:.0f} s") from exc
        seconds = time.monotonic() - begin
        key = " ".join(a for a in args[:2] if not a.startswith("-"))
        self.cli_times.setdefault(key, []).append(seconds)
        if self.opts.verbose:
            log(f"  $ vllmtui {' '.join(args)} -> {proc.returncode} ({seconds:.1f} s)")
        return Cli(tuple(args), proc.returncode, proc.stdout, proc.stderr, seconds)

    def popen_cli(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([*self.vllmtui, *args], env=self.env, cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.children.append(proc)
        return proc

    def tmux(self, *args: str, sock: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", sock or self.sock, *args], capture_output=True,
                              text=True, env=self.plain_env())

    def sessions(self, sock: str | None = None) -> list[str]:
        out = self.tmux("list-sessions", "-F", "#{session_name}", sock=sock)
        return out.stdout.split() if out.returncode == 0 else []

    def server_status(self, name: str = PROFILE) -> ServerStatus:
        """What `vllmtui status NAME` reads, read in-process (a fresh reader each time, as
        each CLI call is)."""
        status = Fleet(self.settings).status_by_name(name)
        if status.pid:
            self.pane_pids.add(status.pid)
        return status

    def tunnel_status(self, name: str = PROFILE) -> TunnelStatus:
        return Tunnels(self.settings).status(name)

    def cli_servers(self) -> dict[str, dict[str, Any]]:
        result = self.cli("status", "--json")
        if result.rc != 0:
            raise SoakError(f"vllmtui status --json failed: {result.text[-500:]}")
        servers = {s["name"]: s for s in result.json()["servers"]}
        for s in servers.values():
            if s.get("pid"):
                self.pane_pids.add(int(s["pid"]))
        return servers

    def cli_tunnels(self) -> dict[str, dict[str, Any]]:
        result = self.cli("tunnel", "status", "--json")
        if result.rc != 0:
            raise SoakError(f"vllmtui tunnel status --json failed: {result.text[-500:]}")
        return {t["name"]: t for t in result.json()["tunnels"]}

    def start(self, name: str = PROFILE, wait: bool = False) -> Cli:
        result = self.cli("start", name, *(["--wait", "--timeout", "600"] if wait else []),
                          timeout=700 if wait else 120)
        run_dir = run_dir_of(result.out)
        if run_dir is not None:
            self.launched.setdefault(name, set()).add(run_dir)
        if result.rc != 0 and not (wait and run_dir is not None):
            raise SoakError(f"vllmtui start {name} failed: {result.text[-1500:]}")
        return result

    def wait_log(self, name: str = PROFILE, timeout: float = 120.0) -> ServerStatus:
        """Until the server's log has its first bytes (vLLM runs, the run is real)."""
        def written() -> ServerStatus | None:
            status = self.server_status(name)
            log_file = status.run_dir / "server.log" if status.run_dir else None
            if log_file is not None and log_file.exists() and log_file.stat().st_size > 0:
                return status
            if status.state in ("crashed", "exited", "stopped"):
                raise SoakError(f"{name} ended before its log had a line: {status.state}")
            return None
        return wait_for(written, timeout, f"{name}'s first log line", 0.1)

    # ------------------------------------------------------------ what is left

    def mine(self) -> list[int]:
        """This soak's processes: the soak's mark in their environment, the soak's root on
        their command line, or in the session of a server pane it started."""
        mark = f"{MARK_ENV}={self.id}".encode()
        root = str(self.root).encode()
        me = os.getpid()
        sids = self.pane_pids
        out = []
        for pid in user_pids():
            if pid == me or zombie(pid):
                continue
            if (mark in read_proc(pid, "environ") or root in read_proc(pid, "cmdline")
                    or _sid(pid) in sids):
                out.append(pid)
        return out

    def my_vllm(self) -> list[str]:
        """This soak's vLLM processes: `VLLM::` titles, or a python of the vLLM runtime."""
        runtime = str(self.runtime)
        out = []
        for pid in self.mine():
            argv = argv_of(pid)
            if argv and (argv[0].startswith("VLLM::") or argv[0].startswith(runtime)):
                out.append(f"{pid} {' '.join(argv)[:100]}")
        return out

    def foreign_orphans(self) -> list[int]:
        """Orphaned `VLLM::` processes that are not this soak's (`vllmtui stop --force` must
        leave them alone)."""
        mine = set(self.mine())
        return [p.pid for p in procs.orphans(set()) if p.pid not in mine
                and p.command.startswith("VLLM::")]

    def check_clean(self, name: str = PROFILE, expect_sessions: Iterable[str] = ()) -> Clean:
        """After a stop: no vLLM of this soak, no session but the expected ones, every run
        directory a real launch that ended, and the port free again."""
        clean = Clean()
        clean.vllm = self.my_vllm()
        if clean.vllm:  # said at once; see whether they linger
            time.sleep(5)
            lingering = self.my_vllm()
            clean.vllm = [f"{v} ({'still there after 5 s' if v in lingering else 'gone after 5 s'})"
                          for v in clean.vllm]
        expected = set(expect_sessions)
        clean.sessions = [s for s in self.sessions() if s not in expected]
        phantoms = self.phantom_runs(name)  # each one counts once: where it appeared
        clean.phantoms = [p for p in phantoms if p not in self.reported]
        self.reported.update(phantoms)
        port = self.ports["server" if name == PROFILE else "crash"]
        if not port_free(port):
            clean.other.append(f"port {port} still taken")
        return clean

    def phantom_runs(self, name: str) -> list[str]:
        """Run directories that are no launch: one no start reported, one without launch.json
        or an empty server.log, one without an exit record once the server is gone."""
        base = self.state / "runs" / name
        found = {p for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()
        launched = self.launched.get(name, set())
        running = {Path(s["run_dir"]) for s in self._live_runs()}
        problems = [f"{p.name}: no `vllmtui start` made it" for p in sorted(found - launched)]
        problems += [f"{p.name}: reported by start but missing" for p in sorted(launched - found)]
        for run in sorted(found & launched):
            if not (run / "launch.json").is_file():
                problems.append(f"{run.name}: no launch.json")
            server_log = run / "server.log"
            if not server_log.is_file() or server_log.stat().st_size == 0:
                problems.append(f"{run.name}: empty server.log")
            if run not in running and not (run / "exit.json").is_file():
                problems.append(f"{run.name}: ended without exit.json")
        return problems

    def _live_runs(self) -> list[dict[str, str]]:
        out = self.tmux("list-sessions", "-F", "#{@vllmtui-run-dir}")
        return [{"run_dir": line} for line in out.stdout.split() if line]

    # ------------------------------------------------------------ reporting

    def say(self, step: str, text: str) -> None:
        line = f"{step:<15} {text}"
        self.lines.append(line)
        print(line, flush=True)

    def figure(self, name: str, value: str, goal: str, ok: bool | None, **data: Any) -> None:
        self.figures.append(Figure(name, value, goal, ok, data))

    # ------------------------------------------------------------ cleanup

    def cleanup(self) -> list[str]:
        """Kill everything this soak started; returns what had to be killed."""
        killed: list[str] = []
        if self.sampler is not None:
            self.sampler.halt.set()
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
                killed.append(f"{proc.pid} vllmtui {proc.args!r:.60}")
        for sock in (self.term_sock, self.sock):
            panes = self.tmux("list-panes", "-a", "-F", "#{pane_pid}", sock=sock).stdout.split()
            pids = {p for pane in panes if pane.isdigit() for p in tree(int(pane))}
            killed += [describe(pid) for pid in sorted(pids)]
            self.tmux("kill-server", sock=sock)
            kill_pids(pids)
        for sock in (self.term_sock, self.sock, f"vllmtui-soak-canary-{self.id}"):
            with contextlib.suppress(OSError):  # tmux leaves its socket file behind
                socket_path(sock).unlink()
        if self.sshd is not None:
            self.sshd.stop()
        deadline = time.monotonic() + 10
        while left := self.mine():
            if time.monotonic() > deadline:
                break
            killed += [describe(pid) for pid in left]
            kill_pids(left)
            time.sleep(0.2)
        return killed


def socket_path(name: str) -> Path:
    """Where tmux -L NAME keeps its socket."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / name


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def run_dir_of(output: str) -> Path | None:
    match = re.search(r"^\s*run dir: (.+)$", output, re.M)
    return Path(match.group(1).strip()) if match else None


def find_runtime() -> Path:
    """The vLLM CPU runtime the shipped tiny-cpu profile runs (the user's, read-only)."""
    env = os.environ.get("VLLMTUI_RUNTIME_VLLM_CPU")
    path = Path(env) if env else Settings.from_env().data_dir / "runtimes" / "vllm-cpu"
    if not (path / "bin" / "python").exists():
        raise SoakError(f"no vLLM CPU runtime at {path}: run scripts/setup-vllm-cpu.sh")
    return path


# ---------------------------------------------------------------- step: the warm server


def warm_up(soak: Soak) -> None:
    """One real server with a tunnel, shared by the TUI, secrets and tunnel steps."""
    log(f"starting the warm server {PROFILE} (real vLLM; about a minute)")
    result = soak.start(PROFILE, wait=True)
    if result.rc != 0:
        raise SoakError(f"{PROFILE} did not become ready: {result.text[-1500:]}")
    up = soak.cli("tunnel", "up", PROFILE, "--timeout", "30")
    if up.rc != 0:
        raise SoakError(f"vllmtui tunnel up {PROFILE} failed: {up.text[-1000:]}")
    log(f"{PROFILE} ready, tunnel {PROFILE} up on 127.0.0.1:{soak.ports['tunnel']}")


def stop_warm(soak: Soak) -> None:
    down = soak.cli("tunnel", "down", PROFILE)
    stop = soak.cli("stop", PROFILE)
    clean = soak.check_clean(PROFILE)
    ok = down.rc == 0 and stop.rc == 0 and clean.ok
    soak.say("warm-stop", ("ok: tunnel down, server stopped, nothing left" if ok else
                           "FAIL: " + "; ".join(clean.problems() + [down.text, stop.text])))
    soak.figure("warm server + tunnel stopped clean", "yes" if ok else "no", "yes", ok,
                problems=clean.problems(), stop=stop.text, down=down.text)


# ---------------------------------------------------------------- step: TUI kills


def tui_launch(soak: Soak) -> None:
    command = f"sh {shlex.quote(str(soak.root / 'tui.sh'))}"
    if "term" in soak.sessions(soak.term_sock):
        soak.tmux("respawn-pane", "-k", "-t", "term", command, sock=soak.term_sock)
        return
    out = soak.tmux("new-session", "-d", "-s", "term", "-x", "200", "-y", "50",
                    "-c", str(soak.root), command, sock=soak.term_sock)
    if out.returncode != 0:
        raise SoakError(f"cannot open the terminal: {out.stderr}")
    soak.tmux("set-option", "-t", "term", "remain-on-exit", "on", sock=soak.term_sock)


def tui_screen(soak: Soak) -> str:
    return soak.tmux("capture-pane", "-p", "-t", "term", sock=soak.term_sock).stdout


def tui_pane(soak: Soak) -> tuple[int, bool]:
    out = soak.tmux("display-message", "-p", "-t", "term", "#{pane_pid} #{pane_dead}",
                    sock=soak.term_sock).stdout.split()
    return int(out[0]), out[1] == "1"


TABLE_COLUMNS = ("NAME", "STATUS", "PORT", "UPTIME", "GPUS", "GPU MEM", "REQ R/W TOK/S",
                 "LAST PROBE", "TUNNEL", "MODEL")
COMPARED = ("NAME", "STATUS", "PORT", "TUNNEL", "MODEL")  # not uptime, load, GPU readings


def tui_picture(screen: str, names: Iterable[str]) -> dict[str, Any] | None:
    """What the TUI shows of the servers: the header's server count and, per profile, the
    table's name, status, port, tunnel and model cells (None: the table is not drawn yet)."""
    lines = screen.splitlines()
    header = next((i for i, ln in enumerate(lines) if " NAME " in f" {ln} " and "STATUS" in ln
                   and "TUNNEL" in ln), None)
    if header is None:
        return None
    head = lines[header]
    starts = []
    pos = 0
    for col in TABLE_COLUMNS:
        pos = head.find(col, pos)
        if pos < 0:
            return None
        starts.append(pos)
        pos += len(col)
    rows: dict[str, dict[str, str]] = {}
    wanted = set(names)
    for line in lines[header + 1:header + 1 + 20]:
        cells = {col: line[a:b].strip() for col, a, b in
                 zip(TABLE_COLUMNS, starts, [*starts[1:], len(line) + 1], strict=True)}
        if cells["NAME"] in wanted:
            rows[cells["NAME"]] = {c: cells[c] for c in COMPARED}
    count = re.search(r"servers \d+/\d+ running", screen)
    return {"header": count.group(0) if count else None, "rows": rows}


def cli_picture(soak: Soak) -> dict[str, Any]:
    """What the CLI reports: every server's name, state, pid, run dir, session, port and
    start, and every tunnel's state, processes, session and forward."""
    servers = {n: {k: s.get(k) for k in ("name", "state", "pid", "run_dir", "session", "port",
                                         "started", "phase")}
               for n, s in soak.cli_servers().items()}
    tunnels = {n: {k: t.get(k) for k in ("name", "state", "pid", "ssh_pid", "session",
                                         "started", "bind", "target", "attempt")}
               for n, t in soak.cli_tunnels().items()}
    return {"servers": servers, "tunnels": tunnels}


def tui_settled(soak: Soak, want: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    """The TUI's picture once it shows `want` (or, with None, a ready server whose tunnel
    is up); SoakError with the last screen after `timeout` s."""
    last: list[str] = [""]

    def shown() -> dict[str, Any] | None:
        screen = tui_screen(soak)
        last[0] = screen
        picture = tui_picture(screen, (PROFILE, CRASHER))
        if picture is None:
            return None
        if want is not None:
            return picture if picture == want else None
        row = picture["rows"].get(PROFILE, {})
        good = (row.get("STATUS") == "ready" and "up" in row.get("TUNNEL", "")
                and CRASHER in picture["rows"] and picture["header"])
        return picture if good else None

    try:
        return wait_for(shown, timeout, "the TUI's table", 0.25)
    except SoakError as exc:
        raise SoakError(f"{exc}; last screen:\n{last[0]}") from None


def tui_kills(soak: Soak, count: int) -> None:
    """SIGKILL the TUI `count` times; each time the next one must show the same servers and
    tunnels, and the CLI must report the same before and after."""
    tui_launch(soak)
    begin = time.monotonic()
    baseline = tui_settled(soak, None, 120)
    soak.tui_baseline = baseline
    log(f"TUI up in {time.monotonic() - begin:.1f} s: {baseline}")
    good = 0
    back_in: list[float] = []
    failures: list[str] = []
    for i in range(count):
        problems = tui_kill_once(soak, baseline, back_in)
        if problems:
            failures.append(f"kill {i + 1}: " + "; ".join(problems))
            log(f"tui kill {i + 1}/{count}: DIFFERENT: {problems}")
        else:
            good += 1
            log(f"tui kill {i + 1}/{count}: identical (screen back in {back_in[-1]:.1f} s)")
    soak.say("tui-kill", f"{good}/{count} rediscovered identically"
             + (f" (screen back in {spread(back_in)})" if back_in else "")
             + ("" if not failures else f"; {failures[0]}"))
    soak.figure("TUI SIGKILLed, rediscovered identically", f"{good}/{count}", f"{count}/{count}",
                good == count and count > 0, failures=failures, back_in=back_in,
                baseline=baseline)
    if back_in:
        soak.figure("TUI restart to the same screen", spread(back_in), "", None)


def tui_kill_once(soak: Soak, baseline: dict[str, Any], back_in: list[float]) -> list[str]:
    problems: list[str] = []
    before = cli_picture(soak)
    pid, dead = tui_pane(soak)
    argv = " ".join(argv_of(pid))
    if dead or "vllmtui" not in argv:
        return [f"the pane runs {argv!r}, not the TUI"]
    try:
        children = [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        children = []
    os.kill(pid, signal.SIGKILL)  # like a dropped SSH connection or an OOM kill
    wait_for(lambda: tui_pane(soak)[1], 10, "the killed TUI's pane to die", 0.05)
    begin = time.monotonic()
    tui_launch(soak)
    try:
        tui_settled(soak, baseline, 60)
        back_in.append(time.monotonic() - begin)
    except SoakError as exc:
        problems.append(f"screen differs: {exc}")
    after = cli_picture(soak)
    problems += diff("servers", before["servers"], after["servers"])
    problems += diff("tunnels", before["tunnels"], after["tunnels"])
    left = [c for c in children if psutil.pid_exists(c)
            and psutil.Process(c).status() != psutil.STATUS_ZOMBIE]
    if left:
        problems.append(f"the killed TUI left processes {left}")
    return problems


def diff(what: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            out.append(f"{what} {name}: {before.get(name)} -> {after.get(name)}")
    return out


def tui_quit(soak: Soak) -> None:
    if "term" not in soak.sessions(soak.term_sock):
        return
    _, dead = tui_pane(soak)
    if not dead:
        soak.tmux("send-keys", "-t", "term", "q", sock=soak.term_sock)
        with contextlib.suppress(SoakError):
            wait_for(lambda: tui_pane(soak)[1], 15, "the TUI to quit", 0.1)
    soak.tmux("kill-server", sock=soak.term_sock)


# ---------------------------------------------------------------- step: secret scan


class Sampler(threading.Thread):
    """Every process of this user, looked at every `interval` s while the warm server, its
    tunnel and the TUI start (and the TUI is killed): short-lived ones too, such as the
    helpers `vllmtui start` runs. The key must be in no argv, and in no environment but
    vLLM's (the API server, what it starts, and the pane process before it execs vLLM) and
    vllmtui's own (its CLI and TUI: the user gave them the key)."""

    def __init__(self, soak: Soak, interval: float = 0.05):
        super().__init__(daemon=True, name="soak-sampler")
        self.soak = soak
        self.interval = interval
        self.needle = soak.secret.encode()
        self.halt = threading.Event()
        self.seen: set[tuple[int, bytes, bytes]] = set()  # pid, start time, argv
        self.vllm: set[int] = set()  # pids seen running vLLM
        self.argv_hits: list[str] = []
        self.env_hits: dict[int, str] = {}
        self.samples = 0

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            with contextlib.suppress(Exception):  # a process may vanish while read
                self.sample()

    def stop(self) -> Place:
        self.halt.set()
        self.join(5)
        hits = [*self.argv_hits,
                *(hit for pid, hit in sorted(self.env_hits.items()) if pid not in self.vllm)]
        return Place(f"argv and environ of every process seen while vllmtui started the server,"
                     f" tunnel and TUI ({self.samples} looks, every {self.interval * 1000:.0f} ms)",
                     len(self.seen), hits)

    def sample(self) -> None:
        self.samples += 1
        parents: dict[int, int] = {}
        fresh: list[tuple[int, list[str], bytes]] = []
        for pid in user_pids():
            stat = read_proc(pid, "stat")
            if not stat:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            parents[pid] = int(fields[1])
            cmdline = read_proc(pid, "cmdline")
            key = (pid, fields[19], cmdline)
            if key in self.seen:
                continue
            self.seen.add(key)
            argv = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
            if self.needle in cmdline:
                self.argv_hits.append(f"pid {pid}: {masked(cmdline, self.needle)}")
            if is_vllm_argv(argv, self.soak.runtime):
                self.vllm.add(pid)
            fresh.append((pid, argv, read_proc(pid, "environ")))
        for pid, argv, environ in fresh:
            if self.needle not in environ or self.exempt(pid, argv, parents):
                continue
            self.env_hits.setdefault(pid, f"pid {pid} ({' '.join(argv)[:80]}):"
                                          f" {masked(environ, self.needle, 20)}")

    def exempt(self, pid: int, argv: list[str], parents: dict[int, int]) -> bool:
        if is_vllmtui_argv(argv, self.soak.vllmtui):
            return True
        seen: set[int] = set()
        while pid > 1 and pid not in seen:  # vLLM's own children have its environment
            if pid in self.vllm:
                return True
            seen.add(pid)
            pid = parents.get(pid, 0)
        return False


def is_vllm_argv(argv: list[str], runtime: Path) -> bool:
    return bool(argv) and (argv[0].startswith("VLLM::") or (
        argv[0].startswith(str(runtime)) and API_SERVER in argv))


def is_vllmtui_argv(argv: list[str], vllmtui: list[str]) -> bool:
    """vllmtui's own CLI or TUI (a console script run by its python, or `python -m vllmtui`)."""
    script = vllmtui[-1]
    return script in argv[:2] or argv[1:3] == ["-m", "vllmtui"]


def secret_scan(soak: Soak) -> None:
    """Look for the API key everywhere it must not be; vLLM's own processes (which need it)
    and the TUI (the user gave it the key, as their shell would) are the only exceptions."""
    status = soak.server_status(PROFILE)
    if status.state != "ready" or status.pid is None:
        raise SoakError(f"the secret scan needs {PROFILE} ready (it is {status.state})")
    vllm = set(tree(status.pid))
    tui: set[int] = set()
    if "term" in soak.sessions(soak.term_sock):
        tui_pid, dead = tui_pane(soak)
        if not dead:
            tui = {tui_pid, *(c.pid for c in psutil.Process(tui_pid).children(recursive=True))}
    needle = soak.secret.encode()
    places = [scan_argv(needle), scan_environ(needle, vllm | tui)]
    for sock in (soak.sock, soak.term_sock):
        places += scan_tmux(soak, sock, needle)
    places += scan_files(soak, needle)
    places.append(scan_screens(soak, needle))
    if soak.sampler is not None:
        places.append(soak.sampler.stop())
        soak.sampler = None
    key_ok = api_key_reaches_vllm(soak, status.pid)
    found, planted = scanner_self_check(soak)
    soak.figure("secret scan self-check: planted canaries found", f"{found}/{planted} places",
                f"{planted}/{planted}", found == planted)
    hits = sum(len(p.hits) for p in places)
    for p in places:
        log(f"  secret scan: {p.name}: {p.items} checked, {len(p.hits)} hit(s)")
        for hit in p.hits[:10]:
            log(f"    HIT {hit}")
    hit_places = [p.name for p in places if p.hits]
    soak.say("secret-scan", f"{hits} hit(s) in {len(places)} places"
             + (f" (found in: {', '.join(hit_places)})" if hit_places else "")
             + f"; excluded: vLLM pids {sorted(vllm)}, TUI pids {sorted(tui)}; {key_ok[1]};"
             f" self-check: canaries found in {found}/{planted} planted places")
    soak.figure("secret hits (argv, tmux env/options, environ, files, logs, screens)",
                f"{hits} in {len(places)} places", "0", hits == 0,
                places=[{"place": p.name, "checked": p.items, "hits": p.hits} for p in places],
                excluded={"vllm": sorted(vllm), "tui": sorted(tui)})
    soak.figure("API key reaches vLLM (401 without, 200 with)", key_ok[1], "yes", key_ok[0])
    soak.details["secret_places"] = [{"place": p.name, "checked": p.items, "hits": p.hits}
                                     for p in places]


def masked(data: bytes, needle: bytes, width: int = 60) -> str:
    at = data.find(needle)
    piece = data[max(0, at - width):at + len(needle) + width]
    return piece.replace(needle, b"<SECRET>").decode(errors="replace").replace("\0", " ")


def scan_argv(needle: bytes) -> Place:
    place = Place(f"argv of every process of uid {os.getuid()} (/proc/*/cmdline)")
    for pid in user_pids():
        data = read_proc(pid, "cmdline")
        place.items += 1
        if needle in data:
            place.hits.append(f"pid {pid}: {masked(data, needle)}")
    return place


def scan_environ(needle: bytes, excluded: set[int]) -> Place:
    place = Place("environment of every process but vLLM's and the TUI's (/proc/*/environ)")
    for pid in user_pids():
        if pid in excluded:
            continue
        data = read_proc(pid, "environ")
        place.items += 1
        if needle in data:
            argv = " ".join(argv_of(pid))[:80]
            place.hits.append(f"pid {pid} ({argv}): {masked(data, needle, 20)}")
    return place


def scan_tmux(soak: Soak, sock: str, needle: bytes) -> list[Place]:
    """Global and per-session environments, global/server/window/pane/session options (the
    @vllmtui-* user options among them), pane start commands and titles, paste buffers."""
    which = "vllmtui's" if sock == soak.sock else "the terminal's"
    sessions = soak.sessions(sock)
    env = Place(f"tmux environments, {which} server (-g + {len(sessions)} sessions)")
    opts = Place(f"tmux options, {which} server (-g -s -gw + per session/window/pane, @vllmtui-*)")
    misc = Place(f"tmux pane commands, titles, buffers, {which} server")
    queries: list[tuple[Place, tuple[str, ...]]] = [
        (env, ("show-environment", "-g")), (opts, ("show-options", "-g")),
        (opts, ("show-options", "-s")), (opts, ("show-options", "-gw")),
        (misc, ("list-panes", "-a", "-F", "#{pane_start_command} #{pane_title}")),
        (misc, ("list-buffers", "-F", "#{buffer_sample}")),
    ]
    for s in sessions:
        queries += [(env, ("show-environment", "-t", s)), (opts, ("show-options", "-t", s)),
                    (opts, ("show-options", "-w", "-t", f"{s}:")),
                    (opts, ("show-options", "-p", "-t", f"{s}:"))]
    for place, args in queries:
        out = soak.tmux(*args, sock=sock).stdout
        for line in out.splitlines():
            place.items += 1
            if needle.decode() in line:
                where = args[-1] if "-t" in args else " ".join(args)
                place.hits.append(f"{' '.join(args[:2])} {where}: "
                                  f"{masked(line.encode(), needle, 30)}")
    return [env, opts, misc]


def scan_files(soak: Soak, needle: bytes, bases: Iterable[Path] | None = None) -> list[Place]:
    logs = Place("server logs (state/runs/*/*/server.log)")
    files = Place("every other file under the state, data, config and profiles dirs")
    for base in bases or (soak.state, soak.data, soak.config, soak.profiles):
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.is_fifo():
                continue
            place = logs if path.name == "server.log" else files
            place.items += 1
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if needle in data:
                    place.hits.append(f"{path.relative_to(soak.root)}: {masked(data, needle, 30)}")
    return [logs, files]


def scan_screens(soak: Soak, needle: bytes, socks: Iterable[str] | None = None) -> Place:
    place = Place("screen captures of every pane, whole history (servers, tunnel, TUI)")
    for sock in socks or (soak.sock, soak.term_sock):
        panes = soak.tmux("list-panes", "-a", "-F", "#{pane_id} #{session_name}",
                          sock=sock).stdout.splitlines()
        for line in panes:
            pane, _, session = line.partition(" ")
            text = soak.tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", pane,
                             sock=sock).stdout
            place.items += 1
            if needle.decode() in text:
                place.hits.append(f"pane {pane} of {session}: {masked(text.encode(), needle, 30)}")
    return place


def scanner_self_check(soak: Soak) -> tuple[int, int]:
    """The scan must find what it looks for: a canary (another random value) planted in a
    process's argv and environment, a tmux server's global environment (as vllmtui's own
    leaked it once), a session's environment, a user option, a file and a pane's screen;
    returns (places where the scan found it, places planted)."""
    canary = "canary-" + secrets.token_hex(16)
    sock = f"vllmtui-soak-canary-{soak.id}"
    env = {**soak.plain_env(), "SOAK_CANARY": canary}
    folder = soak.root / "canary"
    folder.mkdir(exist_ok=True)
    (folder / "launch.json").write_text(json.dumps({"oops": canary}))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", canary],
                            env=env, stdin=subprocess.DEVNULL)
    try:
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "vllmtui-canary",
                        "-e", f"SOAK_CANARY_S={canary}", "echo $SOAK_CANARY; exec sleep 600"],
                       env=env, check=True, capture_output=True)
        subprocess.run(["tmux", "-L", sock, "set-option", "-t", "vllmtui-canary",
                        "@vllmtui-canary", canary], env=env, check=True, capture_output=True)
        wait_for(lambda: canary in soak.tmux("capture-pane", "-p", "-t", "vllmtui-canary",
                                               sock=sock).stdout, 10, "the canary pane", 0.05)
        needle = canary.encode()
        places = [scan_argv(needle), scan_environ(needle, set()), *scan_tmux(soak, sock, needle),
                  *scan_files(soak, needle, [folder]), scan_screens(soak, needle, [sock])]
        found = {p.name for p in places if p.hits}
        planted = {places[0].name, places[1].name, places[2].name, places[3].name,
                   places[6].name, places[7].name}
        return len(found & planted), len(planted)
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def api_key_reaches_vllm(soak: Soak, pid: int) -> tuple[bool, str]:
    """vLLM must get the key (its environment) and enforce it."""
    has = f"VLLM_API_KEY={soak.secret}".encode() in read_proc(pid, "environ")
    url = f"http://127.0.0.1:{soak.ports['server']}/v1/models"
    try:
        without = httpx.get(url, timeout=5).status_code
        with_key = httpx.get(url, headers={"Authorization": f"Bearer {soak.secret}"},
                             timeout=5).status_code
    except httpx.HTTPError as exc:
        return False, f"API key check failed: {exc}"
    ok = has and without == 401 and with_key == 200
    return ok, (f"vLLM has VLLM_API_KEY: {'yes' if has else 'NO'}, /v1/models {without} without"
                f" the key, {with_key} with it")


# ---------------------------------------------------------------- step: sshd killed


def tunnel_drops(soak: Soak, count: int, outage: float) -> None:
    """Kill sshd under the running tunnel; time until vllmtui says failed, then bring sshd
    back on the same port and time until the tunnel is up again by itself."""
    assert soak.sshd is not None
    failed_after: list[float] = []
    back_after: list[float] = []
    problems: list[str] = []
    for i in range(count):
        wait_for(lambda: soak.tunnel_status().state == "up", 60, "the tunnel up", 0.2)
        begin = time.monotonic()
        soak.sshd.stop()
        first: list[str] = []
        failed = functools.partial(_tunnel_failed, soak, begin, first)
        try:
            wait_for(failed, 60, "the tunnel failed", 0.1)
            failed_after.append(time.monotonic() - begin)
        except SoakError as exc:
            problems.append(f"drop {i + 1}: {exc}")
        cli = soak.cli_tunnels().get(PROFILE, {})
        if cli.get("state") != "failed":
            problems.append(f"drop {i + 1}: `tunnel status` says {cli.get('state')} while sshd is down")
        time.sleep(max(0.0, outage - (time.monotonic() - begin)))  # the outage itself
        back = time.monotonic()
        soak.sshd.start(soak.plain_env())
        try:
            wait_for(lambda: soak.tunnel_status().state == "up", 120, "the tunnel back up", 0.1)
            back_after.append(time.monotonic() - back)
        except SoakError as exc:
            problems.append(f"drop {i + 1}: {exc}")
        cli = soak.cli_tunnels().get(PROFILE, {})
        if cli.get("state") != "up":
            problems.append(f"drop {i + 1}: `tunnel status` says {cli.get('state')} after sshd returned")
        log(f"sshd drop {i + 1}/{count}: first {first[0] if first else '-'}; failed after"
            f" {fmt_s(failed_after[-1] if len(failed_after) > i else None)}, up again"
            f" {fmt_s(back_after[-1] if len(back_after) > i else None)} after sshd returned")
    worst_fail = max(failed_after) if failed_after else None
    worst_back = max(back_after) if back_after else None
    soak.say("sshd-kill", f"{len(failed_after)}/{count} failed within {fmt_s(worst_fail)} (max),"
             f" {len(back_after)}/{count} back by itself within {fmt_s(worst_back)} of sshd"
             f" returning (outage {outage:g} s)" + (f"; {problems[0]}" if problems else ""))
    soak.figure("sshd killed -> tunnel `failed`", spread(failed_after), f"<= {GOAL_FAILED_S:g} s",
                worst_fail is not None and worst_fail <= GOAL_FAILED_S and len(failed_after) == count
                and not problems, samples=failed_after, problems=problems)
    soak.figure("sshd back -> tunnel `up` by itself", spread(back_after), f"<= {GOAL_BACK_S:g} s",
                worst_back is not None and worst_back <= GOAL_BACK_S and len(back_after) == count,
                samples=back_after, outage=outage)


def _tunnel_failed(soak: Soak, begin: float, first: list[str]) -> bool:
    """Whether the tunnel is `failed`; notes the first state other than `up` in `first`."""
    status = soak.tunnel_status()
    if status.state != "up" and not first:
        first.append(f"{status.state} ({status.detail}) after {time.monotonic() - begin:.2f} s")
    return status.state == "failed"


# ---------------------------------------------------------------- step: crash latency


@dataclass
class CrashTiming:
    fatal: float | None = None  # the fatal line is in server.log
    died: float | None = None  # the pane's process ended
    crashed: float | None = None  # status said crashed (the end of that reading)
    first_failure: str | None = None  # a state that named the failure before `crashed`


def crash_latency(soak: Soak, count: int) -> None:
    """Start a server vLLM refuses; from the fatal line in server.log and from the pane's
    death to `crashed` in `vllmtui status`'s reading (polled every 50 ms, in-process)."""
    from_death: list[float] = []
    from_fatal: list[float] = []
    problems: list[str] = []
    timings: list[CrashTiming] = []
    for i in range(count):
        timing = crash_once(soak)
        timings.append(timing)
        if timing.crashed is None:
            problems.append(f"crash {i + 1}: never `crashed`")
        else:
            if timing.died is not None:
                from_death.append(max(0.0, timing.crashed - timing.died))
            if timing.fatal is not None:
                from_fatal.append(max(0.0, timing.crashed - timing.fatal))
        cli = soak.cli_servers().get(CRASHER, {})
        failure = (cli.get("failure") or {}).get("key")
        if cli.get("state") != "crashed" or failure is None:
            problems.append(f"crash {i + 1}: `status --json` says {cli.get('state')}, failure {failure}")
        stop = soak.cli("stop", CRASHER)
        clean = soak.check_clean(CRASHER)
        if stop.rc != 0 or not clean.ok:
            problems.append(f"crash {i + 1}: after stop: {stop.text[-200:]} {clean.problems()}")
        log(f"crash {i + 1}/{count}: fatal line -> crashed {fmt_s(gap(timing.fatal, timing.crashed))},"
            f" pane died -> crashed {fmt_s(gap(timing.died, timing.crashed))},"
            f" fatal line -> pane died {fmt_s(gap(timing.fatal, timing.died))}"
            + (f"; before that: {timing.first_failure}" if timing.first_failure else ""))
    early = sum(1 for t in timings if t.crashed is not None and t.died is not None
                and t.crashed <= t.died)
    soak.say("crash-latency", f"pane died -> crashed {spread(from_death)}; fatal line -> crashed"
             f" {spread(from_fatal)}; `crashed` before the pane died in {early}/{count}"
             + (f"; {problems[0]}" if problems else ""))
    soak.figure("crash: pane died -> `crashed`", spread(from_death), f"<= {GOAL_CRASH_S:g} s",
                bool(from_death) and max(from_death) <= GOAL_CRASH_S and not problems,
                samples=from_death, problems=problems)
    soak.figure("crash: fatal line in server.log -> `crashed`", spread(from_fatal),
                f"<= {GOAL_CRASH_S:g} s", bool(from_fatal) and max(from_fatal) <= GOAL_CRASH_S,
                samples=from_fatal)


def gap(since: float | None, until: float | None) -> float | None:
    return None if since is None or until is None else until - since


def crash_once(soak: Soak) -> CrashTiming:
    soak.start(CRASHER)
    status = soak.wait_log(CRASHER)
    assert status.run_dir is not None and status.pid is not None
    server_log = status.run_dir / "server.log"
    ended = pidfd_wait(status.pid)
    timing = CrashTiming()
    deadline = time.monotonic() + 180
    offset = 0
    tail = b""
    # until `crashed` is read and the pane has died (or 30 s more: vLLM may linger)
    while time.monotonic() < deadline and not (
            timing.crashed is not None
            and (timing.died is not None or time.monotonic() > timing.crashed + 30)):
        if timing.died is None and ended(0.05):
            timing.died = time.monotonic()
        if timing.fatal is None:
            with server_log.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            offset += len(chunk)
            tail = (tail + chunk)[-4096:]
            if CRASH_MARK.encode() in tail:
                timing.fatal = time.monotonic()
        if timing.crashed is not None:
            continue
        reading = soak.server_status(CRASHER)
        if reading.state == "crashed":
            timing.crashed = time.monotonic()
        elif reading.failure is not None and timing.first_failure is None and timing.fatal:
            timing.first_failure = (f"`{reading.state}` naming the failure"
                                    f" {time.monotonic() - timing.fatal:.2f} s after the fatal line")
    return timing


# ---------------------------------------------------------------- step: races


def races(soak: Soak, count: int) -> None:
    """Two `vllmtui start` of one profile at once: exactly one server."""
    good = 0
    losers: dict[str, int] = {}
    failures: list[str] = []
    for i in range(count):
        problems, loser_said = race_once(soak, soak.rng.uniform(0.0, 0.3))
        key = ("already running" if "already running" in loser_said else
               "started by someone else" if "someone else" in loser_said else loser_said[:60])
        losers[key] = losers.get(key, 0) + 1
        if problems:
            failures.append(f"race {i + 1}: " + "; ".join(problems))
            log(f"race {i + 1}/{count}: FAIL: {problems}")
        else:
            good += 1
            log(f"race {i + 1}/{count}: one server; the other said: {loser_said[:120]}")
    soak.say("races", f"{good}/{count} one server (losers said: "
             + ", ".join(f"{k!r} x{v}" for k, v in losers.items()) + ")"
             + (f"; {failures[0]}" if failures else ""))
    soak.figure("two starts racing: one server, clear error, no leftovers", f"{good}/{count}",
                f"{count}/{count}", good == count and count > 0, failures=failures, losers=losers)


def race_once(soak: Soak, stagger: float) -> tuple[list[str], str]:
    base = soak.state / "runs" / PROFILE
    before = {p for p in base.iterdir()} if base.is_dir() else set()
    first = soak.popen_cli("start", PROFILE)
    time.sleep(stagger)
    second = soak.popen_cli("start", PROFILE)
    outs = [(p, *p.communicate(timeout=120)) for p in (first, second)]
    problems: list[str] = []
    winners = [(p, out, err) for p, out, err in outs if p.returncode == 0]
    losers = [(p, out, err) for p, out, err in outs if p.returncode != 0]
    for _p, out, _err in winners:
        run_dir = run_dir_of(out)
        if run_dir is not None:
            soak.launched[PROFILE].add(run_dir)
    said = (losers[0][1] + losers[0][2]).strip() if losers else ""
    if len(winners) != 1:
        problems.append(f"{len(winners)} starts succeeded: "
                        + " | ".join((o + e).strip()[-200:] for _p, o, e in outs))
    elif not (PROFILE in said and ("already running" in said or "someone else" in said)):
        problems.append(f"the loser's message is not clear: {said[-300:]!r}")
    if "Traceback" in said:
        problems.append("the loser printed a traceback")
    sessions = soak.sessions()
    if sessions != [f"vllmtui-{PROFILE}"]:
        problems.append(f"tmux sessions: {sessions}")
    after = {p for p in base.iterdir()} if base.is_dir() else set()
    if len(after - before) != 1:
        problems.append(f"{len(after - before)} new run dirs: {sorted(p.name for p in after - before)}")
    if winners:
        with contextlib.suppress(SoakError):
            soak.wait_log(PROFILE, 120)
        stop = stop_force(soak)
        if stop.rc != 0:
            problems.append(f"stop: {stop.text[-300:]}")
    problems += soak.check_clean(PROFILE).problems()
    return problems, said


def stop_force(soak: Soak) -> Cli:
    """`vllmtui stop --force`, checking that it leaves other people's orphaned vLLM processes
    alone (it reaps only what its own server left): if it killed one, the stop counts as
    failed (rc 1) and the JSON says whose (`foreign_killed`)."""
    foreign = soak.foreign_orphans()
    result = soak.cli("stop", "--force", PROFILE)
    killed = [pid for pid in foreign if pid not in procs.alive([pid])]
    if killed:
        soak.details.setdefault("foreign_killed", []).append(killed)
        return replace(
            result, rc=1, err=result.err + f"\nstop --force killed foreign orphans {killed}"
        )
    if foreign:
        soak.details.setdefault("foreign_spared", []).append(foreign)
    return result


# ---------------------------------------------------------------- step: cycles


@dataclass
class Cycle:
    kind: str
    moment: str
    at: str = ""  # the state/phase when the stop was issued
    reached_ready: bool = False
    stop: str = ""
    after_kill: str = ""  # sigkill: what status said before the user's `vllmtui stop`
    problems: list[str] = field(default_factory=list)


def cycle_plan(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Every stop kind at every moment in each run of 9 cycles, and every moment in each 3,
    in a shuffled order: a third of the cycles stop a ready server."""
    plan = [(KINDS[i % 3], MOMENTS[(i + i // 3) % 3]) for i in range(count)]
    rng.shuffle(plan)
    return plan


def cycles(soak: Soak, count: int) -> None:
    done: list[Cycle] = []
    for i, (kind, moment) in enumerate(cycle_plan(count, soak.rng)):
        cycle = Cycle(kind, moment)
        try:
            run_cycle(soak, cycle)
        except SoakError as exc:
            cycle.problems.append(str(exc))
            with contextlib.suppress(SoakError):  # leave a clean slate for the next cycle
                stop_force(soak)
        done.append(cycle)
        log(f"cycle {i + 1}/{count}: {kind} at {moment} (was {cycle.at}) -> {cycle.stop}"
            + (f" [{cycle.after_kill}]" if cycle.after_kill else "")
            + (f": FAIL {cycle.problems}" if cycle.problems else ": clean"))
    report_cycles(soak, done)


def report_cycles(soak: Soak, done: list[Cycle]) -> None:
    count = len(done)
    clean = sum(1 for c in done if not c.problems)
    ready = sum(1 for c in done if c.reached_ready)
    kinds = {k: sum(1 for c in done if c.kind == k) for k in KINDS}
    moments = {m: sum(1 for c in done if c.moment == m) for m in MOMENTS}
    left = {
        "vLLM processes": sum(1 for c in done for p in c.problems if p.startswith("vLLM process")),
        "stray sessions": sum(1 for c in done for p in c.problems if p.startswith("stray tmux")),
        "phantom runs": sum(1 for c in done for p in c.problems if p.startswith("phantom run")),
    }
    soak.say("cycles", f"{clean}/{count} clean: " + ", ".join(f"{v} {k}" for k, v in left.items())
             + f"; stopped {', '.join(f'{k} {v}' for k, v in kinds.items())};"
             f" at {', '.join(f'{k} {v}' for k, v in moments.items())}; {ready} reached ready"
             + ("" if clean == count else
                f"; first failure: {next(c.problems for c in done if c.problems)}"))
    soak.figure("start/stop cycles clean (0 vLLM procs, 0 stray sessions, 0 phantom runs)",
                f"{clean}/{count}", f"{count}/{count}", clean == count and count > 0,
                kinds=kinds, moments=moments, left=left,
                cycles=[c.__dict__ for c in done])
    soak.figure("cycles that reached `ready` before the stop", f"{ready}/{count}",
                f">= {count // 3}/{count}", ready >= count // 3)


def run_cycle(soak: Soak, cycle: Cycle) -> None:
    soak.start(PROFILE)
    status = reach(soak, cycle.moment)
    cycle.at = (status.state if status.state != "starting" else
                f"starting: {status.phase_label or 'importing'}")
    cycle.reached_ready = status.state == "ready"
    if cycle.kind == "graceful":
        result = soak.cli("stop", PROFILE)
    elif cycle.kind == "force":
        result = stop_force(soak)
    else:
        result = kill_api_server(soak, cycle)
    cycle.stop = (result.out.strip().splitlines() or [result.text])[-1][:120]
    if result.rc != 0:
        cycle.problems.append(f"stop exited {result.rc}: {result.text[-300:]}")
    after = soak.cli_servers().get(PROFILE, {})
    if after.get("state") != "stopped":
        cycle.problems.append(f"status says {after.get('state')} after the stop")
    cycle.problems += soak.check_clean(PROFILE).problems()


def reach(soak: Soak, moment: str) -> ServerStatus:
    """Wait for the moment to stop at: a random point of the import, the loading phases
    (weights, profiling, API server), or ready."""
    status = soak.wait_log(PROFILE)
    if moment == "importing":
        until = time.monotonic() + soak.rng.uniform(0.0, 20.0)
        while time.monotonic() < until:
            status = soak.server_status()
            if status.state != "starting" or status.phase not in (None, "importing"):
                break
            time.sleep(0.1)
        return status

    def there() -> ServerStatus | None:
        s = soak.server_status()
        if s.state in ("crashed", "exited", "stopped"):
            raise SoakError(f"{PROFILE} ended while waiting for {moment}: {s.state} {s.detail}")
        if moment == "ready":
            return s if s.state == "ready" else None
        return s if s.state == "ready" or (s.state == "starting" and s.phase not in
                                            (None, "importing")) else None

    return wait_for(there, 300, f"{PROFILE} {moment}", 0.05)


def kill_api_server(soak: Soak, cycle: Cycle) -> Cli:
    """SIGKILL the API server (the python running vLLM's api_server in the pane's tree), then
    do what a user does: look at the status, and `vllmtui stop` to clear it."""
    status = soak.server_status()
    if status.pid is None:
        raise SoakError("no pane pid to find the API server in")
    candidates = [pid for pid in tree(status.pid) if API_SERVER in " ".join(argv_of(pid))
                  and not argv_of(pid)[0].startswith("VLLM::")]
    if not candidates:
        raise SoakError(f"no {API_SERVER} process in the pane's tree {tree(status.pid)}")
    os.kill(min(candidates), signal.SIGKILL)
    seen = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = soak.cli_servers().get(PROFILE, {}).get("state", "?")
        if seen in ("crashed", "exited"):
            break
    cycle.after_kill = f"status: {seen}"
    if seen not in ("crashed", "exited"):
        cycle.problems.append(f"after SIGKILL of the API server status says {seen}")
    return soak.cli("stop", PROFILE)


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": round(
        psutil.virtual_memory().total / 2**30, 1), "load_at_start": os.getloadavg(),
        "python": platform.python_version(), "kernel": platform.release()}


def vllm_version(runtime: Path) -> str:
    code = ("import importlib.metadata as m\nfor n in ('vllm', 'vllm-cpu'):\n"
            "    try:\n        print(m.version(n)); break\n    except m.PackageNotFoundError: pass\n")
    out = subprocess.run([str(runtime / "bin" / "python"), "-c", code],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "?"


def table(figures: list[Figure]) -> str:
    width = max([len(f.name) for f in figures] + [6])
    vwidth = max([len(f.value) for f in figures] + [5])
    gwidth = max([len(f.goal) for f in figures] + [4])
    lines = [f"{'figure':<{width}}  {'value':<{vwidth}}  {'goal':<{gwidth}}  result"]
    lines += [f"{f.name:<{width}}  {f.value:<{vwidth}}  {f.goal:<{gwidth}}  {f.result}"
              for f in figures]
    return "\n".join(lines)


def markdown(figures: list[Figure], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        f"Run {meta['date']}: `{meta['command']}` on {m['cores']} cores ({m['cpu']},"
        f" {m['memory_gib']} GiB, load {m['load_at_start'][0]:.2f} at start), vLLM"
        f" {meta['vllm']}, {meta['seconds'] / 60:.0f} min.",
        "",
        "| figure | value | goal | result |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {f.name} | {f.value} | {f.goal or '-'} | {f.result} |" for f in figures]
    return "\n".join(lines)


def counts(opts: argparse.Namespace) -> dict[str, int]:
    quick = {"tui_kills": 2, "cycles": 3, "races": 2, "crashes": 2, "tunnel_drops": 1}
    full = {"tui_kills": 20, "cycles": 50, "races": 10, "crashes": 5, "tunnel_drops": 3}
    base = quick if opts.quick else full
    return {k: getattr(opts, k) if getattr(opts, k) is not None else v for k, v in base.items()}


def run_steps(soak: Soak, steps: set[str], n: dict[str, int]) -> None:
    if steps & {"tui", "secrets", "tunnel"}:
        if "secrets" in steps:
            soak.sampler = Sampler(soak)
            soak.sampler.start()
        warm_up(soak)
        try:
            if "tui" in steps:
                tui_kills(soak, n["tui_kills"])
            elif "secrets" in steps:
                tui_launch(soak)  # the scan reads the TUI's screen and environment too
                soak.tui_baseline = tui_settled(soak, None, 120)
            if "secrets" in steps:
                secret_scan(soak)
            if "tunnel" in steps:
                tunnel_drops(soak, n["tunnel_drops"], soak.opts.outage)
        finally:
            tui_quit(soak)
        stop_warm(soak)
    if "crash" in steps:
        crash_latency(soak, n["crashes"])
    if "races" in steps:
        races(soak, n["races"])
    if "cycles" in steps:
        cycles(soak, n["cycles"])


def final_checks(soak: Soak) -> None:
    """At the end, before the cleanup: nothing of the soak but sshd may still run."""
    sshd = set()
    if soak.sshd is not None and soak.sshd.proc is not None:
        sshd = {soak.sshd.proc.pid}
    left = [describe(pid) for pid in soak.mine() if pid not in sshd]
    sessions = soak.sessions()
    ok = not left and not sessions
    soak.say("leftovers", "none: 0 processes, 0 tmux sessions" if ok else
             f"FAIL: processes {left}, sessions {sessions}")
    soak.figure("left at the end (processes, tmux sessions)", f"{len(left)}, {len(sessions)}",
                "0, 0", ok, processes=left, sessions=sessions)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small counts: a smoke run of a few minutes")
    p.add_argument("--tui-kills", type=int, help="TUI SIGKILLs (20; quick 2)")
    p.add_argument("--cycles", type=int, help="start/stop cycles (50; quick 3)")
    p.add_argument("--races", type=int, help="racing starts (10; quick 2)")
    p.add_argument("--crashes", type=int, help="crash-latency samples (5; quick 2)")
    p.add_argument("--tunnel-drops", type=int, help="sshd kills under the tunnel (3; quick 1)")
    p.add_argument("--outage", type=float, default=3.0, help="seconds sshd stays down (3)")
    p.add_argument("--only", help=f"comma-separated steps: {','.join(STEPS)} (all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cycle plan and delays")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the figures and details here")
    p.add_argument("--markdown", action="store_true",
                   help="also print the figures as a markdown table (docs/reliability.md)")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    p.add_argument("-v", "--verbose", action="store_true", help="log every vllmtui command")
    return p.parse_args(argv)


def _interrupt(signum: int, _frame: types.FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    steps = set(STEPS) if not opts.only else {s.strip() for s in opts.only.split(",")}
    if steps - set(STEPS):
        print(f"unknown step(s): {sorted(steps - set(STEPS))}; steps: {', '.join(STEPS)}",
              file=sys.stderr)
        return 2
    n = counts(opts)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    begin = time.monotonic()
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["scripts/soak.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(), "counts": n, "steps": sorted(steps),
    }
    try:
        soak = Soak(opts)
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    meta["vllm"] = vllm_version(soak.runtime)
    error: str | None = None
    killed: list[str] = []
    try:
        soak.setup()
        run_steps(soak, steps, n)
        final_checks(soak)
    except (SoakError, KeyboardInterrupt, Interrupted) as exc:
        error = (f"interrupted ({exc or 'SIGINT'})" if isinstance(exc, (KeyboardInterrupt, Interrupted))
                 else str(exc))
        print(f"soak stopped: {error}", file=sys.stderr)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # the cleanup must finish
        killed = soak.cleanup()
        if killed:
            log(f"cleanup killed {len(killed)} process(es): {killed[:5]}")
    if error:
        soak.figure("soak completed", error[:80], "no error", False)
    meta["seconds"] = time.monotonic() - begin
    for name, times in sorted(soak.cli_times.items()):
        if name in ("status", "tunnel status") and times:
            soak.figure(f"`vllmtui {name} --json` call (the CLI's own cost)", spread(times), "", None)
    print()
    print(table(soak.figures))
    if opts.markdown:
        print()
        print(markdown(soak.figures, meta))
    if opts.json:
        opts.json.write_text(json.dumps({
            **meta, "lines": soak.lines, "error": error, "cleanup_killed": killed,
            "figures": [{"name": f.name, "value": f.value, "goal": f.goal, "result": f.result,
                         **f.data} for f in soak.figures],
            "details": soak.details,
        }, indent=2, default=str))
    failed = any(f.ok is False for f in soak.figures)
    if opts.keep or failed:
        print(f"\nkept {soak.root} (logs, run dirs, tunnel logs)", file=sys.stderr)
    else:
        shutil.rmtree(soak.root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
