"""Opening a server's tmux session. The pane first runs a small launcher with an empty
environment that waits on a fifo for the server's whole environment (lines, never argv, never
a file: the API key among them), so the log is piped to `server.log` before vLLM prints its
first byte; then it execs vLLM.

What vLLM's environment is (`server_environ`): vllmtui's own, less every profile's
`api_key_env` variable and the terminal's variables, plus the profile's `env:` and its key as
VLLM_API_KEY. Nothing of the tmux server's environment reaches it, and nothing of it reaches
tmux.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.tmux import SessionExists, Tmux
from vllmtui.profiles.launch import DEMO_PREFIX, SECRET_FIELDS, LaunchSpec
from vllmtui.profiles.model import LoadedProfile, Profile
from vllmtui.servers import runs

LAUNCHER = (
    'f=$1; shift; ok=0; while IFS= read -r line; do [ "$line" = "--go" ] && { ok=1; break; };'
    ' export "$line"; done < "$f"; rm -f "$f";'
    ' [ "$ok" = 1 ] || { echo "vllmtui: launch aborted before start" >&2; exit 111; };'
    ' exec "$@"'
)
# vllmtui's own variables that are not vLLM's: the terminal's and the shell's (tmux sets its own)
NOT_PASSED = frozenset({"TMUX", "TMUX_PANE", "TERM", "COLUMNS", "LINES", "PWD", "OLDPWD", "SHLVL", "_"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PANE_START_TIMEOUT = 10.0
"""Seconds a start waits for the pane's launcher to open its fifo."""


def ensure_demo_model(
    profile: Profile, spec: LaunchSpec, python: str | None, say: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> None:
    """Generate a `demo:` profile's model files when they are not there yet."""
    if profile.model.startswith(DEMO_PREFIX) and spec.model_path is not None:
        from vllmtui.models import demo as demo_model  # its argparse: for a demo profile only

        if not spec.model_path.exists():
            say(f"generating the demo model {spec.model_path}")
        demo_model.ensure_demo_model(
            spec.model_path, demo_model.shape_of(spec.model_path.name), python, env=env
        )


def secret_sources(profiles: Iterable[LoadedProfile]) -> frozenset[str]:
    """The variables of vllmtui's environment that hold a profile's API key (`api_key_env`)
    or its own Hugging Face token (`hf_token_env`; HF_TOKEN itself, which every Hugging Face
    tool reads, is still inherited by every server)."""
    names = {p.profile.api_key_env for p in profiles if p.profile.api_key_env}
    names |= {p.profile.hf_token_env for p in profiles if p.profile.hf_token_env}
    return frozenset(names - {"HF_TOKEN"})


def secret_values(spec: LaunchSpec) -> dict[str, str]:
    """The secrets the server gets through its environment, read from this one's."""
    secrets: dict[str, str] = {}
    for target, source in spec.secret_env.items():
        field_name, what = SECRET_FIELDS.get(target, ("env", "a secret"))
        value = os.environ.get(source)
        if not value:
            raise UsageError(f"{field_name}: environment variable {source} is not set")
        if "\n" in value or "\0" in value:
            raise UsageError(f"{field_name}: environment variable {source} holds a line break:"
                             f" {what} is one line")
        secrets[target] = value
    return secrets


def helper_environ(secrets: frozenset[str]) -> dict[str, str]:
    """vllmtui's environment less the API keys: for the helpers a start runs (the runtime's
    version, the demo model)."""
    return {k: v for k, v in os.environ.items() if k not in secrets}


def server_environ(
    spec: LaunchSpec, secrets: dict[str, str], deny: frozenset[str]
) -> dict[str, str]:
    """The server's whole environment: vllmtui's own, less the API key variables (`deny`),
    the terminal's variables and what cannot pass as one line; plus the profile's `env:`
    (which wins) and its secrets."""
    env = {
        k: v for k, v in os.environ.items()
        if k not in deny and k not in NOT_PASSED and _NAME.match(k) and "\n" not in v
    }
    for key, value in spec.env.items():
        if "\n" in value:
            raise UsageError(f"env.{key}: a value with a line break cannot be passed to vLLM:"
                             " write it on one line")
    env.update(spec.env)
    env.update(secrets)
    return env


def open_session(
    tmux: Tmux,
    name: str,
    profile: Profile,
    spec: LaunchSpec,
    environ: dict[str, str],
    make_run: Callable[[], Path],
    marks: dict[str, str] | None = None,
) -> Path:
    """Open the server's tmux session (atomic: the loser of a race changes nothing), make its
    run (`make_run`, only once the session is ours), its log (`server.log` from the first
    byte), then let the pane exec vLLM with `environ` (`release`). Returns the run directory.
    On any failure the half-started session and its run directory are removed: a run
    directory exists only for a launch that happened."""
    fifo_dir = Path(tempfile.mkdtemp(prefix="vllmtui-launch-"))
    fifo = fifo_dir / "env"
    os.mkfifo(fifo, 0o600)
    argv = ["/bin/sh", "-c", LAUNCHER, "vllmtui-launch", str(fifo), *spec.argv]
    options = {"kind": "server", "profile": profile.name, "host": profile.host,
               "port": str(profile.port), "started": f"{time.time():.3f}", **(marks or {})}
    try:
        try:
            tmux.new_session(name, argv, spec.env, str(spec.cwd), options=options, pane_env={})
        except SessionExists:
            raise VllmtuiError(
                f"{profile.name} was started by someone else a moment ago (tmux session {name})"
            ) from None
        return _launch(tmux, name, fifo, environ, make_run)
    finally:
        shutil.rmtree(fifo_dir, ignore_errors=True)


def _pane_text(tmux: Tmux, name: str) -> list[str]:
    try:
        return tmux.capture(name, 20)
    except VllmtuiError:
        return []


def _launch(
    tmux: Tmux, name: str, fifo: Path, environ: dict[str, str], make_run: Callable[[], Path]
) -> Path:
    run_dir: Path | None = None
    try:
        run_dir = make_run()
        tmux.set_options(name, {"run-dir": str(run_dir)})
        info = tmux.session(name)
        if info and info.pane_pid:
            tmux.set_options(name, {"pid": str(info.pane_pid)})
        tmux.pipe_to_file(name, str(run_dir / runs.LOG))
        release(fifo, environ, said=lambda: _pane_text(tmux, name))
    except BaseException as exc:
        # never leave a half-started session waiting on its fifo, nor a run that never ran
        gone = _gone_early(tmux, name) if isinstance(exc, VllmtuiError) else None
        tmux.kill_session(name)
        if run_dir is not None:
            runs.remove_run(run_dir)
        if gone is not None:
            raise VllmtuiError(gone) from None
        raise
    return run_dir


def _gone_early(tmux: Tmux, name: str) -> str | None:
    """Why the pane ended before vLLM started (what it printed last), or None if it lives."""
    info = tmux.session(name)
    if info is None or not info.dead:
        return None
    info = tmux.settled(info)  # tmux may not have reaped it yet: its status comes with that
    said: list[str] = []
    for _ in range(5):  # tmux may not have drawn the pane's last output yet
        said = [ln.strip() for ln in _pane_text(tmux, name)
                if ln.strip() and not ln.startswith("Pane is dead")]
        if said:
            break
        time.sleep(0.05)
    how = f"exit status {info.exit_code}" if info.exit_code is not None else "exited"
    return f"the server's pane ended before vLLM started ({how})" + (f": {said[-1]}" if said else "")


def release(
    fifo: Path, environ: dict[str, str], timeout: float | None = None,
    said: Callable[[], list[str]] | None = None,
) -> None:
    """Hand the server's environment to the waiting pane through its fifo (never argv, never
    a file), then let it exec vLLM. `said`: what the pane printed, for the error when it never
    opened the fifo (within `timeout`, default PANE_START_TIMEOUT)."""
    deadline = time.monotonic() + (PANE_START_TIMEOUT if timeout is None else timeout)
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                lines = [ln for ln in (said() if said else [])
                         if ln.strip() and not ln.startswith("Pane is dead")]
                extra = f": {lines[-1].strip()}" if lines else ""
                raise VllmtuiError(f"the server's pane did not start ({exc.strerror}){extra}") from None
            time.sleep(0.02)
    try:
        fifo.unlink(missing_ok=True)  # the pane has it open: nobody else ever will
        os.set_blocking(fd, True)
        payload = "".join(f"{k}={v}\n" for k, v in environ.items()) + "--go\n"
        data = payload.encode()
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
