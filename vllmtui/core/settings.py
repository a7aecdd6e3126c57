"""Where things live (XDG via platformdirs), which tmux socket, how often to poll."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from vllmtui.core.box_settings import read_box_settings

APP = "vllmtui"
SENT_PROFILES = "sent-profiles"
"""The directory (in the config dir) where profiles sent from another machine are kept."""


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return _absolute(value) if value else None


def _absolute(value: str) -> Path:
    """A configured path, absolute (tmux panes and other vllmtui instances run elsewhere)."""
    return Path(value).expanduser().absolute()


@dataclass(frozen=True)
class Settings:
    """Resolved locations and intervals; built once by the CLI and passed everywhere."""

    profiles_dirs: tuple[Path, ...] = ()
    state_dir: Path = field(default_factory=lambda: Path(platformdirs.user_state_dir(APP)))
    config_dir: Path = field(default_factory=lambda: Path(platformdirs.user_config_dir(APP)))
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir(APP)))
    tmux_socket: str | None = None
    """tmux socket name (`tmux -L`); None: the user's default tmux server."""
    health_timeout: float = 1.0
    """Seconds a status read waits for a server's /health before calling it unhealthy."""
    poll_interval: float = 1.0
    """Seconds between two readings of every server's status (tmux sessions, /health)."""
    profile_reload: float = 5.0
    """Seconds between two re-reads of the profile files, so edits made elsewhere show up."""
    log_poll: float = 0.1
    """Seconds between two looks at the followed log while it grows (a quiet one: less and less
    often, up to `log_poll_idle`)."""
    log_poll_idle: float = 1.0
    """The longest wait between two looks at a quiet log (the wait doubles up to this)."""
    gpu_poll: float = 2.0
    """Seconds between GPU readings while the GPU tab is shown."""
    gpu_poll_hidden: float = 5.0
    """Seconds between GPU readings otherwise (header and table cells; a reading walks every process)."""
    metrics_selected: float = 2.0
    """Seconds between /metrics scrapes of the selected server (a real parse costs ~5 ms of CPU)."""
    metrics_others: float = 10.0
    """Seconds between /metrics scrapes of the servers not selected (their table cells)."""
    metrics_timeout: float = 1.0
    """Seconds a /metrics scrape may take before the reading is marked stale."""
    tunnels_poll: float = 5.0
    """Seconds between two readings of the tunnels' states."""
    probes_poll: float = 5.0
    """Seconds between two readings of every server's last probe (the table's LAST PROBE column)."""
    models_poll: float = 15.0
    """Seconds between two readings of the model files (the Models tab, only while it is shown)."""
    host_timeout: float = 3.0
    """Seconds a host's reading (over ssh) may take before the host shows `unreachable`."""
    ssh_control_dir: Path | None = None
    """Where the SSH control sockets live (one multiplexed connection per host); None:
    `$VLLMTUI_SSH_CONTROL_DIR` or /tmp/vllmtui-ssh-UID (a socket path must be short)."""
    offline: bool = False
    """Box-wide offline mode: servers get HF_HUB_OFFLINE=1 unless a profile says `offline: false`
    (`$VLLMTUI_OFFLINE=1`, or `offline: true` in <config dir>/settings.yaml; docs/models.md)."""
    offline_from: str = ""
    """Where `offline` was switched on (`$VLLMTUI_OFFLINE` or `settings.yaml:LINE`), for messages."""

    @classmethod
    def from_env(
        cls,
        profiles_dirs: list[str] | None = None,
        state_dir: str | None = None,
        tmux_socket: str | None = None,
    ) -> Settings:
        """Settings from command-line values, then environment variables, then XDG defaults."""
        dirs: list[Path] = [_absolute(p) for p in profiles_dirs or []]
        env_dirs = os.environ.get("VLLMTUI_PROFILES")
        if env_dirs:
            dirs += [_absolute(p) for p in env_dirs.split(os.pathsep) if p]
        base = cls()
        state = _absolute(state_dir) if state_dir else _env_path("VLLMTUI_STATE_DIR")
        data = _env_path("VLLMTUI_DATA_DIR")
        config = _env_path("VLLMTUI_CONFIG_DIR")
        # a host's own profiles first; the ones a laptop sent (`start --host`) last
        dirs += [(config or base.config_dir) / "profiles", Path.cwd() / "profiles",
                 (config or base.config_dir) / SENT_PROFILES]
        socket = tmux_socket or os.environ.get("VLLMTUI_TMUX_SOCKET") or None
        box = read_box_settings(config or base.config_dir)
        return replace(
            base,
            profiles_dirs=tuple(dict.fromkeys(dirs)),
            state_dir=state or base.state_dir,
            data_dir=data or base.data_dir,
            config_dir=config or base.config_dir,
            tmux_socket=socket,
            offline=box.offline,
            offline_from=box.offline_from,
        )

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def runtimes_file(self) -> Path:
        return self.config_dir / "runtimes.yaml"

    @property
    def settings_file(self) -> Path:
        """The box-wide settings (`offline:`), read by `from_env`."""
        return self.config_dir / "settings.yaml"

    @property
    def sent_profiles_dir(self) -> Path:
        """Profiles another machine's vllmtui sent here to start them (`start --host`)."""
        return self.config_dir / SENT_PROFILES

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def check_dirs(settings: Settings, state_option: str | None = None,
               profiles_options: list[str] | None = None) -> list[str]:
    """What is wrong with the configured directories, one line each naming the directory, the
    option or variable it came from and the fix; [] when nothing is. A directory that is a
    file, or that cannot be created (`/proc/x`, a file on its path), is wrong; the state
    directory is also made here (`runs/` and the rest go in it) and must be writable. A
    `--profiles-dir` must exist. The profiles directory of the working directory is not
    vllmtui's: a file there is ignored."""
    problems: list[str] = []
    state = "--state-dir" if state_option else _label("VLLMTUI_STATE_DIR", "state directory")
    state_fix = "give a writable directory with --state-dir DIR or $VLLMTUI_STATE_DIR"
    config = _label("VLLMTUI_CONFIG_DIR", "config directory")
    config_fix = "point $VLLMTUI_CONFIG_DIR at a directory"
    checks = [
        (settings.state_dir, state, state_fix),
        (settings.config_dir, config, config_fix),
        (settings.config_dir / "profiles", "the profiles directory",
         "move that file away: profiles go in a directory of that name"),
        (settings.data_dir, _label("VLLMTUI_DATA_DIR", "data directory"),
         "point $VLLMTUI_DATA_DIR at a directory"),
    ]
    explicit = [_absolute(p) for p in profiles_options or []]
    for path in explicit:
        checks.append((path, "--profiles-dir", "give a directory of profiles"))
    env_dirs = [_absolute(p) for p in os.environ.get("VLLMTUI_PROFILES", "").split(os.pathsep) if p]
    for path in env_dirs:
        checks.append((path, "$VLLMTUI_PROFILES", "list directories of profiles there"))
    wrong: list[Path] = []
    for path, label, fix in checks:
        if any(path.is_relative_to(w) for w in wrong):
            continue  # said already: a directory above it is wrong
        problem = _dir_problem(path)
        if problem is None and path in explicit and not path.exists():
            problem = "does not exist"
        if problem is not None:
            wrong.append(path)
            problems.append(f"{label} {path} {problem}: {fix}")
    if not problems:
        problem = _make_dir(settings.state_dir)
        if problem is not None:
            problems.append(f"{state} {settings.state_dir} {problem}: {state_fix}")
    return list(dict.fromkeys(problems))


def _label(variable: str, default: str) -> str:
    return f"${variable}" if os.environ.get(variable) else f"the {default}"


def _dir_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) a directory, without changing anything."""
    try:
        if path.exists():
            return None if path.is_dir() else "is a file, not a directory"
        for parent in path.parents:
            if parent.exists():
                return None if parent.is_dir() else f"cannot be created: {parent} is a file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    return None


def _make_dir(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable"
    return None
