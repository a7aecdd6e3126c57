"""The only module that talks to tmux (through libtmux's command runner).

Everything vllmtui must remember about a session lives on the session as user options
(`@vllmtui-...`), so the tmux server is the single source of truth and two vllmtui
instances always agree. One `list-panes -a` call reads all of it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

import libtmux

from vllmtui.core.errors import VllmtuiError

SESSION_PREFIX = "vllmtui-"
OPTION_PREFIX = "@vllmtui-"
OPTION_KEYS = (
    "kind",
    "profile",
    "host",
    "port",
    "run-dir",
    "started",
    "stopping",
    "pid",
    "tunnel",
    "spec",
    "log",
)
# printable on purpose: tmux 3.4 prints control characters of -F formats escaped ("\\037")
_SEP = "|:vt:|"
_FIELDS = (
    "session_name",
    "session_created",
    "session_attached",
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
    "pane_dead_signal",
    "pane_current_command",
) + tuple(OPTION_PREFIX + k for k in OPTION_KEYS)


class TmuxError(VllmtuiError):
    """tmux refused or failed a command."""


class SessionExists(TmuxError):
    """A session of that name exists already (tmux refuses atomically)."""


@dataclass(frozen=True)
class SessionInfo:
    """One vllmtui tmux session (its first pane) as tmux reports it."""

    name: str
    created: float
    attached: bool
    pane_pid: int | None
    dead: bool
    dead_status: int | None
    dead_signal: int | None
    current_command: str
    options: dict[str, str] = field(default_factory=dict)

    def option(self, key: str) -> str | None:
        value = self.options.get(key)
        return value or None


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class Tmux:
    """A tmux server: the user's default one, or the one on `socket` (tests use their own)."""

    def __init__(self, socket: str | None = None):
        self.socket = socket
        self.server = libtmux.Server(socket_name=socket) if socket else libtmux.Server()

    # -- plumbing

    def base_argv(self) -> list[str]:
        """argv prefix for running tmux against this server (for attach, pipe-pane...)."""
        return ["tmux", "-L", self.socket] if self.socket else ["tmux"]

    def run(self, *args: str, check: bool = True) -> list[str]:
        """Run one tmux command; returns stdout lines, raises TmuxError on failure."""
        try:
            result = self.server.cmd(*args)
        except FileNotFoundError:
            raise TmuxError("tmux is not installed: install it (apt install tmux)") from None
        stderr = [line for line in (result.stderr or []) if line]
        if check and (result.returncode not in (0, None) or stderr):
            message = "; ".join(stderr) or f"exit status {result.returncode}"
            if "duplicate session" in message:
                raise SessionExists(message)
            raise TmuxError(f"tmux {args[0]}: {message}")
        return list(result.stdout or [])

    def _no_server(self, message: str) -> bool:
        # "no current target": the server is exiting (its last session just closed)
        return any(
            s in message
            for s in ("no server running", "error connecting", "No such file", "no current target")
        )

    # -- reading

    def sessions(self) -> list[SessionInfo]:
        """Every vllmtui session (first pane of each). No tmux server: an empty list."""
        fmt = _SEP.join("#{" + f + "}" for f in _FIELDS)
        try:
            lines = self.run("list-panes", "-a", "-F", fmt)
        except TmuxError as exc:
            if self._no_server(str(exc)):
                return []
            raise
        seen: dict[str, SessionInfo] = {}
        for line in lines:
            parts = line.split(_SEP)
            if len(parts) != len(_FIELDS) or not parts[0].startswith(SESSION_PREFIX):
                continue
            name = parts[0]
            if name in seen:
                continue
            options = {k: v for k, v in zip(OPTION_KEYS, parts[8:], strict=True) if v}
            seen[name] = SessionInfo(
                name=name,
                created=float(parts[1] or 0),
                attached=parts[2] not in ("", "0"),
                pane_pid=_int(parts[3]),
                dead=parts[4] == "1",
                dead_status=_int(parts[5]),
                dead_signal=_int(parts[6]),
                current_command=parts[7],
                options=options,
            )
        return list(seen.values())

    def session(self, name: str) -> SessionInfo | None:
        for info in self.sessions():
            if info.name == name:
                return info
        return None

    def capture(self, name: str, lines: int = 50) -> list[str]:
        """The last `lines` lines of the session's screen (plain text)."""
        return self.run("capture-pane", "-p", "-J", "-t", name + ":", "-S", f"-{lines}")

    # -- writing

    def new_session(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        width: int = 200,
        height: int = 50,
        options: dict[str, str] | None = None,
    ) -> None:
        """Create a detached session running argv directly (no shell). Atomic: raises
        SessionExists when the name is taken, whoever took it. `options` (@vllmtui-KEY)
        are set by the same tmux command, so no reader ever sees the session without them."""
        args = ["new-session", "-d", "-s", name, "-x", str(width), "-y", str(height)]
        if cwd:
            args += ["-c", cwd]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        # tmux ends a command at any argument ending in ';' (eating the ';'); '\\;' keeps it
        argv = [a[:-1] + "\\;" if a.endswith(";") else a for a in argv]
        # in the same command: a pane that exits at once still stays (remain-on-exit)
        tail = [";", "set-option", "-w", "-t", name + ":", "remain-on-exit", "on"]
        for key, value in (options or {}).items():
            value = value[:-1] + "\\;" if value.endswith(";") else value
            tail += [";", "set-option", "-t", name, OPTION_PREFIX + key, value]
        self.run(*args, "--", *argv, *tail)
        # the user's tmux.conf must not destroy or resize what we start
        self.run("set-option", "-t", name, "destroy-unattached", "off", check=False)

    def set_options(self, name: str, options: dict[str, str]) -> None:
        for key, value in options.items():
            self.run("set-option", "-t", name, OPTION_PREFIX + key, value)

    def unset_option(self, name: str, key: str) -> None:
        self.run("set-option", "-u", "-t", name, OPTION_PREFIX + key, check=False)

    def pipe_to_file(self, name: str, path: str) -> None:
        """Append every byte the pane prints to `path`."""
        self.run("pipe-pane", "-o", "-t", name + ":", "cat >> " + shlex.quote(path))

    def send_keys(self, name: str, *keys: str) -> None:
        self.run("send-keys", "-t", name + ":", *keys)

    def kill_session(self, name: str) -> bool:
        """Remove a session; False when it was already gone."""
        try:
            self.run("kill-session", "-t", "=" + name)
        except TmuxError as exc:
            if "can't find session" in str(exc) or self._no_server(str(exc)):
                return False
            raise
        return True

    def attach_argv(self, name: str) -> list[str]:
        """The command that puts the user's terminal on the session: switch-client
        when already inside this tmux server, attach otherwise."""
        current = os.environ.get("TMUX", "").split(",")[0]
        inside = bool(current) and os.path.basename(current) == (self.socket or "default")
        if inside:
            return [*self.base_argv(), "switch-client", "-t", name]
        # inside another tmux server, tmux refuses to nest unless $TMUX is unset
        prefix = ["env", "-u", "TMUX"] if current else []
        return [*prefix, *self.base_argv(), "attach-session", "-t", name]

    def attach(self, name: str) -> int:
        """Put the user's terminal on the session until they detach (the caller hands over
        the terminal first, e.g. Textual's App.suspend()); returns tmux's exit status."""
        import subprocess

        try:
            return subprocess.run(self.attach_argv(name), check=False).returncode
        except FileNotFoundError:
            raise TmuxError("tmux is not installed: install it (apt install tmux)") from None
