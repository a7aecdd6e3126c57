#!/usr/bin/env bash
# Set up (or reuse) everything, including the system packages the tests need (tmux, OpenSSH)
# and the real vLLM CPU runtime, then run the whole test suite (end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
bash scripts/setup.sh --dev
.venv/bin/vllmtui demo-model >/dev/null
echo "lint: ruff and mypy"
.venv/bin/ruff check .
.venv/bin/mypy vllmtui
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
