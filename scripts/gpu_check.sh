#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py; see its docstring): checks every GPU claim in one run and
# writes gpu_check.json / gpu_check.md. On a machine without CUDA it runs the tiny form of every
# part. Extra arguments go to the check, e.g. --out DIR or --parts overhead.
#
#   bash scripts/gpu_check.sh [ARGS]               bootstraps the venv first (scripts/bootstrap.sh)
#   bash scripts/gpu_check.sh --carry DIR [ARGS]   no network, no venv: installs the folder that
#       scripts/gpu_carry.sh gathered into a fresh scratch folder (pip --target, nothing built)
#       and runs with the machine's own Python and torch ($PYTHON, default python3)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
if [ "${1:-}" = --carry ]; then
  CARRY="${2:?usage: bash scripts/gpu_check.sh --carry DIR [ARGS]}"
  shift 2
  PY="${PYTHON:-python3}"
  SITE="$(mktemp -d -t fmkt-site.XXXXXX)"  # empty each run: nothing left from an earlier one
  trap 'rm -rf "$SITE"' EXIT
  "$PY" -m pip install --disable-pip-version-check -q --no-index --no-deps --target "$SITE" \
    "$CARRY"/wheels/*.whl
  echo "[gpu-check] installed $(ls "$CARRY/wheels" | wc -l) carried wheels into $SITE" >&2
  # the repository itself is imported from the working tree (gpu_check.py puts it on sys.path)
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" FMKT_FMNIST_DIR="$CARRY/fashion-mnist"
  "$PY" scripts/gpu_check.py "$@"
  exit
fi
bash "$REPO/scripts/bootstrap.sh"
exec "${FMKT_VENV:-$REPO/.venv}/bin/python" scripts/gpu_check.py "$@"
