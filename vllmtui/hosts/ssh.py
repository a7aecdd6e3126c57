"""The ssh command lines to a host, and `Link`: one `vllmtui hosts serve` session per host.

Every ssh vllmtui runs to a host goes through ONE multiplexed connection (ControlMaster=auto,
a ControlPersist of 60 s), so a poll costs a message on an open channel, not a handshake.
`BatchMode=yes` never waits on a prompt; keepalives every 2 s (2 missed: gone) and a
4 s ConnectTimeout bound how long a dropped host takes to show.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vllmtui.core.settings import Settings
from vllmtui.hosts.config import HostConfig

CONTROL_PERSIST = 60
"""Seconds an idle control master stays for the next command."""
DEFAULT_OPTIONS = {"ServerAliveInterval": "2", "ServerAliveCountMax": "2", "ConnectTimeout": "4"}
"""What `ssh_options:` in hosts.yaml may change."""
MAX_ANSWER = 64 << 20


class LinkError(Exception):
    """No answer from a host; the message says why, for the user."""


def control_dir(settings: Settings) -> Path:
    """Where the control sockets live: short (a socket path is at most 107 bytes), private."""
    configured = settings.ssh_control_dir or os.environ.get("VLLMTUI_SSH_CONTROL_DIR")
    path = Path(configured) if configured else Path(f"/tmp/vllmtui-ssh-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def control_path(host: HostConfig, directory: Path) -> Path:
    key = f"{host.name}|{host.ssh}|{host.port}|{host.ssh_config}|{host.ssh_options}"
    return directory / hashlib.sha1(key.encode()).hexdigest()[:16]


def ssh_argv(host: HostConfig, directory: Path, *, tty: bool = False,
             extra: list[str] | None = None) -> list[str]:
    """`ssh [options] DEST` for this host over its control master (the command follows)."""
    assert host.ssh is not None, "local is reached without ssh"
    argv = ["ssh"]
    if host.ssh_config:
        argv += ["-F", str(Path(host.ssh_config).expanduser())]
    if host.port:
        argv += ["-p", str(host.port)]
    options = {**DEFAULT_OPTIONS, **dict(host.ssh_options)}
    options.update(ControlMaster="auto", ControlPath=str(control_path(host, directory)),
                   ControlPersist=str(CONTROL_PERSIST), BatchMode="yes")
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    argv += [*(extra or []), "-t" if tty else "-T", host.ssh]
    return argv


def resolved_hostname(host: HostConfig, timeout: float = 5.0) -> str | None:
    """The machine an ssh destination reaches, as ssh's own configuration resolves it
    (`ssh -G`: an ~/.ssh/config alias's HostName); None when ssh cannot say."""
    if host.ssh is None:
        return None
    argv = ["ssh", "-G"]
    if host.ssh_config:
        argv += ["-F", str(Path(host.ssh_config).expanduser())]
    try:
        done = subprocess.run([*argv, host.ssh], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname" and value.strip():
            return value.strip()
    return None


def remote_command(host: HostConfig, argv: list[str]) -> str:
    """The command line the host's shell runs: its `vllmtui:` as written (so `~` expands
    there), then each argument quoted."""
    return " ".join([host.vllmtui, *(shlex.quote(a) for a in argv)])


def control(host: HostConfig, directory: Path, op: str, *args: str,
            timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
    """`ssh -O OP` on the host's control master (check, forward, cancel, exit)."""
    argv = ssh_argv(host, directory, extra=["-O", op, *args])
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", f"ssh -O {op}: no answer within {timeout:g} s")


def explain(stderr: str, code: int | None, host: HostConfig) -> str:
    """Plain words (and the fix) for why a host's vllmtui did not answer."""
    text = " ".join(line.strip() for line in stderr.splitlines() if line.strip())[-300:]
    fix = f"`vllmtui hosts install {host.name}`, or set `vllmtui:` for {host.name} in hosts.yaml"
    if code == 127 or "not found" in text or "No such file" in text:
        return f"no vllmtui there ({host.vllmtui}): {fix}"
    if "invalid choice" in text:
        return f"the vllmtui there is too old to answer (no `hosts serve`): {fix}"
    if code == 255 or not text:
        return f"ssh {host.ssh}: {text.removeprefix('ssh: ') or 'connection closed'}"
    return f"vllmtui there failed (exit {code}): {text}"


class Link:
    """One long-lived `ssh HOST VLLMTUI hosts serve`: a JSON line out, a JSON line back.
    Not thread-safe on its own: `Hosts` gives each host one thread at a time."""

    def __init__(self, host: HostConfig, directory: Path):
        self.host = host
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._stderr: Any = None

    def _open(self) -> subprocess.Popen[bytes]:
        argv = [*ssh_argv(self.host, self.directory), remote_command(self.host, ["hosts", "serve"])]
        self._buffer = b""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open with the session: a pipe nobody reads could fill
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        return self.proc

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one message and wait (at most `timeout` s, the connect included) for its answer."""
        deadline = time.monotonic() + timeout
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._open()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            raise self._failed("") from None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.close()
                    raise LinkError(f"no answer within {timeout:g} s")
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise self._failed("")
                self._buffer += chunk
                if len(self._buffer) > MAX_ANSWER:
                    self.close()
                    raise LinkError("the answer was too long (is that vllmtui?)")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            self.close()
            raise LinkError(f"not an answer of vllmtui: {line[:120]!r}") from None
        if not isinstance(answer, dict):
            raise LinkError(f"not an answer of vllmtui: {line[:120]!r}")
        return answer

    def _failed(self, default: str) -> LinkError:
        """The session ended: why, from ssh's (or the remote shell's) own words."""
        proc = self.proc
        code: int | None = None
        err = default
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(2)
            if code is not None and self._stderr is not None:
                self._stderr.seek(0)
                err = self._stderr.read()[-4096:].decode(errors="replace")
        self.close()
        return LinkError(explain(err, code, self.host))

    def close(self) -> None:
        """End the session (the control master stays for the next one)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)
        for stream in (proc.stdin, proc.stdout, self._stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
