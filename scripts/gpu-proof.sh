#!/usr/bin/env bash
# GPU panel proof on a machine with an NVIDIA GPU (see docs/gpu-and-plan.md):
# 1. a PyTorch process titled (setproctitle, as vLLM does) `VLLM::EngineCore` holds 4 GiB inside a tmux session marked as a
#    vllmtui server (`vllmtui-gpuproof`, @vllmtui-kind server), like vLLM's engine under its pane;
# 2. an orphan titled `VLLM::Worker_TP0` holds 2 GiB outside any server (its "API server" is gone);
# 3. a plain python holds 1 GiB (somebody else's job);
# then prints `vllmtui gpus`, `vllmtui gpus --json`, nvidia-smi's view, and a plan with a
# gpu_memory_utilization the held memory no longer allows. Cleans up everything it started.
# Run from the repository root with vllmtui importable (PYTHONPATH=$PWD).
set -u
SOCK=vllmtui-gpuproof
export VLLMTUI_TMUX_SOCKET=$SOCK VLLMTUI_STATE_DIR=/tmp/vllmtui-proof-state
HOLD="python3 $PWD/scripts/gpu_holder.py"
cleanup() {
  tmux -L $SOCK kill-server 2>/dev/null
  [ -n "${ORPHAN:-}" ] && kill "$ORPHAN" 2>/dev/null
  [ -n "${OTHER:-}" ] && kill "$OTHER" 2>/dev/null
}
trap cleanup EXIT
tmux -L $SOCK new-session -d -s vllmtui-gpuproof -x 200 -y 50 -c "$PWD" \
  bash -c "$HOLD 4 300 VLLM::EngineCore & wait"
tmux -L $SOCK set-option -t vllmtui-gpuproof @vllmtui-kind server
tmux -L $SOCK set-option -t vllmtui-gpuproof @vllmtui-profile gpuproof
setsid $HOLD 2 300 VLLM::Worker_TP0 & ORPHAN=$!
$HOLD 1 300 & OTHER=$!
for _ in $(seq 120); do  # wait (60 s at most) until NVML lists the three holders
  n=$(nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] && break; sleep 0.5
done
echo "== tmux sessions"; tmux -L $SOCK list-sessions
echo "== nvidia-smi --query-compute-apps"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv
echo "== ps"; ps -o pid,ppid,pgid,sid,args -p "$(pgrep -d, -f 'VLLM::|gpu_holder')" 2>/dev/null
if [ -n "${PROOF_EXTRA:-}" ]; then echo "== $PROOF_EXTRA"; python3 "$PROOF_EXTRA"; fi  # a diagnostic
echo "== python -m vllmtui gpus"; python3 -m vllmtui gpus
echo "== python -m vllmtui gpus --json"; python3 -m vllmtui gpus --json
echo "== python -m vllmtui plan (Llama-3.1-8B config, gpu_memory_utilization 0.95, live GPU)"
python3 -m vllmtui plan profiles/llama-3.1-8b-instruct.yaml --config tests/data/configs/Llama-3.1-8B.json \
  --set gpus=0 --set gpu_memory_utilization=0.95
echo "plan exit status: $?"
