#!/usr/bin/env bash
# Installs Mesa's lavapipe (a Vulkan driver on the CPU) from Debian bookworm-backports, so that
# Dawn (the npm package `webgpu`) finds an adapter on machines without a GPU and the WebGPU tests
# really run. Debian 12's own Mesa 22 is rejected by Dawn; the backports' Mesa 25 works.
# The mirror is the one this machine already uses: read from the URIs: line of the deb822 block
# whose Suites: include "bookworm" in /etc/apt/sources.list.d/debian.sources. Needs root.
set -euo pipefail
if dpkg -s mesa-vulkan-drivers 2>/dev/null | grep -Eq "^Version: (2[4-9]|[3-9][0-9])\." && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  echo "install-lavapipe: Mesa lavapipe from bookworm-backports is already installed"
  exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
if [ ! -r "$src" ]; then echo "install-lavapipe: $src not found (not Debian 12?)" >&2; exit 1; fi
# Paragraph mode: one record per deb822 block, whatever the order of its fields.
uri=$(awk 'BEGIN { RS = ""; FS = "\n" } {
  u = ""; hit = 0
  for (i = 1; i <= NF; i++) {
    if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); u = w[2] }
    if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == "bookworm") hit = 1 }
  }
  if (hit && u != "") { print u; exit }
}' "$src")
if [ -z "$uri" ]; then echo "install-lavapipe: no URIs: for suite bookworm in $src" >&2; exit 1; fi
keyring=$(awk -F': ' '/^Signed-By:/ { print $2; exit }' "$src")
list=/etc/apt/sources.list.d/bookworm-backports.sources
printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" > "$list"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq libvulkan1
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers
echo "install-lavapipe: installed $(dpkg -s mesa-vulkan-drivers | awk '/^Version:/ { print $2 }')"
