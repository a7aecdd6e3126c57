"""A real OpenSSH server on loopback for the tunnel tests.

Throwaway host and user keys in a temp dir, `sshd -D` on a free high port, and an ssh
client config (passed as `ssh -F`) with aliases:
  box          -> this sshd, with the authorised key
  box-badkey   -> this sshd, with a key it does not accept
  box-nothing  -> a port where nothing listens
`Sshd.stop()` kills the listener AND its per-connection processes, as a stopped or
rebooted server would; `start()` brings it back on the same port with the same host key.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vllmtui-test",
                    "-f", str(path)], check=True, capture_output=True)


class Sshd:
    """One sshd on 127.0.0.1:port with its own keys and client config."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.user = getpass.getuser()
        self.proc: subprocess.Popen[bytes] | None = None
        for key in ("host_key", "user_key", "bad_key"):
            _keygen(root / key)
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
        nothing = _free_port()
        self.client_config = root / "ssh_config"
        self.client_config.write_text(
            f"Host box\n  HostName 127.0.0.1\n  Port {self.port}\n"
            f"  IdentityFile {root / 'user_key'}\n"
            f"Host box-badkey\n  HostName 127.0.0.1\n  Port {self.port}\n"
            f"  IdentityFile {root / 'bad_key'}\n"
            f"Host box-nothing\n  HostName 127.0.0.1\n  Port {nothing}\n"
            f"  IdentityFile {root / 'user_key'}\n"
            f"Host 127.0.0.1\n  IdentityFile {root / 'user_key'}\n"
            f"Host *\n  User {self.user}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {root / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel INFO\n"
        )
        self.log = root / "sshd.log"

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd did not listen: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def connections(self) -> list[psutil.Process]:
        """The per-connection sshd processes (children of the listener)."""
        if self.proc is None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []

    def stop(self) -> None:
        """Kill the listener and every connection it serves."""
        if self.proc is None:
            return
        victims = [*self.connections()]
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


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A running sshd of this test's own (stopped afterwards)."""
    root = tmp_path / "sshd"
    root.mkdir()
    server = Sshd(root)
    server.start()
    yield server
    server.stop()
