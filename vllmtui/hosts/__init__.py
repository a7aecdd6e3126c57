"""Many boxes: the hosts of `hosts.yaml` (and `local`), reached over one multiplexed SSH
connection each, where vllmtui itself answers JSON commands (docs/hosts.md).

- `config`: `hosts.yaml` -> `HostConfig`s, with file:line messages.
- `ssh`: the ssh command lines (ControlMaster, BatchMode, keepalives) and `Link`, one
  `vllmtui hosts serve` session per host answering JSON lines.
- `serve`: the host's side: what one report holds, and the serve loop.
- `fleet`: `Hosts`, the API the CLI and the TUI use: `read()` every host in parallel,
  `run()` a command there, `attach_argv()`, `forward()` a remote port here.
- `sending`: which profile wins (the host's own or the laptop's) and sending one.
- `install`: `vllmtui hosts install NAME` (the same version in a venv on the host).
"""
