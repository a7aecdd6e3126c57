"""Hosts for the many-boxes tests: separate LOCAL USER ACCOUNTS (`vt-host-a`, `vt-host-b`),
each with its own home, tmux server and state, reached through a real sshd on loopback.

Needs root (it makes the accounts with `useradd -m`, idempotently, and leaves them for the next
run); skipped with the reason otherwise. Each user runs THIS checkout's vllmtui: /root (where
the venv's Python lives) is not readable by other users, so a small wrapper in the user's home
runs the system `python3` (the same 3.11) with the checkout and the venv's site-packages on
PYTHONPATH, and isolates each test: its own tmux socket, state and config dirs (`HostDir`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import ROOT, STANDIN, free_port
from tests.support.sshd import Sshd
from vllmtui.core.settings import Settings

USERS = ("vt-host-a", "vt-host-b")
SYSTEM_PYTHON = "/usr/bin/python3"
SITE = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def ensure_user(user: str) -> Path:
    """The account `user` (made if missing; its password field `*`: no password, not locked,
    so sshd lets its key in). Returns its home."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True, capture_output=True)
        entry = pwd.getpwnam(user)
    subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
    return Path(entry.pw_dir)


def as_user(user: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd="/")


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


class HostsSshd:
    """An sshd the test users can log in to, and an ssh client config naming them."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vt-hosts-"))
        self.root.chmod(0o711)  # the users' sshd reads authorized_keys as them
        self.sshd = Sshd(self.root)
        (self.root / "authorized_keys").chmod(0o644)
        self.config = self.root / "hosts_ssh_config"
        self.write_config()

    @property
    def port(self) -> int:
        return self.sshd.port

    def write_config(self) -> None:
        lines = []
        for alias, user in (("host-a", USERS[0]), ("host-b", USERS[1]), ("self", "root")):
            lines += [f"Host {alias}", "  HostName 127.0.0.1", f"  Port {self.sshd.port}", f"  User {user}"]
        lines += ["Host *", f"  IdentityFile {self.root / 'user_key'}", "  IdentitiesOnly yes",
                  f"  UserKnownHostsFile {self.root / 'known_hosts'}", "  GlobalKnownHostsFile /dev/null",
                  "  StrictHostKeyChecking yes", "  LogLevel ERROR", ""]
        self.config.write_text("\n".join(lines))

    def close(self) -> None:
        self.sshd.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class HostDir:
    """One test's corner of a test user: a wrapper `vllmtui` with its own tmux socket, state
    and config (profiles) directories."""

    user: str
    home: Path
    tag: str
    version: str | None = None

    @property
    def dir(self) -> Path:
        return self.home / self.tag

    @property
    def command(self) -> Path:
        return self.dir / "vllmtui"

    @property
    def socket(self) -> str:
        return self.tag

    @property
    def profiles(self) -> Path:
        return self.dir / "config" / "profiles"

    def make(self) -> None:
        self.profiles.mkdir(parents=True, exist_ok=True)
        env = (f"export VLLMTUI_TMUX_SOCKET={self.socket} VLLMTUI_STATE_DIR={self.dir}/state"
               f" VLLMTUI_CONFIG_DIR={self.dir}/config VLLMTUI_DATA_DIR={self.dir}/data"
               f" PYTHONPATH={ROOT}:{SITE} PYTHONDONTWRITEBYTECODE=1")
        self.command.write_text(f"#!/bin/sh\n{env}\nexec {SYSTEM_PYTHON} -m vllmtui \"$@\"\n")
        self.command.chmod(0o755)
        chown_tree(self.dir, self.user)

    def write_profile(self, name: str, **fields: object) -> Path:
        """A profile of the host's own (a stand-in server unless `runtime` is given)."""
        path = self.profiles / f"{name}.yaml"
        path.write_text(yaml.safe_dump(standin_fields(**fields), sort_keys=False))
        chown_tree(self.dir, self.user)
        return path

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return as_user(self.user, "tmux", "-L", self.socket, *args)

    def clean(self) -> None:
        self.tmux("kill-server")
        shutil.rmtree(self.dir, ignore_errors=True)


def standin_fields(**fields: object) -> dict[str, object]:
    """A stand-in server's profile fields (it runs with the system python: any user can)."""
    base: dict[str, object] = {
        "model": "standin-model", "port": free_port(),
        "runtime": {"command": [SYSTEM_PYTHON, str(STANDIN)]},
        "env": {"STANDIN_MODE": "ok", "STANDIN_DELAY": "0.2"},
        "stop": {"timeout": 3, "term_timeout": 2},
    }
    base.update(fields)
    return base


@pytest.fixture(scope="session")
def hosts_sshd() -> Iterator[HostsSshd]:
    """The test users (made once) and an sshd that lets them in, for the whole session."""
    if os.geteuid() != 0:
        pytest.skip("the hosts tests make local user accounts (useradd): they need root")
    for user in USERS:
        ensure_user(user)
    server = HostsSshd()
    server.sshd.start()
    yield server
    server.close()


@dataclass
class HostsEnv:
    """This test's hosts: settings of the laptop side (hosts.yaml written), the users' dirs."""

    settings: Settings
    dirs: dict[str, HostDir]
    sshd: HostsSshd
    control: Path

    def hosts_yaml(self, extra: dict[str, dict[str, object]] | None = None, **fields: object) -> Path:
        hosts: dict[str, dict[str, object]] = {}
        for name, d in self.dirs.items():
            hosts[name] = {"ssh": name, "vllmtui": str(d.command), "ssh_config": str(self.sshd.config),
                           **fields}
        hosts.update(extra or {})
        path = self.settings.config_dir / "hosts.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
        return path

    def env(self) -> dict[str, str]:
        return {"VLLMTUI_SSH_CONTROL_DIR": str(self.control)}


def close_masters(control: Path) -> None:
    """End every control master whose socket is in `control` (the test's own)."""
    with contextlib.suppress(OSError):
        for sock in control.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=5)
    shutil.rmtree(control, ignore_errors=True)


@pytest.fixture
def hosts_env(hosts_sshd: HostsSshd, settings: Settings) -> Iterator[HostsEnv]:
    """host-a and host-b (users vt-host-a, vt-host-b) in this test's hosts.yaml, each with a
    fresh tmux socket and state of this test's own; everything ended afterwards."""
    tag = f"vt-{uuid.uuid4().hex[:8]}"
    dirs = {alias: HostDir(user, Path(pwd.getpwnam(user).pw_dir), tag)
            for alias, user in (("host-a", USERS[0]), ("host-b", USERS[1]))}
    for d in dirs.values():
        d.make()
    control = Path(tempfile.mkdtemp(prefix="vt-cm-"))
    env = HostsEnv(replace(settings, ssh_control_dir=control), dirs, hosts_sshd, control)
    env.hosts_yaml()
    yield env
    close_masters(control)
    for d in dirs.values():
        d.clean()
