#!/usr/bin/env bash
# Everything a GPU machine session should measure, in one command with a time budget (the device
# tool lends a GPU for ~15 minutes, start-up included), most important first:
#   1. bench/gpu-dpo.ts through scripts/gpu-run.sh: tokens/s of the gpt2-124m DPO step on WebGPU,
#      the matmul tile sweep (MATMUL=1) and GPU time per kernel (PROFILE=1), then the trainer's
#      shared-prompt step and Dawn's default checks;
#   2. the PyTorch peer on the card (torch_dpo_gpu.py: fp32 with TF32 off, TF32, autocast bf16, bf16);
#   3. a Qwen2.5-0.5B-shape LoRA DPO step (8 pairs x 256, LM head on completions), ours and PyTorch's;
#   4. the 64x64x16 matmul tile of earlier measurements, for comparison.
# (transformers loading tsdpo's folders and the Rust tokenizer ids run in CI now, in the reference venv.)
# Prepare here: bash scripts/gpu-pack.sh; then run `OUT=$OUT bash scripts/gpu/device.sh` there with
# carry [dist/src, dist/bench, .gpu, .gl].
# Env: BUDGET seconds for all of it (default 420); steps that would start after it are skipped.
#      PROFILE, MATMUL (default 1), RUN_TIMEOUT (default 110): passed to gpu-run.sh.
#      SKIP_QWEN_PEER=1 leaves out the PyTorch Qwen LoRA peer.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu-out}"
mkdir -p "$OUT"
BUDGET="${BUDGET:-420}"
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
step() { # step NAME MIN_SECONDS COMMAND...: runs COMMAND with what is left of the budget
  local name=$1 need=$2; shift 2
  local l; l=$(left)
  if [ "$l" -lt "$need" ]; then echo "## $name: skipped, ${l}s left of ${BUDGET}s" | tee -a "$OUT/device.log"; return; fi
  echo "## $name (up to ${l}s)" | tee -a "$OUT/device.log"
  local t0; t0=$(date +%s)
  timeout "$l" "$@"
  echo "## $name: rc $? in $(( $(date +%s) - t0 ))s" | tee -a "$OUT/device.log"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } > "$OUT/gpu.txt"

peer() { # peer NAME ARGS...: the PyTorch peer, JSON lines appended to $OUT/torch.jsonl
  local name=$1; shift
  step "$name" 30 sh -c "python3 scripts/gpu/torch_dpo_gpu.py $* >> '$OUT/torch.jsonl' 2>> '$OUT/torch.err'"
}
bench() { # bench NAME BENCHES [PROFILE] [MATMUL]: WebGPU runs, JSON lines appended to $OUT/webgpu.jsonl
  step "$1" 45 env BENCHES="$2" PROFILE="${3:-}" MATMUL="${4:-}" RUN_TIMEOUT="${RUN_TIMEOUT:-110}" OUT="/tmp/gpu-run-$1" \
    sh -c "bash scripts/gpu-run.sh >> '$OUT/webgpu.jsonl' 2>> '$OUT/webgpu.err'"
}
bench webgpu-gpt2 "gpt2-124m:all:fast" "${PROFILE-1}" "${MATMUL-1}"
peer torch-gpt2 --preset gpt2-124m --dtype fp32,tf32,autocast,bf16
bench webgpu-gpt2-shared "gpt2-124m:shared:fast gpt2-124m:all" "${PROFILE-1}"
bench webgpu-qwen-lora "qwen2.5-0.5b:completion:fast::16" "${PROFILE-1}"
[ -n "${SKIP_QWEN_PEER:-}" ] || peer torch-qwen-lora --preset qwen2.5-0.5b --pairs 8 --prompt 64 --lora 16 --head completion --dtype fp32,tf32,bf16
bench webgpu-gpt2-64x64 "gpt2-124m:all:fast:64x64x16"
echo "## done in $(( $(date +%s) - start ))s; outputs in $OUT" | tee -a "$OUT/device.log"
