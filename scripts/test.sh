#!/usr/bin/env bash
# Set up (or reuse) everything, including the system packages the tests need (tmux, OpenSSH)
# and the real vLLM CPU runtime, then run the whole test suite (end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
bash scripts/setup.sh --dev
.venv/bin/vllmtui demo-model >/dev/null
echo "lint: ruff, mypy --strict, import-linter (the layers of docs/architecture.md)"
.venv/bin/ruff check .
.venv/bin/mypy vllmtui  # strict: see pyproject.toml
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
