#!/usr/bin/env bash
# Gathers into one folder what the GPU check needs on a machine without network: the wheels of
# requirements/carry.txt for that machine's Python (pure-python wheels, and manylinux wheels for
# the two compiled packages), and the four Fashion-MNIST files of the Debian package. Carry the
# folder over (at most 60 MiB), then run there: bash scripts/gpu_check.sh --carry DIR
#
# Usage: bash scripts/gpu_carry.sh DIR [PYTHON_VERSION]   (default 3.12)
# Environment: PYTHON (the interpreter whose pip downloads, default python3), FMKT_FMNIST_DIR (the
# Fashion-MNIST .gz files, default /usr/share/datasets/fashion-mnist)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:?usage: bash scripts/gpu_carry.sh DIR [PYTHON_VERSION]}"
PYV="${2:-3.12}"
FMNIST="${FMKT_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
LIMIT_MIB=60

mkdir -p "$DIR/wheels" "$DIR/fashion-mnist"
# --only-binary with a python version and platforms: wheels for that machine, never an sdist to
# build there; --no-deps: exactly the pinned set, the machine's own packages fill in the rest
"${PYTHON:-python3}" -m pip download --disable-pip-version-check -q --no-deps \
  --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
  -d "$DIR/wheels" -r "$REPO/requirements/carry.txt" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -f "$FMNIST/$name.gz" ]; then
    echo "[gpu-carry] $FMNIST/$name.gz not found: apt-get install -y dataset-fashion-mnist" >&2
    exit 1
  fi
  cp -p "$FMNIST/$name.gz" "$DIR/fashion-mnist/"
done
size=$(du -sm "$DIR" | cut -f1)
if [ "$size" -gt "$LIMIT_MIB" ]; then
  echo "[gpu-carry] $DIR holds $size MiB, over the $LIMIT_MIB MiB a carried folder may hold" >&2
  exit 1
fi
echo "python $PYV" >"$DIR/CARRIED"
(cd "$DIR" && ls wheels fashion-mnist) >>"$DIR/CARRIED"
echo "[gpu-carry] $DIR: $(ls "$DIR/wheels" | wc -l) wheels for Python $PYV and Fashion-MNIST, $size MiB"
