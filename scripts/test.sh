#!/usr/bin/env bash
# The test command: bootstraps the environment (skipping what is there), then runs the whole
# suite, slow end-to-end tests included. Extra arguments go to pytest.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/bootstrap.sh"
VENV="${FMKT_VENV:-$REPO/.venv}"
cd "$REPO"
"$VENV/bin/ruff" check .  # configs/ are excluded in pyproject.toml
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero code.
exec "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
