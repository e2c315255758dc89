#!/usr/bin/env bash
# Prepares what scripts/gpu-run.sh needs on a GPU machine that has no Node.js and no network,
# in folders that .gitignore keeps out of git (carry them with the device tool):
#   dist/src, dist/bench           the built project (npm run build)
#   .gpu/node.gz                   this machine's Node binary, stripped and gzipped
#   .gpu/node_modules/webgpu       Dawn for Node: package.json, index.js, dist/linux-x64/dawn.node.gz
#   .gpu/node_modules/*            the few pure-JS packages the bench's imports reach
#   .gl/*.deb                      Debian 12's Vulkan loader and GL dispatch libraries (apt-get download)
# Usage: bash scripts/gpu-pack.sh [--no-build]. Prints the carried size (must stay under 64 MiB
# together with the tracked files).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--no-build" ] || npm run build >/dev/null
mkdir -p .gpu .gl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp "$(command -v node)" "$tmp/node"
strip "$tmp/node" 2>/dev/null || true
gzip -9 -c "$tmp/node" > .gpu/node.gz

pkg=node_modules/webgpu
dst=.gpu/node_modules/webgpu
[ -f "$pkg/dist/linux-x64/dawn.node" ] || { echo "gpu-pack: $pkg/dist/linux-x64/dawn.node missing (npm ci first)" >&2; exit 1; }
rm -rf "$dst" && mkdir -p "$dst/dist/linux-x64"
cp "$pkg/package.json" "$pkg/index.js" "$dst/"
cp "$pkg/dist/linux-x64/dawn.node" "$tmp/dawn.node"
strip "$tmp/dawn.node" 2>/dev/null || true
gzip -9 -c "$tmp/dawn.node" > "$dst/dist/linux-x64/dawn.node.gz"

# Pure-JS packages the bench's imports reach (dist/src/train/progress.js: cli-progress and its deps).
for p in cli-progress string-width strip-ansi ansi-regex emoji-regex is-fullwidth-code-point; do
  rm -rf ".gpu/node_modules/$p" && cp -r "node_modules/$p" ".gpu/node_modules/$p"
done

# The GPU machine runs Debian 12 without the Vulkan loader: take the packages' .debs from here.
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

echo "gpu-pack: carried sizes"
du -sh dist/src dist/bench .gpu .gl
total=$(du -cb dist/src dist/bench .gpu .gl | tail -1 | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "gpu-pack: carried $((total / 1048576)) MiB + tracked files $((tracked / 1048576)) MiB (limit 64 MiB)"
echo "gpu-pack: run with carry [\"dist/src\", \"dist/bench\", \".gpu\", \".gl\"] and command: OUT=\$OUT bash scripts/gpu/device.sh"
echo "gpu-pack: (node scripts/gpu/make-export-check.mjs first adds the transformers check)"
