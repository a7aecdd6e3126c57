"""`Hosts`: every host of hosts.yaml (and `local`), read in parallel and commanded over ssh.

The API the CLI and the TUI share (docs/hosts.md):

- `Hosts(settings)`: loads hosts.yaml (UsageError naming file, line, field and fix).
- `names()`, `config(name)`.
- `read(timeout=None, names=None, gpus=True, wait=None) -> dict[str, HostReading]`: every
  host at once, each in its own thread with its own deadline (`timeout`); the call returns
  within `wait` s (a screen refreshing every second passes ~0.9); a host that hangs costs
  its own reading (its last one, then `unreachable`), never the others', and is asked again
  only once its last ask ended.
- `run(host, argv, input=None, timeout=None)`: one `vllmtui ARGV` there (start, stop, ...).
- `command_argv(host, argv, tty=False)`, `attach_argv(host, name)`: ssh command lines to
  run (or exec) in a terminal.
- `forward(host, port, remote_host="127.0.0.1") -> local port`: a local forward over the
  host's control master (`ssh -O forward -L`), so probes and benchmarks reach its servers;
  `base_url(host, status)`.
- `ask(host, message, channel=...)`: one request on a session of its own (a log follower's).
- `close()`: ends the sessions and the control masters this object opened.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from vllmtui import __version__
from vllmtui.core.errors import VllmtuiError
from vllmtui.core.net import client_host
from vllmtui.core.settings import Settings
from vllmtui.hosts.config import HostConfig, load_hosts, pick
from vllmtui.hosts.serve import answer, report
from vllmtui.hosts.ssh import Link, LinkError, control, control_dir, remote_command, ssh_argv
from vllmtui.servers.fleet import Fleet
from vllmtui.servers.status import ServerStatus


@dataclass(frozen=True)
class ProfileSource:
    """A profile as a host sees it: where its file is, and whether another machine sent it."""

    name: str
    path: str
    sent: bool = False


@dataclass(frozen=True)
class HostReading:
    """One host at one moment. `reachable` False: no answer (`problem` says why); a host
    that answered may still have a `problem` (version skew, a failed reading)."""

    name: str
    reachable: bool
    problem: str | None = None
    version: str | None = None
    statuses: tuple[ServerStatus, ...] = ()
    gpus: dict[str, Any] | None = None
    """The host's `GpuSnapshot.to_json()` (`summary`, `gpus`, `unowned`, ...), if asked for."""
    profiles: tuple[ProfileSource, ...] = ()
    invalid_profiles: tuple[str, ...] = ()
    hostname: str | None = None
    seconds: float = 0.0
    """How long the reading took."""
    taken_at: float = field(default_factory=time.time)

    @property
    def skew(self) -> str | None:
        """The version mismatch and its fix, or None."""
        if self.version is None or self.version == __version__:
            return None
        return (f"vllmtui {self.version} there, {__version__} here:"
                f" `vllmtui hosts install {self.name}` installs {__version__} there")

    @property
    def state(self) -> str:
        """`ok`, `skew` (answers, other version) or `unreachable`."""
        if not self.reachable:
            return "unreachable"
        return "skew" if self.skew else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "state": self.state, "reachable": self.reachable,
            "problem": self.problem, "version": self.version, "hostname": self.hostname,
            "skew": self.skew, "seconds": round(self.seconds, 3), "taken_at": self.taken_at,
            "servers": [s.to_json() for s in self.statuses], "gpus": self.gpus,
            "profiles": [{"name": p.name, "path": p.path, "sent": p.sent} for p in self.profiles],
            "invalid_profiles": list(self.invalid_profiles),
        }


def reading_from(name: str, answer: dict[str, Any], seconds: float) -> HostReading:
    """A host's reading from its `report` answer (another version's included: what it cannot
    parse becomes the problem)."""
    version = answer.get("vllmtui")
    version = str(version) if version is not None else None
    base = HostReading(name, True, version=version, seconds=seconds, hostname=answer.get("hostname"))
    problem = None if answer.get("ok") else str(answer.get("error") or "the reading failed")
    try:
        statuses = tuple(ServerStatus.from_json(s) for s in answer.get("servers") or [])
        profiles = tuple(ProfileSource(str(p["name"]), str(p["path"]), bool(p.get("sent")))
                         for p in answer.get("profiles") or [])
        invalid = tuple(str(p["name"]) for p in answer.get("invalid_profiles") or [])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        statuses, profiles, invalid = (), (), ()
        problem = problem or f"its answer is not understood here ({type(exc).__name__}: {exc})"
    gpus = answer.get("gpus") if isinstance(answer.get("gpus"), dict) else None
    problem = "; ".join(p for p in (base.skew, problem) if p) or None
    return HostReading(name, True, problem, version, statuses, gpus, profiles, invalid,
                       base.hostname, seconds)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.3):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hosts:
    """The hosts of one vllmtui (see the module's docstring). Thread-safe."""

    def __init__(self, settings: Settings, hosts: dict[str, HostConfig] | None = None):
        self.settings = settings
        self.hosts = hosts if hosts is not None else load_hosts(settings)
        self.directory = control_dir(settings)
        self._links: dict[str, Link] = {}
        self._side: dict[tuple[str, str], tuple[Link, threading.Lock]] = {}
        self._asks: dict[str, Future[HostReading]] = {}
        self._forwards: dict[tuple[str, str, int], int] = {}
        self._asked_at: dict[str, float] = {}
        self._last: dict[str, HostReading] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(2, len(self.hosts)),
                                        thread_name_prefix="vllmtui-host")
        self._fleet: Fleet | None = None

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def names(self) -> list[str]:
        """`local` first, then hosts.yaml's order."""
        return list(self.hosts)

    def config(self, name: str, where: str = "--host") -> HostConfig:
        return pick(self.hosts, name, where)

    # ------------------------------------------------------------ reading

    def read(self, timeout: float | None = None, names: list[str] | None = None,
             gpus: bool = True, wait: float | None = None) -> dict[str, HostReading]:
        """Every host (or `names`) now, in parallel. A host has `timeout` s
        (`settings.host_timeout`) to answer before it is `unreachable`; this call returns after
        at most `wait` s (default: the timeout): a host still answering then shows its last
        reading (or, with none, `unreachable`) and is not asked again until it answers."""
        limit = timeout or self.settings.host_timeout
        patience = limit + 0.25 if wait is None else wait
        now = time.monotonic()
        asks: dict[str, Future[HostReading]] = {}
        with self._lock:
            for name in names or self.names():
                self.config(name)
                ask = self._asks.get(name)
                if ask is None or ask.done():  # one ask per host at a time: a hung one never piles up
                    ask = self._asks[name] = self._pool.submit(self._read_one, name, limit, gpus)
                    self._asked_at[name] = now
                asks[name] = ask
        wait_futures(list(asks.values()), timeout=patience)
        out: dict[str, HostReading] = {}
        for name, ask in asks.items():
            waited = time.monotonic() - self._asked_at.get(name, now)
            last = self._last.get(name)
            if ask.done():
                out[name] = self._last[name] = ask.result()
            elif last is not None and waited < limit:
                out[name] = last  # still answering, within its time: the last reading stands
            else:
                out[name] = HostReading(name, False, f"no answer for {waited:.1f} s (timeout {limit:g} s)",
                                        seconds=waited)
        return out

    def _read_one(self, name: str, timeout: float, gpus: bool) -> HostReading:
        begin = time.monotonic()
        host = self.hosts[name]
        try:
            if host.is_local:
                self._fleet = self._fleet or Fleet(self.settings)
                answer = report(self.settings, self._fleet, gpus)
            else:
                link = self._links.setdefault(name, Link(host, self.directory))
                answer = link.request({"op": "report", "gpus": gpus}, timeout)
        except LinkError as exc:
            return HostReading(name, False, str(exc), seconds=time.monotonic() - begin)
        except Exception as exc:  # noqa: BLE001 - a poll never raises: the reading says what failed
            return HostReading(name, False, f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - begin)
        return reading_from(name, answer, time.monotonic() - begin)

    def ask(self, host: str, message: dict[str, Any], timeout: float | None = None,
            channel: str = "side") -> dict[str, Any]:
        """One request to the host's `hosts serve` on a session of its own (`channel`: a log
        follower does not queue behind the polls); the answer, or VllmtuiError saying why
        there is none. `local` answers in this process."""
        config = self.config(host)
        if config.is_local:
            return answer(self.settings, self._fleet or Fleet(self.settings), json.dumps(message))
        with self._lock:
            fresh = (Link(config, self.directory), threading.Lock())
            link, lock = self._side.setdefault((host, channel), fresh)
        with lock:
            try:
                return link.request(message, timeout or self.settings.host_timeout)
            except LinkError as exc:
                raise VllmtuiError(f"{host}: {exc}") from None

    # ------------------------------------------------------------ commands

    def command_argv(self, host: str, argv: list[str], tty: bool = False) -> list[str]:
        """The command line that runs `vllmtui ARGV` on `host` (for `local`, this machine's)."""
        config = self.config(host)
        if config.is_local:
            local = [sys.executable, "-m", "vllmtui"]
            if self.settings.tmux_socket:
                local += ["--tmux-socket", self.settings.tmux_socket]
            return [*local, "--state-dir", str(self.settings.state_dir), *argv]
        return [*ssh_argv(config, self.directory, tty=tty), remote_command(config, argv)]

    def run(self, host: str, argv: list[str], input: str | None = None,
            timeout: float | None = 120.0) -> subprocess.CompletedProcess[str]:
        """Run `vllmtui ARGV` on `host` and wait; its exit status and output (255: ssh failed)."""
        cmd = self.command_argv(host, argv)
        try:
            return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL if input is None else None)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 255, "", f"{host}: no answer within {timeout:g} s")

    def edit_argv(self, host: str, path: str) -> list[str]:
        """The command that opens `path` (a profile there) in the host's own editor, in this
        terminal (`$VISUAL`, `$EDITOR`, else nano, vim or vi, as the host's shell finds them)."""
        config = self.config(host)
        if config.is_local:
            raise VllmtuiError("edit_argv is for another host")
        editor = ('${VISUAL:-${EDITOR:-$(command -v nano || command -v vim || echo vi)}}'
                  f" {shlex.quote(path)}")
        return [*ssh_argv(config, self.directory, tty=True), editor]

    def attach_argv(self, host: str, name: str) -> list[str]:
        """The command that attaches this terminal to server `name`'s console on `host`
        (`ssh -t HOST vllmtui attach NAME`; detaching ends it)."""
        return self.command_argv(host, ["attach", name], tty=True)

    def forward(self, host: str, port: int, remote_host: str = "127.0.0.1") -> int:
        """A local port that reaches `remote_host:port` as `host` sees it (for `local`: the
        port itself), forwarded over the host's control master; kept while it works."""
        config = self.config(host)
        if config.is_local:
            return port
        key = (host, remote_host, port)
        with self._lock:
            known = self._forwards.get(key)
        if known and _accepts(known):
            return known
        if control(config, self.directory, "check").returncode != 0:
            reading = self.read(names=[host], gpus=False)[host]  # opens the connection
            if not reading.reachable:
                raise VllmtuiError(f"cannot reach {host}: {reading.problem}")
        local = _free_port()
        done = control(config, self.directory, "forward", "-L", f"127.0.0.1:{local}:{remote_host}:{port}")
        if done.returncode != 0:
            raise VllmtuiError(f"{host}: cannot forward port {port}: {done.stderr.strip() or 'ssh failed'}")
        with self._lock:
            self._forwards[key] = local
        return local

    def base_url(self, host: str, status: ServerStatus) -> str:
        """Where a client HERE reaches `status`'s server on `host` (through `forward`)."""
        if status.port is None:
            raise VllmtuiError(f"{status.name} on {host} has no port")
        target = client_host(status.host or "127.0.0.1")
        return f"http://127.0.0.1:{self.forward(host, status.port, target)}"

    def close(self) -> None:
        """End the serve sessions and the control masters (and with them the forwards)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            links, self._links = self._links, {}
            side, self._side = self._side, {}
            opened = set(links) | {key[0] for key in self._forwards}
            self._forwards.clear()
        for link in [*links.values(), *(link for link, _ in side.values())]:
            link.close()
        for name in opened:
            control(self.hosts[name], self.directory, "exit", timeout=3)
