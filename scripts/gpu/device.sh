#!/usr/bin/env bash
# Everything a GPU machine session should measure and check, in one command with a time budget
# (the device tool lends a GPU for ~15 minutes, start-up included), most important first:
#   1. bench/gpu-dpo.ts through scripts/gpu-run.sh: tokens/s of the gpt2-124m DPO step on WebGPU,
#      the matmul tile sweep (MATMUL=1) and GPU time per kernel (PROFILE=1);
#   2. the PyTorch peer on the same card (torch_dpo_gpu.py: bf16, autocast, fp32);
#   3. transformers + peft load what tsdpo saved (check_transformers.py on .gpu/export-check);
#   4. the Rust tokenizers / transformers ids for the demo tokenizer (test/fixtures/demo/hf_ids.json).
# Prepare here: bash scripts/gpu-pack.sh && node scripts/gpu/make-export-check.mjs; then run
# `OUT=$OUT bash scripts/gpu/device.sh` there with carry [dist/src, dist/bench, .gpu, .gl].
# Env: BUDGET seconds for all of it (default 480); steps that would start after it are skipped.
#      PROFILE, MATMUL (default 1), BENCHES, RUN_TIMEOUT (default 110): passed to gpu-run.sh.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu-out}"
mkdir -p "$OUT"
BUDGET="${BUDGET:-480}"
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

step webgpu 60 env PROFILE="${PROFILE-1}" MATMUL="${MATMUL-1}" RUN_TIMEOUT="${RUN_TIMEOUT:-110}" OUT="$OUT" bash scripts/gpu-run.sh
step pytorch 40 sh -c "python3 scripts/gpu/torch_dpo_gpu.py --dtype all > '$OUT/torch.jsonl' 2> '$OUT/torch.err'"
if [ -d .gpu/export-check ]; then
  step transformers 20 sh -c "python3 scripts/gpu/check_transformers.py .gpu/export-check > '$OUT/tf.txt' 2>&1"
fi
step tokenizers 10 sh -c "python3 test/fixtures/demo/gen_hf_tokenizer_ids.py '$OUT/hf_ids.json' > '$OUT/hf_ids.log' 2>&1"
echo "## done in $(( $(date +%s) - start ))s; outputs in $OUT" | tee -a "$OUT/device.log"
