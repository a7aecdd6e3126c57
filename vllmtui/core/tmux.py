"""The only module that talks to tmux.

Everything vllmtui must remember about a session lives on the session as user options
(`@vllmtui-...`), so the tmux server is the single source of truth and two vllmtui
instances always agree. One `list-panes -a` call reads all of it.

Secrets never reach tmux: every tmux client runs with `client_environ()` (a short allow-list
of vllmtui's environment), so a tmux server that vllmtui starts holds no secret in its own or
its global environment; a pane started with `pane_env` gets exactly that environment (plus
tmux's TERM, TMUX, TMUX_PANE), whatever the tmux server's global environment holds; and the
log pipe (`pipe_to_file`) runs `cat` with an empty environment.

A long-lived reader (the TUI) makes its `Tmux(persistent=True)`: its readings then go through
one control-mode client (`tmux_control.py`) instead of a `tmux` process each; when that client
is gone, a reading takes a process again (and the next one reconnects).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.tmux_control import ControlClient, ControlClosed, ControlError

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
    "managed-by",  # "gateway": a server the gateway started (it may sleep, stop or swap it)
    "restarts",  # times the gateway restarted the server after a crash
    "asleep",  # the sleep level while the gateway has a server asleep
    "url",  # the gateway's base URL
    "container",  # a server in a container: its name (core.containers)
    "container-engine",  # and the engine's executable that runs it
)
# printable on purpose: tmux 3.4 prints control characters of -F formats escaped ("\\037")
_SEP = "|:vt:|"
# What a tmux client (and so a tmux server vllmtui starts, and its global environment) gets of
# vllmtui's environment: where tmux finds its socket and config, locale, the user's terminal,
# display and SSH agent. Nothing else: an API key can have any name, so no deny-list would do.
CLIENT_ENV = (
    "HOME", "PATH", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM",
    "TMUX", "TMUX_TMPDIR", "TMPDIR", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DISPLAY",
    "WAYLAND_DISPLAY", "XAUTHORITY", "WINDOWID", "SSH_AUTH_SOCK", "SSH_AGENT_PID",
    "SSH_CONNECTION", "SSH_ASKPASS", "KRB5CCNAME",
)
TMUX_OWN = ("TERM", "TMUX", "TMUX_PANE")
"""What tmux sets in each pane itself (vllmtui's own values are of another terminal)."""
ENV = shutil.which("env") or "/usr/bin/env"
# a pane with its own environment: tmux's own variables, then exactly the given ones
_EXACT_ENV = f'exec {ENV} -i TERM="$TERM" TMUX="$TMUX" TMUX_PANE="$TMUX_PANE" "$@"'


def client_environ(
    environ: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()
) -> dict[str, str]:
    """The allow-listed part of `environ` (default: this process's): `CLIENT_ENV`, `LC_*`
    and the names in `extra`."""
    source = os.environ if environ is None else environ
    names = CLIENT_ENV + extra
    return {k: v for k, v in source.items() if k in names or k.startswith("LC_")}


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

    @property
    def exit_code(self) -> int | None:
        """A dead pane's exit status as a shell reports it: the process's own status, or
        128 + the signal that killed it (SIGKILL: 137). None while the pane lives."""
        if not self.dead:
            return None
        if self.dead_status is not None:
            return self.dead_status
        return 128 + self.dead_signal if self.dead_signal else None


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class Tmux:
    """A tmux server: the user's default one, or the one on `socket` (tests use their own)."""

    def __init__(self, socket: str | None = None, persistent: bool = False):
        self.socket = socket
        self.persistent = persistent
        self._control: ControlClient | None = None
        self._connecting = threading.Lock()

    def close(self) -> None:
        """End the control-mode client, if there is one, and read by processes from now on."""
        self.persistent = False
        client, self._control = self._control, None
        if client is not None:
            client.close()

    # -- plumbing

    def base_argv(self) -> list[str]:
        """argv prefix for running tmux against this server (for attach, pipe-pane...)."""
        return ["tmux", "-L", self.socket] if self.socket else ["tmux"]

    def run(self, *args: str, check: bool = True) -> list[str]:
        """Run one tmux command, its client with `client_environ()` (every client: the first
        starts the tmux server, which keeps that environment for good, and no tmux client
        process may hold a secret either); returns stdout lines, raises TmuxError on failure.
        Not libtmux's command runner: it hands the client all of our environment, and the soak
        found the API key in the environment of those short-lived clients."""
        try:
            done = subprocess.run(
                [*self.base_argv(), *args], capture_output=True, text=True,
                errors="backslashreplace", env=client_environ(), check=False,
            )
        except FileNotFoundError:
            raise TmuxError("tmux is not installed: install it (apt install tmux)") from None
        stderr = [line for line in done.stderr.splitlines() if line]
        if check and (done.returncode != 0 or stderr):
            message = "; ".join(stderr) or f"exit status {done.returncode}"
            if "duplicate session" in message:
                raise SessionExists(message)
            raise TmuxError(f"tmux {args[0]}: {message}")
        out = done.stdout.splitlines()
        while out and not out[-1]:
            out.pop()
        return out

    def _no_server(self, message: str) -> bool:
        # "no current target": the server is exiting (its last session just closed)
        return any(
            s in message
            for s in ("no server running", "error connecting", "No such file", "no current target")
        )

    def _read(self, *args: str) -> tuple[list[str], str | None]:
        """A reading command's output lines, and the session the control client that read it
        is attached to (None: read by a process of its own)."""
        client = self._control
        if client is not None:
            try:
                out = client.command(args)
            except ControlError as exc:
                raise TmuxError(f"tmux {args[0]}: {exc}") from None
            except ControlClosed:
                self._control = None
            else:
                while out and not out[-1]:
                    out.pop()
                return out, client.session
        return self.run(*args), None

    def _connect(self, names: list[str]) -> None:
        """A persistent Tmux without a control client starts one, attached to one of these
        sessions (never a user's own); it is tried again at the next reading if it fails."""
        if not self.persistent or self._control is not None or not names:
            return
        if not self._connecting.acquire(blocking=False):
            return  # another thread is at it
        try:
            self._control = ControlClient(self.base_argv(), names[0], client_environ())
        except (ControlError, ControlClosed, OSError):
            self._control = None
        finally:
            self._connecting.release()

    # -- reading

    def sessions(self) -> list[SessionInfo]:
        """Every vllmtui session (first pane of each). No tmux server: an empty list."""
        fmt = _SEP.join("#{" + f + "}" for f in _FIELDS)
        try:
            lines, own = self._read("list-panes", "-a", "-F", fmt)
        except TmuxError as exc:
            if self._no_server(str(exc)):
                return []
            raise
        seen = self._parse(lines, own)
        if own is None:
            self._connect(list(seen))
        return list(seen.values())

    def _parse(self, lines: list[str], own: str | None) -> dict[str, SessionInfo]:
        """`list-panes -a` lines -> sessions by name; `own`: the session the control client is
        attached to (it does not count as attached)."""
        seen: dict[str, SessionInfo] = {}
        for line in lines:
            parts = line.split(_SEP)
            if len(parts) != len(_FIELDS) or not parts[0].startswith(SESSION_PREFIX):
                continue
            name = parts[0]
            if name in seen:
                continue
            options = {k: v for k, v in zip(OPTION_KEYS, parts[8:], strict=True) if v}
            attached = _int(parts[2]) or 0
            seen[name] = SessionInfo(
                name=name,
                created=float(parts[1] or 0),
                attached=attached > (1 if name == own else 0),
                pane_pid=_int(parts[3]),
                dead=parts[4] == "1",
                dead_status=_int(parts[5]),
                dead_signal=_int(parts[6]),
                current_command=parts[7],
                options=options,
            )
        return seen

    def session(self, name: str) -> SessionInfo | None:
        for info in self.sessions():
            if info.name == name:
                return info
        return None

    def settled(self, info: SessionInfo, wait: float = 0.5) -> SessionInfo:
        """A dead pane's session once tmux has its exit status; a live pane's, or one with a
        status, as it is. tmux reports a pane dead when its terminal closes, and records how
        it ended when it reaps the process on SIGCHLD; tmux before 3.5 can miss that SIGCHLD
        and leave the process a zombie, the pane dead with neither status nor signal, for
        good. A SIGCHLD sent to the tmux server makes it reap (it is what tmux waits for, and
        harmless). As it is after `wait` s."""
        if not info.dead or info.dead_status is not None or info.dead_signal:
            return info
        server = _int("".join(self.run("display-message", "-p", "#{pid}", check=False)))
        deadline = time.monotonic() + wait
        while info.dead and info.dead_status is None and not info.dead_signal:
            if time.monotonic() >= deadline:
                break
            if server:
                with contextlib.suppress(OSError):
                    os.kill(server, signal.SIGCHLD)
            time.sleep(0.02)
            again = self.session(info.name)
            if again is None or again.pane_pid != info.pane_pid:
                break
            info = again
        return info

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
        pane_env: dict[str, str] | None = None,
    ) -> None:
        """Create a detached session running argv directly (no shell). Atomic: raises
        SessionExists when the name is taken, whoever took it. `options` (@vllmtui-KEY)
        are set by the same tmux command, so no reader ever sees the session without them.
        `env` goes into the session's environment (`show-environment -t`: never a secret).
        With `pane_env`, the pane runs with exactly that environment (plus tmux's TERM, TMUX
        and TMUX_PANE), nothing of the tmux server's; its values pass through argv for a
        moment: never a secret either."""
        args = ["new-session", "-d", "-s", name, "-x", str(width), "-y", str(height)]
        if cwd:
            args += ["-c", cwd]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if pane_env is not None:
            argv = ["/bin/sh", "-c", _EXACT_ENV, "vllmtui-env",
                    *(f"{k}={v}" for k, v in pane_env.items() if k not in TMUX_OWN), *argv]
        # tmux ends a command at any argument ending in ';' (eating the ';'); '\\;' keeps it
        argv = [a[:-1] + "\\;" if a.endswith(";") else a for a in argv]
        # in the same command: a pane that exits at once still stays (remain-on-exit)
        tail = [";", "set-option", "-w", "-t", name + ":", "remain-on-exit", "on"]
        for key, value in (options or {}).items():
            value = value[:-1] + "\\;" if value.endswith(";") else value
            tail += [";", "set-option", "-t", name, OPTION_PREFIX + key, value]
        self.run(*args, "--", *argv, *tail)  # may start the tmux server
        # the user's tmux.conf must not destroy or resize what we start
        self.run("set-option", "-t", name, "destroy-unattached", "off", check=False)

    def set_options(self, name: str, options: dict[str, str]) -> None:
        for key, value in options.items():
            self.run("set-option", "-t", name, OPTION_PREFIX + key, value)

    def unset_option(self, name: str, key: str) -> None:
        self.run("set-option", "-u", "-t", name, OPTION_PREFIX + key, check=False)

    def pipe_to_file(self, name: str, path: str) -> None:
        """Append every byte the pane prints to `path`. The `cat` runs with an empty
        environment (tmux would hand it the tmux server's own)."""
        command = f"exec {shlex.quote(ENV)} -i cat >> {shlex.quote(path)}"
        self.run("pipe-pane", "-o", "-t", name + ":", command)

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
