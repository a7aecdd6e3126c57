"""A real one-node Slurm cluster on localhost for the SLURM runtime's tests (tests/slurm).

Everything lives in a temp dir: a munge key and munged of its own (its own socket, named in
slurm.conf's AuthInfo), slurm.conf (node `localhost` with this machine's CPUs and memory as
`slurmd -C` measures them, partition `debug`, no cgroups, no accounting), the controller's
state and slurmd's spool. slurmctld and slurmd run in the foreground (`-D`) as children of
the test session on free ports; `SLURM_CONF` points the client commands (and the domain code)
at them. Up in about a second; torn down with every job and every process it started.

Needs root (slurmd runs jobs as their owners) and the packages scripts/setup-test-deps.sh
installs (slurm-wlm, munge).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.support.helpers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
NODE = "localhost"
PARTITION = "debug"
KILL_WAIT = 3  # s between scancel's SIGTERM and SIGKILL


def _which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}")
                                       if os.access(p, os.X_OK)), None)


def _node_line() -> str:
    """This machine as slurm.conf's NodeName line, measured by slurmd itself (CPUs, sockets,
    cores, threads, RealMemory): a node that claims more than it has would be drained."""
    out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    fields = [f for f in line.split() if not f.startswith("NodeName=")]
    return f"NodeName={NODE} NodeHostname={NODE} NodeAddr=127.0.0.1 {' '.join(fields)} State=UNKNOWN"


@dataclass
class SlurmCluster:
    """One running test cluster; `env` is what a Slurm command needs to reach it."""

    root: Path
    conf: Path = field(init=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def cmd(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(argv), capture_output=True, text=True, env=self.env, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} -> {done.returncode}: {done.stderr.strip()}")
        return done

    def logs(self) -> str:
        """The tail of every daemon's log, for a failure message."""
        parts = []
        for name in DAEMONS:
            path = self.root / "log" / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    # ------------------------------------------------------------------ start

    def write_config(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool", "log"):
            (r / sub).mkdir(mode=0o700, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text("\n".join([
            "ClusterName=vllmtuitest",
            f"SlurmctldHost={NODE}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge' / 'munge.socket'}",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",  # no cgroups here
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "ReturnToService=2",  # the node comes up idle as soon as slurmd registers
            "SlurmctldTimeout=10",
            "SlurmdTimeout=10",
            "MessageTimeout=5",
            "InactiveLimit=0",
            f"KillWait={KILL_WAIT}",
            "MinJobAge=600",  # ended jobs stay visible to squeue for the whole session
            "Waittime=0",
            _node_line(),
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / "log" / f"{name}.out").open("ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, cwd=self.root)
        log.close()

    def _wait(self, what: str, ready: object, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    out = (self.root / "log" / f"{name}.out").read_text(errors="replace")[-2000:]
                    raise AssertionError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n"
                                         f"{out}\n{self.logs()}")
            if callable(ready) and ready():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.logs()}")
            time.sleep(0.1)

    def start(self) -> None:
        self.write_config()
        m = self.root / "munge"
        self._spawn("munged", [_which("munged") or "munged", "-F", "--force", f"--key-file={m / 'munge.key'}",
                               f"--socket={m / 'munge.socket'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={self.root / 'log' / 'munged.log'}"])
        self._wait("munged's socket", (m / "munge.socket").exists)
        self._spawn("slurmctld", [_which("slurmctld") or "slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [_which("slurmd") or "slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(f"node {NODE} idle in sinfo", self._node_idle)

    def _node_idle(self) -> bool:
        done = self.cmd("sinfo", "-h", "-n", NODE, "-o", "%t", check=False)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    # ------------------------------------------------------------------ jobs

    def job_ids(self, active_only: bool = True) -> list[str]:
        states = [] if active_only else ["-t", "all"]
        return self.cmd("squeue", "-h", *states, "-o", "%i").stdout.split()

    def cancel_all(self, timeout: float = 15.0) -> None:
        """Cancel every job still pending or running; wait until none is left."""
        ids = self.job_ids()
        if ids:
            self.cmd("scancel", *ids, check=False)
        deadline = time.monotonic() + timeout
        while self.job_ids() and time.monotonic() < deadline:
            time.sleep(0.2)

    # ------------------------------------------------------------------ stop

    def ours(self) -> list[psutil.Process]:
        """Every process this cluster started: the daemons, slurmstepd, the jobs (all carry our
        SLURM_CONF: the daemons got it, and the jobs inherit the submitter's with --export=ALL)."""
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("SLURM_CONF") == str(self.conf) or str(self.conf) in proc.cmdline():
                    found.append(proc)
        return found

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        left = self.ours()
        for leftover in left:
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        psutil.wait_procs(left, timeout=5)
        still = self.ours()
        assert still == [], f"the test Slurm left processes running: {still}"


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running one-node Slurm cluster for the session; os.environ's SLURM_CONF points at it
    (so vllmtui.slurm's calls reach it) until the session ends and everything is stopped."""
    if os.geteuid() != 0:
        pytest.skip("the test Slurm cluster needs root: slurmd starts jobs as their owners"
                    " (run the slurm tests as root, as CI does)")
    missing = [n for n in (*DAEMONS, *CLIENTS) if _which(n) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup-test-deps.sh (installs slurm-wlm, munge)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
