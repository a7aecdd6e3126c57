#!/usr/bin/env bash
# The front door: set up (or reuse) everything, then run vllmtui with any arguments.
#   scripts/run.sh                 the TUI
#   scripts/run.sh start tiny-cpu --wait
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec .venv/bin/vllmtui "$@"
