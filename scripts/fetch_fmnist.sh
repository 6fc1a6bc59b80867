#!/usr/bin/env bash
# Fashion-MNIST without root: download the Debian package dataset-fashion-mnist (apt-get download
# needs no root) and unpack its four .gz files into DEST (default ~/.cache/fmkt/fashion-mnist),
# where the benchmarks look when /usr/share/datasets/fashion-mnist is not there.
#   bash scripts/fetch_fmnist.sh [DEST]
set -euo pipefail
DEST="${1:-$HOME/.cache/fmkt/fashion-mnist}"
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
have=1
for f in "${FILES[@]}"; do [ -f "$DEST/$f" ] || have=0; done
if [ "$have" = 1 ]; then echo "[fetch_fmnist] already in $DEST"; exit 0; fi
command -v apt-get >/dev/null || { echo "[fetch_fmnist] FAILED: apt-get not found; put the four Fashion-MNIST .gz files in $DEST" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && apt-get download dataset-fashion-mnist >/dev/null)
dpkg -x "$WORK"/dataset-fashion-mnist_*.deb "$WORK/x"
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  cp "$WORK/x/usr/share/datasets/fashion-mnist/$f" "$DEST/.$f.part"
  mv "$DEST/.$f.part" "$DEST/$f"
done
echo "[fetch_fmnist] Fashion-MNIST in $DEST"
