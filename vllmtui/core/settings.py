"""Where things live (XDG via platformdirs), which tmux socket, how often to poll."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

APP = "vllmtui"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


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
    log_poll: float = 0.25
    """Seconds between two looks at the followed log while it grows."""
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

    @classmethod
    def from_env(
        cls,
        profiles_dirs: list[str] | None = None,
        state_dir: str | None = None,
        tmux_socket: str | None = None,
    ) -> Settings:
        """Settings from command-line values, then environment variables, then XDG defaults."""
        dirs: list[Path] = [Path(p).expanduser() for p in profiles_dirs or []]
        env_dirs = os.environ.get("VLLMTUI_PROFILES")
        if env_dirs:
            dirs += [Path(p).expanduser() for p in env_dirs.split(os.pathsep) if p]
        base = cls()
        state = Path(state_dir).expanduser() if state_dir else _env_path("VLLMTUI_STATE_DIR")
        data = _env_path("VLLMTUI_DATA_DIR")
        config = _env_path("VLLMTUI_CONFIG_DIR")
        dirs += [(config or base.config_dir) / "profiles", Path.cwd() / "profiles"]
        socket = tmux_socket or os.environ.get("VLLMTUI_TMUX_SOCKET") or None
        return replace(
            base,
            profiles_dirs=tuple(dict.fromkeys(dirs)),
            state_dir=state or base.state_dir,
            data_dir=data or base.data_dir,
            config_dir=config or base.config_dir,
            tmux_socket=socket,
        )

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def runtimes_file(self) -> Path:
        return self.config_dir / "runtimes.yaml"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"
