#!/usr/bin/env python3
"""Benchmark: one poll of 4 hosts with 5 servers each, as the TUI does it every second.

Needs root and sshd (like tests/ssh): the 4 hosts are root's own account over a real sshd on
loopback, 4 aliases each with its own control master, tmux socket, state and config dirs,
each running 5 STAND-IN servers (tests/standin/fake_vllm_standin.py). Host 4 is behind its
own sshd, which is then SIGSTOPped (a host that hangs).

Prints, beside each goal: the wall time of a poll (`Hosts.read(wait=0.9)`), the laptop side's
CPU per poll and at one poll a second (this process + its ssh clients + the control masters;
the hosts' own vllmtui processes are the hosts' cost, printed apart), and with host 4 hung:
the poll's wall time, how long until host 4 shows `unreachable`, and host 4 coming back;
then the TUI itself showing the 20 servers for `--tui` seconds: its CPU with everything it
runs to read the hosts.

    sudo .venv/bin/python scripts/bench_hosts.py [--polls 20] [--tui 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil
import yaml

from tests.support.helpers import STANDIN, free_port
from tests.support.sshd import Sshd
from vllmtui.core.settings import Settings
from vllmtui.hosts.fleet import Hosts
from vllmtui.hosts.ssh import control, control_path

HOSTS, SERVERS = 4, 5
_TAKEN: set[int] = set()


def unique_port() -> int:
    """A free port no other stand-in of this run was given (none is bound before the starts)."""
    while True:
        port = free_port()
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


def make_host(base: Path, name: str) -> tuple[Path, str]:
    d = base / name
    (d / "config" / "profiles").mkdir(parents=True)
    socket = f"bench-{name}-{os.getpid()}"
    cmd = d / "vllmtui"
    cmd.write_text(f"#!/bin/sh\nexport VLLMTUI_TMUX_SOCKET={socket} VLLMTUI_STATE_DIR={d}/state"
                   f" VLLMTUI_CONFIG_DIR={d}/config\nexec {sys.executable} -m vllmtui \"$@\"\n")
    cmd.chmod(0o755)
    for i in range(SERVERS):
        profile = {"model": "standin-model", "port": unique_port(),
                   "runtime": {"command": [sys.executable, str(STANDIN)]},
                   "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.1"}, "stop": {"timeout": 3}}
        (d / "config" / "profiles" / f"s{i}.yaml").write_text(yaml.safe_dump(profile))
    return cmd, socket


def ssh_config(path: Path, sshds: list[Sshd]) -> None:
    lines = []
    for i in range(HOSTS):
        server = sshds[1] if i == HOSTS - 1 else sshds[0]
        lines += [f"Host h{i}", "  HostName 127.0.0.1", f"  Port {server.port}", "  User root",
                  f"  IdentityFile {server.root / 'user_key'}",
                  f"  UserKnownHostsFile {server.root / 'known_hosts'}"]
    lines += ["Host *", "  IdentitiesOnly yes", "  StrictHostKeyChecking no",
              "  GlobalKnownHostsFile /dev/null", "  LogLevel ERROR", ""]
    path.write_text("\n".join(lines))


def laptop_procs(hosts: Hosts) -> list[psutil.Process]:
    """This process, its ssh clients and the control masters (found by `ssh -O check`).
    Not the sshds this script started for the hosts, nor anything under them (the hosts'
    sessions and their `vllmtui hosts serve`): that is the hosts' side, printed apart."""
    procs = [psutil.Process()]
    procs += [p for p in psutil.Process().children() if p.name() == "ssh"]
    for config in hosts.hosts.values():
        if config.is_local:
            continue
        done = control(config, hosts.directory, "check")
        found = re.search(r"pid=(\d+)", done.stderr)
        if found:
            procs.append(psutil.Process(int(found.group(1))))
    return procs


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def host_cpu(sockets: list[str]) -> float:
    """CPU seconds of the hosts' `vllmtui hosts serve` processes (the hosts' cost)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "vllmtui hosts serve" in cmd and "ssh" not in cmd.split()[0]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def polls(hosts: Hosts, count: int, names: list[str]) -> tuple[list[float], float, float]:
    """`count` polls one second apart: wall times, laptop CPU seconds, elapsed seconds."""
    procs = laptop_procs(hosts)
    parts = {"this process": procs[:1], "ssh clients": [p for p in procs[1:] if p.ppid() == os.getpid()],
             "control masters": [p for p in procs[1:] if p.ppid() != os.getpid()]}
    before = {k: cpu_of(v) for k, v in parts.items()}
    cpu0, t0 = cpu_of(procs), time.monotonic()
    walls = []
    for i in range(count):
        begin = time.monotonic()
        readings = hosts.read(wait=0.9, gpus=False, names=names)
        walls.append(time.monotonic() - begin)
        bad = [r.name for r in readings.values() if not r.reachable]
        if bad and i == 0:
            print(f"  (unreachable: {bad})")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - begin)))
    elapsed = time.monotonic() - t0
    print("  laptop CPU by part: " + ", ".join(
        f"{k} {(cpu_of(v) - before[k]) / elapsed * 100:.2f} %" for k, v in parts.items()))
    return walls, cpu_of(procs) - cpu0, elapsed


def steady(hosts: Hosts, names: list[str], sockets: list[str], count: int) -> None:
    hcpu0 = host_cpu(sockets)
    walls, cpu, elapsed = polls(hosts, count, names)
    hcpu = host_cpu(sockets) - hcpu0
    walls.sort()
    print(f"poll wall, median        {walls[len(walls) // 2] * 1000:7.1f} ms   goal < 1000 ms")
    print(f"poll wall, max           {walls[-1] * 1000:7.1f} ms   goal < 1000 ms")
    print(f"laptop CPU per poll      {cpu / len(walls) * 1000:7.1f} ms   "
          "(this process + ssh clients + masters)")
    print(f"laptop CPU at 1 poll/s   {cpu / elapsed * 100:7.2f} %    goal < 2 % of a core")
    print(f"hosts' CPU (serve), each {hcpu / elapsed / HOSTS * 100:7.2f} %    of a core "
          "(the host's own cost: its tmux listing, /health checks)")


def hung(hosts: Hosts, names: list[str], server: Sshd) -> None:
    """Host 4's sshd SIGSTOPped: the others' polls, when it shows unreachable, its return."""
    frozen = [server.proc, *server.connections()]
    for p in frozen:
        os.kill(p.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    begin = time.monotonic()
    shown = None
    walls = []
    while time.monotonic() - begin < 10:
        t = time.monotonic()
        readings = hosts.read(wait=0.9, gpus=False, names=names)
        walls.append(time.monotonic() - t)
        assert all(r.reachable for r in readings.values() if r.name != names[-1]), readings
        if shown is None and not readings[names[-1]].reachable:
            shown = time.monotonic() - begin
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    print(f"host 4 hung: poll wall, max {max(walls) * 1000:6.1f} ms   goal < 1000 ms (the others answer)")
    print(f"host 4 hung: unreachable after {shown if shown is not None else float('nan'):5.1f} s"
          "    goal < 5 s")
    for p in frozen:
        os.kill(p.pid, signal.SIGCONT)  # type: ignore[union-attr]
    t = time.monotonic()
    last = names[-1]
    while not hosts.read(gpus=False, names=[last])[last].reachable and time.monotonic() - t < 30:
        time.sleep(0.5)
    print(f"host 4 back after SIGCONT in {time.monotonic() - t:5.1f} s")


def tui(settings: Settings, seconds: float) -> None:
    """The TUI itself (headless, 160x50) showing the 4 hosts' 20 servers, refreshing every
    second: the laptop's CPU while it does (the app, its ssh clients, the control masters),
    first while the servers are young (their uptimes tick each second), then once every server
    is over a minute old (uptimes shown to the minute: the table still redraws with each
    reading that changes a cell)."""
    import asyncio

    from vllmtui.ui.app import VllmtuiApp

    async def window(app: VllmtuiApp, pilot: object) -> float:
        hosts = app.main.hosts
        assert hosts is not None
        procs = laptop_procs(hosts)
        cpu0, t0 = cpu_of(procs), time.monotonic()
        await pilot.pause(seconds)  # type: ignore[attr-defined]
        return (cpu_of(procs) - cpu0) / (time.monotonic() - t0) * 100

    async def run() -> tuple[float, float, int]:
        app = VllmtuiApp(settings)
        async with app.run_test(size=(160, 50)) as pilot:
            while len(app.main.readings.remote) < HOSTS * SERVERS:
                await pilot.pause(0.2)
            await pilot.pause(2.0)  # every panel mounted, the first readings in
            young = await window(app, pilot)
            while min(s.uptime or 0 for _, s in app.main.readings.remote.values()) < 65:
                await pilot.pause(1.0)
            steady = await window(app, pilot)
            rows = len(app.main.readings.remote)
            await pilot.press("q")
        return young, steady, rows

    young, steady, rows = asyncio.run(run())
    print(f"TUI, {rows} remote rows, uptimes ticking   {young:5.2f} %    goal < 2 % of a core"
          f" (the app + ssh clients + masters, {seconds:.0f} s)")
    print(f"TUI, {rows} remote rows, servers > 1 min   {steady:5.2f} %    goal < 2 % of a core")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--tui", type=float, default=20.0, help="seconds of the TUI phase (0: none)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_hosts needs root (it runs sshd on loopback, like tests/ssh)", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="vt-bench-"))
    sshds = []
    for i in range(2):
        root = base / f"sshd{i}"
        root.mkdir()
        sshds.append(Sshd(root))
        sshds[-1].start()
    sockets: list[str] = []
    hosts_yaml: dict[str, dict[str, str]] = {}
    ssh_config(base / "ssh_config", sshds)
    for i in range(HOSTS):
        cmd, sock = make_host(base, f"h{i}")
        sockets.append(sock)
        hosts_yaml[f"h{i}"] = {"ssh": f"h{i}", "ssh_config": str(base / "ssh_config"), "vllmtui": str(cmd)}
    (base / "laptop").mkdir()
    (base / "laptop" / "hosts.yaml").write_text(yaml.safe_dump({"hosts": hosts_yaml}))
    control_dir = Path(tempfile.mkdtemp(prefix="vt-bcm-"))
    settings = replace(Settings(), config_dir=base / "laptop", state_dir=base / "laptop-state",
                       ssh_control_dir=control_dir, profiles_dirs=())
    names = list(hosts_yaml)
    hosts = Hosts(settings)
    try:
        print(f"starting {HOSTS} hosts x {SERVERS} stand-in servers ...", flush=True)
        for name in names:
            for i in range(SERVERS):
                done = hosts.run(name, ["start", f"s{i}"])
                assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 60
        while True:
            readings = hosts.read(gpus=False, names=names)
            ready = sum(1 for r in readings.values() for s in r.statuses if s.state == "ready")
            if ready == HOSTS * SERVERS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        print(f"{ready} servers ready; {args.polls} polls, one a second", flush=True)
        steady(hosts, names, sockets, args.polls)
        hung(hosts, names, sshds[1])
        if args.tui:
            tui(settings, args.tui)
        return 0
    finally:
        for name in names:
            hosts.run(name, ["stop", *[f"s{i}" for i in range(SERVERS)], "--force"], timeout=60)
        hosts.close()
        for sock in sockets:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        for server in sshds:
            server.stop()
        for name in names:
            control_path(hosts.hosts[name], control_dir).unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(control_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
