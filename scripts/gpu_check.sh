#!/usr/bin/env bash
# The GPU check: bootstraps the environment (on a GPU machine FMKT_MMCV_CUDA=auto builds mmcv's
# CUDA kernels), then checks every GPU claim in one run and writes gpu_check.json / gpu_check.md
# (scripts/gpu_check.py; see its docstring). On a machine without CUDA it runs the tiny
# form of every part. Extra arguments go to the check, e.g. --out DIR or --parts overhead.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
VENV="${FMKT_VENV:-$REPO/.venv}"
cd "$REPO"
exec "$VENV/bin/python" scripts/gpu_check.py "$@"
