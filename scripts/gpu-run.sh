#!/usr/bin/env bash
# Runs the WebGPU DPO benchmark (bench/gpu-dpo.ts) on a GPU machine with no Node.js and no
# network, from what scripts/gpu-pack.sh prepared: dist/src, dist/bench, .gpu/ (node.gz and a
# minimal node_modules/webgpu) and .gl/*.deb (Vulkan loader). Follows the recipe measured on an
# H200 in an earlier experiment: unpack the loader .debs if libvulkan.so.1 is missing, and point
# VK_DRIVER_FILES at the NVIDIA driver's own ICD json.
#
# Env: BENCHES   space-separated preset:head[:fast[:tile[:lora]]] runs, head all|completion|shared
#                (tile empty for the automatic choice; lora a rank, for a LoRA step) (default,
#                most important first: gpt2-124m with the LM head on all positions and Dawn's checks
#                off (:fast), the trainer's savings (:shared), Dawn's default checks, :fast with the
#                matmul forced to the 64x64x16 tile of earlier measurements, the head on completions)
#      STEPS     timed steps per run (default 5), WARMUP (default 2)
#      MATMUL=1  also time the matmul kernel at 4096^3 and the step's shapes, every tile (first run only)
#      PROFILE=1 also print GPU time per kernel for one step of each :fast run (timestamp queries)
#      RUN_TIMEOUT seconds per run (default 240); OUT folder for logs (default ./gpu-out)
#      NO_SYSTEM_UNPACK=1 never write the .debs into /; FORCE_NODE_UNPACK=1 use .gpu/node.gz
#      even when a node is installed; FORCE_GL_UNPACK=1 unpack .gl/ even when a loader exists.
# Prints JSON lines (also into $OUT/gpu-dpo.jsonl); exits 0 when some run succeeded.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu-out}"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/tsdpo-gpu.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
say() { echo "## $*" >&2; }

# ---- Node --------------------------------------------------------------------------------------
NODE=""
if [ -z "${FORCE_NODE_UNPACK:-}" ] && command -v node >/dev/null 2>&1; then NODE="$(command -v node)"; fi
if [ -z "$NODE" ]; then
  [ -f .gpu/node.gz ] || { echo '{"bench":"gpu-run","error":"no node and no .gpu/node.gz (run scripts/gpu-pack.sh)"}'; exit 3; }
  gzip -dc .gpu/node.gz > "$WORK/node" && chmod +x "$WORK/node" && NODE="$WORK/node"
fi
"$NODE" --version >/dev/null || { echo '{"bench":"gpu-run","error":"node does not run here"}'; exit 3; }
say "node $("$NODE" --version) at $NODE"

# ---- Dawn (npm package webgpu) -------------------------------------------------------------------
if [ ! -f node_modules/webgpu/dist/linux-x64/dawn.node ]; then
  pkg=.gpu/node_modules/webgpu
  [ -f "$pkg/index.js" ] || { echo '{"bench":"gpu-run","error":"no node_modules/webgpu and no .gpu/node_modules/webgpu"}'; exit 3; }
  [ -f "$pkg/dist/linux-x64/dawn.node" ] || gzip -dc "$pkg/dist/linux-x64/dawn.node.gz" > "$pkg/dist/linux-x64/dawn.node"
  mkdir -p node_modules
  for d in .gpu/node_modules/*; do [ -e "node_modules/$(basename "$d")" ] || ln -sfn "$ROOT/$d" "node_modules/$(basename "$d")"; done
  say "webgpu (and the packages beside it) from .gpu/node_modules"
fi
[ -f dist/bench/gpu-dpo.js ] || { echo '{"bench":"gpu-run","error":"dist/bench/gpu-dpo.js missing (npm run build, carry dist/src and dist/bench)"}'; exit 3; }

# ---- Vulkan loader and driver ----------------------------------------------------------------------
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
if [ -n "${FORCE_GL_UNPACK:-}" ] || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  if ls .gl/*.deb >/dev/null 2>&1 && command -v dpkg-deb >/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -z "${NO_SYSTEM_UNPACK:-}" ] && [ -w /usr/lib ]; then
      for f in .gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
      say "unpacked .gl/*.deb into /"
    else
      for f in .gl/*.deb; do dpkg -x "$f" "$WORK/glroot"; done
      export LD_LIBRARY_PATH="$WORK/glroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "unpacked .gl/*.deb into $WORK/glroot"
    fi
  else
    say "no libvulkan.so.1 and no .gl/*.deb: Dawn will find no adapter"
  fi
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
  done
fi
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-<loader default>}"
export XDG_RUNTIME_DIR="$WORK/xdg"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# ---- Runs -------------------------------------------------------------------------------------------
LOG="$OUT/gpu-dpo.jsonl"
: > "$LOG"
ok=0
first=1
for run in ${BENCHES:-gpt2-124m:all:fast gpt2-124m:shared:fast gpt2-124m:all gpt2-124m:all:fast:64x64x16 gpt2-124m:completion:fast}; do
  IFS=: read -r preset head mode tile lora <<< "$run"
  extra=()
  if [ "${mode:-}" = fast ]; then extra+=(--fast); fi
  if [ -n "${tile:-}" ]; then extra+=(--tile "$tile"); fi
  if [ -n "${lora:-}" ]; then extra+=(--lora "$lora"); fi
  # Timestamps are exact only with Dawn's quantization off, which the fast runs do.
  if [ -n "${PROFILE:-}" ] && [ "${mode:-}" = fast ]; then extra+=(--profile); fi
  if [ "$first" = 1 ] && [ -n "${MATMUL:-}" ]; then extra+=(--matmul); fi
  first=0
  say "run $preset head=$head ${extra[*]:-}"
  timeout "${RUN_TIMEOUT:-240}" "$NODE" dist/bench/gpu-dpo.js --preset "$preset" --head "${head:-all}" \
    --steps "${STEPS:-5}" --warmup "${WARMUP:-2}" "${extra[@]}" > "$WORK/run.out" 2> "$WORK/run.err"
  rc=$?
  grep '^{' "$WORK/run.out" | tee -a "$LOG"
  if [ $rc != 0 ]; then
    echo "{\"bench\":\"gpu-run\",\"run\":\"$run\",\"rc\":$rc}" | tee -a "$LOG"
    grep -v '^Warning: max' "$WORK/run.err" | tail -20 >&2
  elif grep -q '"tokens_per_s"' "$WORK/run.out"; then
    ok=1
  fi
done
[ $ok = 1 ] || exit 1
