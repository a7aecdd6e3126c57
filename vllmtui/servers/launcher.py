"""Opening a server's tmux session. The pane first runs a small launcher that waits on a fifo
for the server's secrets (environment lines, never argv, never a file), so the log is piped
to `server.log` before vLLM prints its first byte; then it execs vLLM."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.core.tmux import SessionExists, Tmux
from vllmtui.models import demo as demo_model
from vllmtui.profiles.launch import DEMO_PREFIX, LaunchSpec
from vllmtui.profiles.model import Profile
from vllmtui.servers import runs

LAUNCHER = (
    'f=$1; shift; ok=0; while IFS= read -r line; do [ "$line" = "--go" ] && { ok=1; break; };'
    ' export "$line"; done < "$f"; rm -f "$f";'
    ' [ "$ok" = 1 ] || { echo "vllmtui: launch aborted before start" >&2; exit 111; };'
    ' exec "$@"'
)


def ensure_demo_model(
    profile: Profile, spec: LaunchSpec, python: str | None, say: Callable[[str], None]
) -> None:
    """Generate a `demo:` profile's model files when they are not there yet."""
    if profile.model.startswith(DEMO_PREFIX) and spec.model_path is not None:
        if not spec.model_path.exists():
            say(f"generating the demo model {spec.model_path}")
        demo_model.ensure_demo_model(
            spec.model_path, demo_model.shape_of(spec.model_path.name), python
        )


def secret_values(spec: LaunchSpec) -> dict[str, str]:
    """The secrets the server gets through its environment, read from this one's."""
    secrets: dict[str, str] = {}
    for target, source in spec.secret_env.items():
        value = os.environ.get(source)
        if not value:
            raise UsageError(f"api_key_env: environment variable {source} is not set")
        secrets[target] = value
    return secrets


def open_session(
    tmux: Tmux, name: str, profile: Profile, spec: LaunchSpec, run_dir: Path, secrets: dict[str, str]
) -> None:
    """Open the server's tmux session: its options, its log (`server.log` from the first
    byte), then let the pane exec vLLM with its secrets (`release`). On any failure the
    half-started session is removed."""
    fifo = run_dir / ".launch"
    os.mkfifo(fifo, 0o600)
    argv = ["sh", "-c", LAUNCHER, "vllmtui-launch", str(fifo), *spec.argv]
    try:
        tmux.new_session(name, argv, spec.env, str(spec.cwd))
    except SessionExists:
        fifo.unlink(missing_ok=True)
        raise VllmtuiError(
            f"{profile.name} was started by someone else a moment ago (tmux session {name})"
        ) from None
    try:
        tmux.set_options(
            name,
            {
                "kind": "server",
                "profile": profile.name,
                "host": profile.host,
                "port": str(profile.port),
                "run-dir": str(run_dir),
                "started": f"{time.time():.3f}",
            },
        )
        info = tmux.session(name)
        if info and info.pane_pid:
            tmux.set_options(name, {"pid": str(info.pane_pid)})
        tmux.pipe_to_file(name, str(run_dir / runs.LOG))
        release(fifo, secrets)
    except BaseException:
        # never leave a half-started session waiting on its fifo
        tmux.kill_session(name)
        fifo.unlink(missing_ok=True)
        raise


def release(fifo: Path, secrets: dict[str, str], timeout: float = 10.0) -> None:
    """Hand secrets to the waiting pane through its fifo (never argv, never a file), then
    let it exec vLLM. The fifo is read by the pane and removed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise VllmtuiError(f"the server's pane did not start ({exc.strerror})") from None
            time.sleep(0.02)
    try:
        os.set_blocking(fd, True)
        payload = "".join(f"{k}={v}\n" for k, v in secrets.items()) + "--go\n"
        os.write(fd, payload.encode())
    finally:
        os.close(fd)
