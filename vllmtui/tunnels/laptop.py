"""The "laptop command": how to reach a server on this box from the user's own machine
(`ssh -N -L ...`, built from $SSH_CONNECTION), and the OSC 52 escape that copies it."""

from __future__ import annotations

import base64
import getpass
import os
import shlex
import socket
from dataclasses import dataclass

from vllmtui.core.net import bracketed, client_host


@dataclass(frozen=True)
class LaptopCommand:
    """The command to run on the user's own machine to reach a server on this box."""

    argv: tuple[str, ...]
    url: str  # what the laptop then opens
    note: str = ""  # e.g. "not in an SSH session: guessed the address"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def laptop_command(
    host: str, port: int, local_port: int | None = None,
    env: dict[str, str] | None = None, user: str | None = None,
) -> LaptopCommand:
    """`ssh -N -L LOCAL:HOST:PORT user@address` for a server listening on host:port here.
    User and address come from $SSH_CONNECTION (`client_ip client_port server_ip
    server_port`): the address and port the user reached this box with."""
    env = dict(os.environ) if env is None else env
    user = user or getpass.getuser()
    local = local_port or port
    target = bracketed(client_host(host))
    parts = env.get("SSH_CONNECTION", "").split()
    note = ""
    if len(parts) == 4:
        address, ssh_port = parts[2], parts[3]
    else:
        address, ssh_port = socket.getfqdn(), "22"
        note = (f"not in an SSH session ($SSH_CONNECTION is unset): guessed {address};"
                " use the name your laptop reaches this machine by")
    argv = ["ssh", "-N", "-L", f"{local}:{target}:{port}"]
    if ssh_port != "22":
        argv += ["-p", ssh_port]
    argv.append(f"{user}@{address}")
    return LaptopCommand(tuple(argv), f"http://127.0.0.1:{local}", note)


def osc52(text: str, in_tmux: bool | None = None) -> str:
    """The escape sequence that puts `text` on the terminal's clipboard (OSC 52), which
    works over SSH. Inside tmux it is also wrapped for passthrough (tmux >= 3.3 needs
    `set -g allow-passthrough on`; with `set-clipboard on` tmux takes the plain one)."""
    payload = base64.b64encode(text.encode()).decode()
    plain = f"\x1b]52;c;{payload}\x07"
    if in_tmux is None:
        in_tmux = bool(os.environ.get("TMUX"))
    if not in_tmux:
        return plain
    return plain + "\x1bPtmux;" + plain.replace("\x1b", "\x1b\x1b") + "\x1b\\"
