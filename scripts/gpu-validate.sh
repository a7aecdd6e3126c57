#!/usr/bin/env bash
# vllmtui driving a real vLLM (CUDA build, 0.26 from ../shared/gpu) on a GPU machine, end to end,
# through vllmtui's own commands and its TUI in tmux. Run from the repository root on the GPU box
# after the vLLM bundle is installed (see docs/gpu-validation.md). Writes everything to $OUT (or ./gpu-out).
#
# Needs: python3 with vLLM importable, tmux, vllmtui's dependencies on PYTHONPATH.
#
#   scripts/gpu-validate.sh                  the base run: start, phases, plan, probes, stop, reap
#   scripts/gpu-validate.sh gateway|bench|moe
#       the gateway on two real servers (on-demand start, sleep mode, GPU-aware swap, chat with a
#       tool from a real MCP server, forced stop and reaping of a sleeping and a gateway-started
#       server), its overhead figures, the planner on a mixture of experts: each part fits one
#       10-minute device call (scripts/gpu_validate_gateway.py; docs/gpu-validation.md)
set -uo pipefail
case "${1:-}" in
  gateway|bench|moe) export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; exec python3 scripts/gpu_validate_gateway.py "$@" ;;
esac
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLLM_USE_FLASHINFER_SAMPLER=0
export VLLMTUI_STATE_DIR=/tmp/vt-state VLLMTUI_PROFILES=/tmp/vt-profiles VLLMTUI_CONFIG_DIR=/tmp/vt-config
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
V="python3 -m vllmtui"
say() { printf '\n===== %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
smi() { nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader; \
        nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader; }

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
tmux -V; python3 -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)'

say "a 7B architecture with random weights (Qwen2.5-7B config.json + a generated tokenizer)"
$V demo-model --from-config tests/data/configs/Qwen2.5-7B.json --dest /tmp/qwen7b-dummy --python python3
mkdir -p "$VLLMTUI_PROFILES"
cat > "$VLLMTUI_PROFILES/qwen7b-gpu.yaml" <<'EOF'
description: Qwen2.5-7B architecture, random weights, H100
model: /tmp/qwen7b-dummy
served_model_name: qwen7b
port: 8000
gpus: [0]
load_format: dummy
gpu_memory_utilization: 0.90
max_model_len: 8192
enable_auto_tool_choice: true
tool_call_parser: hermes
runtime: {python: python3, entrypoint: module}
env: {VLLM_USE_FLASHINFER_SAMPLER: "0", HF_HUB_OFFLINE: "1"}
generation: {max_tokens: 64}
stop: {timeout: 30}
EOF
$V check qwen7b-gpu

say "plan before start"
$V plan qwen7b-gpu

say "start --wait (torch.compile + CUDA graphs, the default)"
start=$(date +%s.%N)
$V start qwen7b-gpu --wait --timeout 480
echo "wall time to ready: $(python3 -c "import time;print(round(time.time()-$start,1))") s"
$V status
$V status --json > "$OUT/status-ready.json"

say "gpus --json (the EngineCore's memory mapped to the server)"
$V gpus
$V gpus --json > "$OUT/gpus-ready.json"
smi

say "plan beside vLLM's own logged figures"
$V plan qwen7b-gpu

say "the TUI's main screen (160x48), captured from tmux"
tmux new-session -d -s vt-ui -x 160 -y 48 "python3 -m vllmtui"
sleep 8
tmux capture-pane -p -t vt-ui > "$OUT/tui-main.txt"
cat "$OUT/tui-main.txt"
tmux send-keys -t vt-ui q; sleep 1; tmux kill-session -t vt-ui 2>/dev/null

say "probes: chat, tool calls (auto, required, named), round trip"
$V probe qwen7b-gpu --chat --tools --roundtrip --timeout 60

say "bench (short)"
$V bench qwen7b-gpu --input-len 128 --output-len 64 --num-prompts 32 --concurrency 1,8 --warmups 2

say "graceful stop"
$V stop qwen7b-gpu
sleep 1; smi

say "second start (enforce_eager), then SIGKILL of the API server alone"
$V start qwen7b-gpu --wait --timeout 300 --set enforce_eager=true
pane=$(python3 -c "import json,subprocess;d=json.loads(subprocess.check_output(['python3','-m','vllmtui','status','--json']));print([s['pid'] for s in d['servers'] if s['name']=='qwen7b-gpu'][0])")
echo "API server pid $pane"; ps -o pid,pgid,sid,cmd --ppid "$pane" | cut -c1-100
kill -9 "$pane"
sleep 8
ps -eo pid,ppid,pgid,stat,cmd | grep -a '[V]LLM' | cut -c1-100
$V status
$V gpus
smi

say "clear the crashed session"
$V stop qwen7b-gpu --force
sleep 2
$V status
smi

say "an orphan: vLLM started by hand outside vllmtui (nohup/setsid), its API server SIGKILLed"
setsid nohup python3 -m vllm.entrypoints.openai.api_server --model /tmp/qwen7b-dummy --port 8011 \
  --load-format dummy --enforce-eager --max-model-len 4096 > /tmp/by-hand.log 2>&1 &
for i in $(seq 1 150); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8011/health', timeout=2)" 2>/dev/null && break; sleep 1; done
api=$(pgrep -f "api_server --model /tmp/qwen7b-dummy --port 8011" | head -1)
echo "by-hand API server pid $api (ready after ${i}s)"; smi
kill -9 "$api"; sleep 8
ps -eo pid,ppid,pgid,stat,cmd | grep -a '[V]LLM' | cut -c1-100
$V gpus
$V status | tail -4
smi

say "reap"
$V reap
sleep 2
$V gpus
smi
cp -r "$VLLMTUI_STATE_DIR/runs" "$OUT/runs" 2>/dev/null
tar -C "$OUT" -czf "$OUT/runs.tgz" runs && rm -rf "$OUT/runs"
