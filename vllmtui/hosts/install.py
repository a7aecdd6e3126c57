"""`vllmtui hosts install NAME`: this very vllmtui version in a venv on the host.

A wheel of this vllmtui is built here (`pip wheel --no-deps`, from the checkout it runs
from) or taken from `--wheel`; it goes to the host over the host's ssh connection, where
`python3 -m venv ~/.local/share/vllmtui/venv` and that venv's pip install it, its
dependencies coming from the package index the HOST reaches (`--pip-args` adds options,
e.g. `--no-index --find-links DIR` for an offline host).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import vllmtui
from vllmtui import __version__
from vllmtui.core.errors import UsageError, VllmtuiError
from vllmtui.hosts.config import DEFAULT_VLLMTUI, HostConfig
from vllmtui.hosts.ssh import ssh_argv

VENV = "~/.local/share/vllmtui/venv"
WHEELS = "~/.local/share/vllmtui/wheels"


def checkout() -> Path | None:
    """The source tree this vllmtui runs from (an editable install), or None."""
    root = Path(vllmtui.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def build_wheel(out: Path) -> Path:
    """A wheel of this vllmtui (no dependencies), built from its checkout."""
    root = checkout()
    if root is None:
        raise UsageError(f"vllmtui {__version__} here is not a source checkout, so no wheel can be built:"
                         f" give one with --wheel (pip download --no-deps vllmtui=={__version__})")
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    wheels = sorted(out.glob("vllmtui-*.whl"))
    if done.returncode != 0 or not wheels:
        raise VllmtuiError(f"pip wheel failed: {done.stderr.strip()[-500:]}")
    return wheels[-1]


def install_script(wheel_name: str, python: str, pip_args: str) -> str:
    """The shell script the host runs (stdin holds the wheel's bytes)."""
    wheel = f"{WHEELS}/{shlex.quote(wheel_name)}"
    pip = f"{VENV}/bin/python -m pip install -q --disable-pip-version-check"
    return "; ".join([
        "set -e",
        f"mkdir -p {WHEELS}",
        f"cat > {wheel}",
        f"test -x {VENV}/bin/python || {shlex.quote(python)} -m venv {VENV}",
        # the same version again replaces its files; then its dependencies, from the host's index
        f"{pip} --force-reinstall --no-deps {wheel}",
        f"{pip} {pip_args} {wheel}",
        f"{VENV}/bin/vllmtui --version",
    ])


def install(host: HostConfig, directory: Path, wheel: Path | None = None, python: str = "python3",
            pip_args: str = "", on_progress: Callable[[str], None] = print) -> str:
    """Install this vllmtui version on `host`; what `vllmtui --version` says there."""
    if host.is_local:
        raise UsageError("`local` is this machine: vllmtui is here already")
    with tempfile.TemporaryDirectory(prefix="vllmtui-wheel-") as tmp:
        if wheel is None:
            on_progress(f"building a wheel of vllmtui {__version__} ...")
            wheel = build_wheel(Path(tmp))
        elif not wheel.is_file():
            raise UsageError(f"--wheel {wheel}: no such file")
        on_progress(f"sending {wheel.name} to {host.name} and installing it in {VENV} ...")
        script = install_script(wheel.name, python, pip_args)
        with wheel.open("rb") as fh:
            done = subprocess.run([*ssh_argv(host, directory), f"sh -c {shlex.quote(script)}"],
                                  stdin=fh, capture_output=True, timeout=900)
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[-1500:]
        raise VllmtuiError(f"installing on {host.name} failed (exit {done.returncode}):\n{err}")
    version = out.splitlines()[-1] if out else "?"
    if host.vllmtui != DEFAULT_VLLMTUI:
        on_progress(f"note: hosts.yaml sets vllmtui: {host.vllmtui} for {host.name}; the new one is"
                    f" {VENV}/bin/vllmtui (remove `vllmtui:` to use it)")
    return version
