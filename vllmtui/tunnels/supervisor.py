"""The process in a tunnel's tmux pane: runs `ssh` and restarts it with backoff.

    python -m vllmtui.tunnels.supervisor --log FILE [--no-reconnect] [--retry-max S] -- ssh ARGS...

It lives in tmux, so the tunnel keeps working (and keeps reconnecting) when no vllmtui is
running. ssh runs with `-v`; the supervisor keeps the lines that say what happened
(connecting, authenticated, forwards, errors) and drops the per-connection chatter, and
writes them, time-stamped, to FILE (and to the pane for `tmux attach`). `tunnels.state`
derives the tunnel's state from that file, the pane and a real connection through it.

Stdlib only: it must start fast and keep running whatever else changes.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

LOG_LIMIT = 1 << 20  # rotate the log to FILE.1 beyond this many bytes
STABLE_AFTER = 30.0  # an attempt that lived this long resets the backoff
EXIT_GAVE_UP = 3  # supervisor exit status when it stops retrying

# Event lines the supervisor writes (after the time stamp), parsed back by `tunnels.state`.
EV_STARTED = "vllmtui: ssh started"
EV_EXITED = "vllmtui: ssh exited"
EV_RETRY = "vllmtui: retry in"
EV_GAVE_UP = "vllmtui: giving up"
EV_STOPPED = "vllmtui: stopped"
EV_UP = "vllmtui: up requested"  # written by `Tunnels.up` before the session starts

_KEEP_DEBUG = (
    "Connecting to",
    "Connection established",
    "Authenticating to",
    "Local connections to",
    "Remote connections from",
    "Local forwarding listening",
    "remote forward",
    "forwarding_success",
    "Entering interactive session",
    "Exit status",
    "Killed by signal",
    "connect_to",
    "Remote: Port forwarding",
)


def keep_line(line: str) -> bool:
    """Whether an ssh -v output line is worth keeping in the tunnel log."""
    if not line.strip():
        return False
    if not line.startswith("debug"):
        return True
    return line.startswith("debug1:") and any(k in line for k in _KEEP_DEBUG)


@dataclass(frozen=True)
class Diagnosis:
    """Why ssh failed: a short key, a message for the user, and whether retrying can help."""

    key: str
    reason: str
    permanent: bool = False


_RULES: tuple[tuple[str, str, str, bool], ...] = (
    # (regex on ssh's output, key, reason template, permanent)
    (r"Permission denied \((?P<m>[^)]*)\)", "auth",
     "auth failed: the server refused every key ({m}); BatchMode never asks for a password", True),
    (r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", "hostkey",
     "host key verification failed: run `ssh DEST` once by hand to check and accept the key", True),
    (r"Could not resolve hostname (?P<h>\S+?):", "resolve",
     "host unreachable: cannot resolve {h} (typo? an alias missing from ~/.ssh/config?)", True),
    (r"remote port forwarding failed for listen port (?P<p>\d+)", "remote-forward",
     "remote port forwarding failed: port {p} on the destination is taken or not allowed", False),
    (r"bind \[?(?P<a>[^\]\s]*)\]?:(?P<p>\d+): Address already in use", "local-port",
     "local port in use: {a}:{p} is held by another process", False),
    (r"cannot listen to port: (?P<p>\d+)|Could not request local forwarding", "local-port",
     "local port in use: ssh could not listen on the local port", False),
    (r"connect to host (?P<h>\S+) port (?P<p>\d+): Connection refused", "refused",
     "host unreachable: {h} port {p} refused the connection (is sshd running there?)", False),
    (r"connect to host (?P<h>\S+) port (?P<p>\d+): (?P<e>Connection timed out|No route to host|"
     r"Network is unreachable|Operation timed out)", "unreachable",
     "host unreachable: {h} port {p}: {e}", False),
    (r"Timeout, server (?P<h>\S+) not responding", "timeout",
     "connection lost: {h} stopped answering keepalives", False),
    (r"Connection (?:to \S+ )?closed by remote host|Connection reset by|"
     r"kex_exchange_identification|Broken pipe|Connection closed by", "closed",
     "connection lost: the server closed the connection", False),
    (r"Bad configuration option|Bad (?:local|remote) forwarding specification|"
     r"command-line line \d+:|Can't open user config file", "config",
     "ssh rejected its options: {line}", True),
)


def diagnose(lines: Iterable[str]) -> Diagnosis | None:
    """The most telling failure in ssh's output lines (debug lines ignored), or None."""
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("debug")]
    for pattern, key, template, permanent in _RULES:
        regex = re.compile(pattern)
        for line in lines:
            match = regex.search(line)
            if match:
                fields = {k: v for k, v in match.groupdict().items() if v is not None}
                return Diagnosis(key, template.format(line=line.strip(), **fields), permanent)
    return None


# ---------------------------------------------------------------- the loop


class _Stop(Exception):
    pass


def stamp() -> str:
    """The time stamp that starts every log line."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Out:
    def __init__(self, path: str):
        self.path = path
        self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def rotate_if_big(self) -> None:
        if os.path.getsize(self.path) > LOG_LIMIT:
            self.file.close()
            os.replace(self.path, self.path + ".1")
            self.file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, text: str) -> None:
        line = f"{stamp()} {text}\n"
        self.file.write(line)
        try:  # the pane may be gone (tmux kill-session): the log is what matters
            sys.stdout.write(line)
            sys.stdout.flush()
        except OSError:
            pass


def _end(proc: subprocess.Popen[str] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def supervise(ssh_argv: list[str], log: str, reconnect: bool, retry_max: float) -> int:
    """Run ssh until told to stop; restart it with exponential backoff when it exits."""
    out = _Out(log)

    def stop(signum: int, _frame: object) -> None:
        raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    proc: subprocess.Popen[str] | None = None
    delay = 1.0
    attempt = 0
    try:
        while True:
            attempt += 1
            out.rotate_if_big()
            began = time.monotonic()
            proc = subprocess.Popen(
                ssh_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, errors="replace",
            )
            out.write(f"{EV_STARTED} (attempt {attempt}, pid {proc.pid})")
            said: list[str] = []
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\r\n")
                if keep_line(line):
                    out.write("ssh: " + line)
                    said.append(line)
                    del said[:-200]
            status = proc.wait()
            lived = time.monotonic() - began
            out.write(f"{EV_EXITED} (status {status}) after {lived:.1f} s")
            proc = None
            found = diagnose(said)
            if not reconnect:
                return status or 1
            if found is not None and found.permanent:
                out.write(f"{EV_GAVE_UP}: {found.reason}")
                return EXIT_GAVE_UP
            if lived >= STABLE_AFTER:
                delay = 1.0
            out.write(f"{EV_RETRY} {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, retry_max)
    except _Stop as why:
        _end(proc)
        out.write(f"{EV_STOPPED} ({why})")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vllmtui.tunnels.supervisor")
    parser.add_argument("--log", required=True)
    parser.add_argument("--no-reconnect", action="store_true")
    parser.add_argument("--retry-max", type=float, default=30.0)
    parser.add_argument("ssh_argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    ssh_argv = args.ssh_argv[1:] if args.ssh_argv[:1] == ["--"] else args.ssh_argv
    if not ssh_argv:
        parser.error("give the ssh command after --")
    return supervise(ssh_argv, args.log, not args.no_reconnect, args.retry_max)


if __name__ == "__main__":
    sys.exit(main())
