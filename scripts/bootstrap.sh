#!/usr/bin/env bash
# Brings a fresh machine up to the point where fmkt runs: a virtual environment with the pinned
# OpenMMLab stack, mmcv 2.1.0 built with its CPU ops, the plugin itself and the Fashion-MNIST package.
# Idempotent: every step checks first and skips what is already there.
#
# Environment:
#   FMKT_VENV         virtual environment to use/create (default: <repo>/.venv)
#   FMKT_WHEEL_CACHE  where the locally built mmcv wheel is kept (default: ~/.cache/fmkt/wheels)
#   FMKT_SKIP_APT=1   do not try to install the Debian dataset package
#   PYTHON            interpreter used to create the venv (default: python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FMKT_VENV:-$REPO/.venv}"
WHEELS="${FMKT_WHEEL_CACHE:-$HOME/.cache/fmkt/wheels}"
PY="$VENV/bin/python"
MMCV_VERSION=2.1.0
FMNIST_DIR=/usr/share/datasets/fashion-mnist

log() { printf '[bootstrap] %s\n' "$*" >&2; }
fail() { printf '[bootstrap] FAILED at step "%s": %s\n' "$1" "$2" >&2; exit 1; }

# run_step NAME CMD...: runs CMD, and on failure stops naming the step and showing the log tail.
run_step() {
  local name="$1"; shift
  local logf; logf="$(mktemp -t fmkt-bootstrap.XXXXXX.log)"
  log "$name ..."
  if ! "$@" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    fail "$name" "command '$*' exited non-zero (full log: $logf)"
  fi
  rm -f "$logf"
}

pip_install() {
  # The machine may list local index folders that do not exist; keep their warnings out of the log.
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# 1. virtual environment
if [ ! -x "$PY" ]; then
  run_step "create venv $VENV" "${PYTHON:-python3}" -m venv "$VENV"
fi

# 2. torch + torchvision (pinned pair; see requirements/torch.txt)
if ! "$PY" - <<'EOF' 2>/dev/null
import torch, torchvision, sys
sys.exit(0 if (torch.__version__.split('+')[0], torchvision.__version__.split('+')[0]) == ('2.14.1', '0.29.1') else 1)
EOF
then
  run_step "install torch/torchvision" pip_install -r "$REPO/requirements/torch.txt"
fi

# 3. mmcv's pure-python requirements
if ! "$PY" -c "import mmengine, cv2, yapf, addict" 2>/dev/null; then
  run_step "install mmcv requirements" pip_install -r "$REPO/requirements/mmcv.txt" -r "$REPO/requirements/torch.txt"
fi

# 4. mmcv with compiled CPU ops
build_mmcv_wheel() {
  local tmp; tmp="$(mktemp -d)"
  # mmcv's setup.py hard-codes -std=c++14/17 but torch >= 2.10 headers require C++20.
  cat >"$tmp/cxx" <<'EOF'
#!/usr/bin/env bash
args=()
for a in "$@"; do
  case "$a" in -std=c++14|-std=c++17) args+=("-std=c++20") ;; *) args+=("$a") ;; esac
done
exec g++ "${args[@]}"
EOF
  chmod +x "$tmp/cxx"
  mkdir -p "$WHEELS"
  # setuptools<70 conflicts with torch's declared requirement, so it goes in without resolution;
  # it is only needed while mmcv's setup.py runs.
  pip_install --no-deps -r "$REPO/requirements/build.txt"
  CXX="$tmp/cxx" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "$PY" -m pip wheel --no-deps --no-build-isolation --no-binary mmcv -w "$WHEELS" "mmcv==$MMCV_VERSION"
}
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  whl="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$whl" ]; then
    log "building mmcv $MMCV_VERSION with CPU ops (about 25 minutes on 2 cores; the wheel is cached in $WHEELS)"
    run_step "build mmcv $MMCV_VERSION wheel" build_mmcv_wheel
    whl="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)"
  fi
  run_step "install mmcv wheel $whl" pip_install --no-deps --force-reinstall "$whl"
  "$PY" -c "import mmcv.ops" 2>/dev/null || fail "check mmcv.ops" "mmcv installed but 'import mmcv.ops' still fails"
fi

# 5. the rest of the stack, test tools and the plugin itself (editable, no dependency resolution surprises)
# (checked from / so that a checkout in the current directory does not count as installed)
if ! (cd / && "$PY" -c "import mmpretrain, mmdet, mmrazor, pytest, ruff, matplotlib, pycocotools, fmkt_plugin") 2>/dev/null; then
  run_step "install OpenMMLab packages" pip_install -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" -r "$REPO/requirements/torch.txt" "mmcv==$MMCV_VERSION"
  run_step "install fmkt_plugin" pip_install --no-deps --no-build-isolation -e "$REPO"
fi
run_step "check imports" bash -c "cd / && '$PY' -c 'import fmkt_plugin, mmcv.ops, mmdet.models, mmrazor.models'"

# 6. Fashion-MNIST (Debian package)
if [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] && [ "${FMKT_SKIP_APT:-0}" != 1 ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    run_step "apt-get update" $SUDO apt-get update
    run_step "install dataset-fashion-mnist" env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y dataset-fashion-mnist
  else
    log "warning: apt-get not found; install the Debian package dataset-fashion-mnist for the benchmark"
  fi
fi

log "ready: $VENV"
