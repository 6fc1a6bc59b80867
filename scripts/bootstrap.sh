#!/usr/bin/env bash
# Brings a fresh machine up to the point where fmkt runs: a virtual environment with the pinned
# OpenMMLab stack, mmcv 2.1.0 (by default the pure-python mmcv-lite, whose ops the plugin answers
# with torch/torchvision: nothing is compiled), the plugin itself and the Fashion-MNIST package.
# Idempotent: every step checks first and skips what is already there.
#
# Environment:
#   FMKT_VENV         virtual environment to use/create (default: <repo>/.venv)
#   FMKT_MMCV         which mmcv 2.1.0: unset (default) installs mmcv-lite unless the venv already
#                     has a compiled mmcv, which is kept; lite installs mmcv-lite (replacing a
#                     compiled mmcv); full builds mmcv from source with its CPU ops (and its CUDA
#                     ops on a GPU machine, see FMKT_MMCV_CUDA): needed only for mmcv ops beyond
#                     nms, RoIAlign and the sigmoid focal loss (deformable convolution, the DETR
#                     family, ...). The build takes 10-25 minutes on 2 cores (about 50 with CUDA
#                     kernels) and needs a C++ compiler.
#   FMKT_WHEEL_CACHE  where the locally built mmcv wheels are kept, one folder per variant such as
#                     torch2.14.1-cpu or torch2.14.1-cu130-sm90 (default: ~/.cache/fmkt/wheels)
#   FMKT_MMCV_CUDA    with FMKT_MMCV=full: auto (default) | 1 | 0: build mmcv's CUDA kernels. auto
#                     builds them when torch is a CUDA build and sees a GPU; 1 builds them on any
#                     machine (without a visible GPU, TORCH_CUDA_ARCH_LIST must be given); 0 builds
#                     CPU kernels only, even on a GPU box.
#   TORCH_CUDA_ARCH_LIST  GPU archs for the CUDA kernels (default: those of the visible GPUs; 9.0 for
#                     H100/H200)
#   CUDA_HOME         a CUDA toolkit to compile with; without one (and no nvcc on PATH), nvcc and its
#                     headers come from NVIDIA's PyPI packages for torch's CUDA version (CUDA >= 13)
#   FMKT_SKIP_APT=1   do not try to install the Debian dataset package
#   PYTHON            interpreter used to create the venv (default: python3)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FMKT_VENV:-$REPO/.venv}"
WHEELS="${FMKT_WHEEL_CACHE:-$HOME/.cache/fmkt/wheels}"
PY="$VENV/bin/python"
MMCV_VERSION=2.1.0
MMCV_MODE="${FMKT_MMCV:-}"
FMNIST_DIR=/usr/share/datasets/fashion-mnist
FMNIST_USER_DIR="$HOME/.cache/fmkt/fashion-mnist"

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

# 4. mmcv 2.1.0. By default mmcv-lite: pure python, its ops answered by the plugin (compat Fix 12,
#    installed with the plugin in step 5). FMKT_MMCV=full: the compiled mmcv, with CPU kernels and
#    CUDA kernels where FMKT_MMCV_CUDA asks for them (see the header); the plan (which kernels,
#    which archs, the cached wheel's folder) comes from scripts/mmcv_plan.py, run with the venv's
#    torch.
case "$MMCV_MODE" in ''|lite|full) ;; *) fail "choose mmcv" "FMKT_MMCV='$MMCV_MODE': expected lite or full (or unset)" ;; esac
MARKER="$VENV/.fmkt-mmcv-variant"
installed_dist() {  # installed_dist NAME: the installed version of distribution NAME, or nothing
  "$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1" 2>/dev/null
}
if [ -z "$MMCV_MODE" ]; then
  # a compiled mmcv already in the venv (an earlier full bootstrap, mim) is used unchanged
  if [ "$(installed_dist mmcv)" = "$MMCV_VERSION" ]; then MMCV_MODE=kept; else MMCV_MODE=lite; fi
fi

if [ "$MMCV_MODE" = lite ]; then
  if [ "$(installed_dist mmcv-lite)" != "$MMCV_VERSION" ] || [ -n "$(installed_dist mmcv)" ]; then
    # both distributions own mmcv/: remove the compiled one first, then lay mmcv-lite's files anew
    if [ -n "$(installed_dist mmcv)" ]; then run_step "uninstall the compiled mmcv" "$PY" -m pip uninstall -y -q mmcv; fi
    run_step "install mmcv-lite $MMCV_VERSION (pure python, nothing to compile)" \
      pip_install --force-reinstall --no-deps "mmcv-lite==$MMCV_VERSION"
  fi
  echo lite >"$MARKER"
elif [ "$MMCV_MODE" = kept ]; then
  log "keeping the compiled mmcv $MMCV_VERSION installed in $VENV"
fi

# The C++ compiler and nvcc wrappers: mmcv's setup.py hard-codes -std=c++14/17, but torch >= 2.10
# headers require C++20 (host and device code alike).
write_std_wrapper() {  # write_std_wrapper PATH REAL_COMPILER
  cat >"$1" <<WRAP
#!/usr/bin/env bash
args=()
for a in "\$@"; do
  case "\$a" in -std=c++14|-std=c++17) args+=("-std=c++20") ;; *) args+=("\$a") ;; esac
done
exec "$2" "\${args[@]}"
WRAP
  chmod +x "$1"
}

# find_cuda_home: a CUDA toolkit that is installed (CUDA_HOME, or nvcc on PATH), else nvcc and its
# headers from NVIDIA's PyPI packages for torch's CUDA version, installed into the venv.
find_cuda_home() {
  if [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then echo "$CUDA_HOME"; return; fi
  # an nvcc on PATH counts only with a toolkit's headers beside it (torch's CUDA headers include
  # cuSPARSE's and cuBLAS's); a bare nvcc wrapper does not
  local home
  if command -v nvcc >/dev/null; then
    home="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
    if [ -f "$home/include/cusparse.h" ] && [ -f "$home/include/cublas_v2.h" ]; then echo "$home"; return; fi
  fi
  local major="${MMCV_CUDA_VERSION%%.*}"
  if [ "$major" -lt 13 ]; then
    echo "no CUDA toolkit found (set CUDA_HOME); the PyPI route is for CUDA >= 13, torch has CUDA $MMCV_CUDA_VERSION" >&2
    return 1
  fi
  local v="$MMCV_CUDA_VERSION.*"
  pip_install "nvidia-cuda-nvcc==$v" "nvidia-cuda-crt==$v" "nvidia-cuda-cccl==$v" \
    "nvidia-cuda-runtime==$v" "nvidia-nvvm==$v" >&2 || return 1
  "$PY" -c "import nvidia, os; print(os.path.join(nvidia.__path__[0], 'cu$major'))"
}

build_mmcv_wheel() {  # build_mmcv_wheel OUT_DIR
  local tmp; tmp="$(mktemp -d)"
  write_std_wrapper "$tmp/cxx" g++
  mkdir -p "$1"
  # setuptools<70 conflicts with torch's declared requirement, so it goes in without resolution;
  # it is only needed while mmcv's setup.py runs.
  pip_install --no-deps -r "$REPO/requirements/build.txt" || return 1
  local -a envs=(CXX="$tmp/cxx" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
  if [ "$MMCV_CUDA_VERSION" = none ]; then
    # mmcv's setup.py builds CUDA kernels whenever it sees a GPU, whatever FORCE_CUDA says.
    envs+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
  else
    local cuda_home; cuda_home="$(find_cuda_home)" || return 1
    write_std_wrapper "$tmp/nvcc" "$cuda_home/bin/nvcc"
    # NVIDIA's runtime package ships only libcudart.so.13; the link step asks for -lcudart.
    mkdir -p "$tmp/lib"
    for d in lib64 lib; do
      if [ ! -e "$cuda_home/$d/libcudart.so" ] && ls "$cuda_home/$d"/libcudart.so.* >/dev/null 2>&1; then
        ln -sf "$(ls "$cuda_home/$d"/libcudart.so.* | head -n 1)" "$tmp/lib/libcudart.so"
      fi
    done
    envs+=(FORCE_CUDA=1 CUDA_HOME="$cuda_home" PYTORCH_NVCC="$tmp/nvcc" TORCH_CUDA_ARCH_LIST="$MMCV_ARCHS"
           LIBRARY_PATH="$tmp/lib${LIBRARY_PATH:+:$LIBRARY_PATH}")
  fi
  # --no-cache-dir: pip would otherwise hand back the wheel it built for another variant (its
  # wheel cache is keyed by the sdist, not by FORCE_CUDA or the archs)
  env "${envs[@]}" "$PY" -m pip wheel --no-cache-dir --no-deps --no-build-isolation --no-binary mmcv \
    -w "$1" "mmcv==$MMCV_VERSION"
}

# FMKT_MMCV=full: build (or take from the wheel cache) and install the compiled mmcv.
install_full_mmcv() {
  plan="$("$PY" "$REPO/scripts/mmcv_plan.py")" || fail "plan the mmcv build" "see the message above"
  read -r MMCV_VARIANT MMCV_CUDA_VERSION MMCV_ARCHS <<<"$plan"

  # A CPU-only mmcv installed by an earlier bootstrap (before the marker existed) counts as the CPU variant.
  if [ ! -f "$MARKER" ] && [ "$MMCV_CUDA_VERSION" = none ] && [ "$(installed_dist mmcv)" = "$MMCV_VERSION" ] && "$PY" -c "
import mmcv.ops, sys
sys.exit(0 if mmcv.ops.get_compiling_cuda_version() == 'not available' else 1)" 2>/dev/null; then
    echo "$MMCV_VARIANT" >"$MARKER"
  fi

  if [ "$(cat "$MARKER" 2>/dev/null)" != "$MMCV_VARIANT" ] || [ "$(installed_dist mmcv)" != "$MMCV_VERSION" ] \
     || [ -n "$(installed_dist mmcv-lite)" ] || ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
    wheel_dir="$WHEELS/$MMCV_VARIANT"
    whl="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
    if [ -z "$whl" ]; then
      if [ "$MMCV_CUDA_VERSION" = none ]; then
        log "building mmcv $MMCV_VERSION with CPU ops (about 25 minutes on 2 cores; cached in $wheel_dir)"
      else
        log "building mmcv $MMCV_VERSION with CPU and CUDA $MMCV_CUDA_VERSION ops for archs $MMCV_ARCHS (about 50 minutes on 2 cores for one arch; cached in $wheel_dir)"
      fi
      start=$SECONDS
      run_step "build mmcv $MMCV_VERSION wheel ($MMCV_VARIANT)" build_mmcv_wheel "$wheel_dir"
      log "mmcv wheel built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
      whl="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)"
    fi
    if [ -n "$(installed_dist mmcv-lite)" ]; then run_step "uninstall mmcv-lite" "$PY" -m pip uninstall -y -q mmcv-lite; fi
    run_step "install mmcv wheel $whl" pip_install --no-deps --force-reinstall "$whl"
    "$PY" -c "import mmcv.ops" 2>/dev/null || fail "check mmcv.ops" "mmcv installed but 'import mmcv.ops' still fails"
    if [ "$MMCV_CUDA_VERSION" != none ]; then
      got="$("$PY" -c "import mmcv.ops; print(mmcv.ops.get_compiling_cuda_version())")"
      [ "$got" = "$MMCV_CUDA_VERSION" ] || fail "check mmcv CUDA ops" "mmcv reports CUDA '$got', expected $MMCV_CUDA_VERSION"
    fi
    echo "$MMCV_VARIANT" >"$MARKER"
  fi
}
if [ "$MMCV_MODE" = full ]; then install_full_mmcv; fi

# 5. the rest of the stack, test tools and the plugin itself (editable, no dependency resolution surprises)
# (checked from / so that a checkout in the current directory does not count as installed;
# one module of each package of requirements/tests.txt, so an existing venv picks up new ones)
# (fmkt_mmcv_ext_hook comes with an install of the plugin that puts its start-up hook in
# site-packages; mmdet, mmpretrain and mmrazor do not declare mmcv, so nothing here builds it)
if ! (cd / && "$PY" -c "import mmpretrain, mmdet, mmrazor, pytest, ruff, mim, tensorboard, matplotlib, pycocotools, fmkt_plugin, fmkt_mmcv_ext_hook") 2>/dev/null; then
  run_step "install OpenMMLab packages" pip_install -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt" -r "$REPO/requirements/torch.txt"
  run_step "install fmkt_plugin" pip_install --no-deps --no-build-isolation -e "$REPO"
fi
# mmdet first, in an interpreter that never imports the plugin: mmcv-lite's ops must come from the
# start-up hook alone
run_step "check imports" bash -c "cd / && '$PY' -c 'import mmdet.models, mmcv.ops' && '$PY' -c 'import fmkt_plugin, mmcv.ops, mmdet.models, mmrazor.models'"

# 6. Fashion-MNIST (Debian package). Without root and without passwordless sudo (a cluster login
# node), the package is downloaded and unpacked into ~/.cache/fmkt/fashion-mnist, where the
# benchmarks look next (scripts/fetch_fmnist.sh); FMKT_SKIP_APT=1 skips this step.
if [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] && [ ! -f "$FMNIST_USER_DIR/train-images-idx3-ubyte.gz" ] && [ "${FMKT_SKIP_APT:-0}" != 1 ]; then
  if ! command -v apt-get >/dev/null; then
    log "warning: apt-get not found; put the four Fashion-MNIST .gz files in $FMNIST_USER_DIR for the benchmark"
  elif [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    run_step "apt-get update" $SUDO apt-get update
    run_step "install dataset-fashion-mnist" env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y dataset-fashion-mnist
  else
    run_step "fetch Fashion-MNIST without root" bash "$REPO/scripts/fetch_fmnist.sh" "$FMNIST_USER_DIR"
  fi
fi

log "ready: $VENV"
