#!/usr/bin/env bash
# The main job: bootstraps the environment, then runs the embedded Fashion-MNIST benchmark
# (FM-KT against KD/DKD/DIST, paired over seeds) and the overhead benchmark. Extra arguments go
# to the benchmark, e.g. --profile quick|default|extended|full|gpu, or --tune.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
VENV="${FMKT_VENV:-$REPO/.venv}"
# --det [ARGS]: the detection benchmark instead (python -m benchmarks.detection.run ARGS,
# e.g. --profile gpu); see docs/benchmark/detection.md.
if [ "${1:-}" = "--det" ]; then shift; cd "$REPO"; exec "$VENV/bin/python" -m benchmarks.detection.run "$@"; fi
cd "$REPO"
exec "$VENV/bin/python" -m benchmarks.run "$@"
