"""One persistent tmux control-mode client (`tmux -C`), so that a long-lived reader (the TUI
reads every session each second) sends a command down a pipe instead of starting a `tmux`
process per reading.

The client attaches to one of vllmtui's sessions with the flags `ignore-size` (it never
resizes a window), `no-output` (tmux sends it no pane output) and `read-only`, and with the
environment of every vllmtui tmux client (`client_environ`: no secret). Commands go one at a
time (a lock); each answer is the `%begin`..`%end` block that follows it. Notifications between
blocks are read and dropped, except `%session-changed` (the session it is attached to).
Whatever goes wrong (tmux exits, the session it is attached to goes away with
`detach-on-destroy`, no answer in time) closes the client: the caller falls back to a process.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

FLAGS = "ignore-size,no-output,read-only"
TIMEOUT = 5.0


class ControlError(Exception):
    """tmux answered a command with %error (the message is its text)."""


class ControlClosed(Exception):
    """The client is gone (tmux exited, detached it, or did not answer in time)."""


def quote(arg: str) -> str:
    """One argument for tmux's command parser: single-quoted (no escapes inside), a quote
    closed, escaped and reopened."""
    return "'" + arg.replace("'", "'\\''") + "'"


class ControlClient:
    """`tmux [-L socket] -C attach-session -t SESSION -f FLAGS`, kept open."""

    def __init__(self, base_argv: Sequence[str], session: str, env: Mapping[str, str],
                 timeout: float = TIMEOUT):
        self.session = session
        self.timeout = timeout
        self._lock = threading.Lock()
        self._buf = b""
        self._closed = False
        argv = [*base_argv, "-C", "attach-session", "-t", "=" + session, "-f", FLAGS]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(env), start_new_session=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin = self._proc.stdin
        self._fd = self._proc.stdout.fileno()
        try:
            with self._lock:
                self._block(time.monotonic() + timeout)  # the answer to the attach itself
        except (ControlError, ControlClosed):
            self.close()
            raise

    @property
    def alive(self) -> bool:
        return not self._closed and self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def command(self, args: Sequence[str]) -> list[str]:
        """Run one tmux command; its output lines (ControlError: tmux refused it,
        ControlClosed: the client is gone, and closed)."""
        line = " ".join(quote(a) for a in args) + "\n"
        with self._lock:
            if self._closed:
                raise ControlClosed("closed")
            try:
                self._stdin.write(line.encode())
                self._stdin.flush()
                return self._block(time.monotonic() + self.timeout)
            except (OSError, ValueError) as exc:
                self._close_locked()
                raise ControlClosed(str(exc)) from None
            except ControlClosed:
                self._close_locked()
                raise

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    # -- the protocol

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()  # tmux detaches a control client whose stdin ends
        try:
            self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OSError, ValueError):
            if self._proc.stdout is not None:
                self._proc.stdout.close()

    def _block(self, deadline: float) -> list[str]:
        """The next %begin..%end (or %error) block's lines; notifications before it dropped."""
        while True:
            line = self._line(deadline)
            if line.startswith("%begin "):
                break
            self._notification(line)
        tail = line.split(" ", 1)[1]
        out: list[str] = []
        while True:
            line = self._line(deadline)
            if line == "%end " + tail:
                return out
            if line == "%error " + tail:
                raise ControlError("; ".join(out) or "error")
            out.append(line)

    def _notification(self, line: str) -> None:
        if line.startswith("%exit"):
            raise ControlClosed(line)
        if line.startswith("%session-changed "):
            parts = line.split(" ", 2)
            if len(parts) == 3:
                self.session = parts[2]

    def _line(self, deadline: float) -> str:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ControlClosed(f"no answer from tmux within {self.timeout:g} s")
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                raise ControlClosed("tmux closed the control client")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\n", 1)
        return raw.decode(errors="backslashreplace")
