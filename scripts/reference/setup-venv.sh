#!/usr/bin/env bash
# Creates the Python reference venv (.venv-ref at the repo root, ignored by git) with the stack
# tsdpo is compared against: torch 2.13 (CPU), transformers 5.17.0, trl 1.13.0, peft 0.21.0,
# accelerate 1.15.0, datasets. pip is pointed directly at the package indexes this machine's pip
# configuration names (`pip config list`: global.extra-index-url), so that it does not spend minutes
# retrying an index it cannot reach. Idempotent: an existing venv with the stack is kept.
# Usage: bash scripts/reference/setup-venv.sh [VENV_DIR]   (prints the venv's python path last)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.venv-ref}"
PY="$VENV/bin/python"
want="torch==2.13.0 transformers==5.17.0 trl==1.13.0 peft==0.21.0 accelerate==1.15.0 datasets"
if [ -x "$PY" ] && "$PY" -c 'import torch, transformers, trl, peft, accelerate, datasets
assert transformers.__version__ == "5.17.0" and trl.__version__ == "1.13.0"' 2>/dev/null; then
  echo "$PY"; exit 0
fi
# The indexes, in the order pip config lists them (the first as --index-url, the rest as extra).
read -r -a idx <<< "$(pip config get global.extra-index-url 2>/dev/null || true)"
args=()
if [ ${#idx[@]} -gt 0 ]; then
  args+=(--index-url "${idx[0]}")
  for u in "${idx[@]:1}"; do args+=(--extra-index-url "$u"); done
fi
python3 -m venv "$VENV"
"$PY" -m pip install -q --disable-pip-version-check "${args[@]}" $want 2>&1 | grep -v "is ignored: it is neither" >&2 || true
"$PY" -c "import trl, peft, accelerate, datasets" >&2
echo "$PY"
