"""One server across several machines (a profile's `nodes:`): each node's process in a tmux
session on its host, started, watched and stopped together (docs/multinode.md)."""
