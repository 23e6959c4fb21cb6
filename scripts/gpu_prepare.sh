#!/usr/bin/env bash
# Prepare, on the machine WITHOUT the GPU, what scripts/gpu_check.sh needs on the device machine
# (which has no network): .gpu/ (ignored by git, carried by the `device` tool) with
#   .gpu/data/fashion-mnist/  the real Fashion-MNIST 60k/10k (Debian's dataset-fashion-mnist files)
#   .gpu/whl/                 the wheels the device image lacks (its torch, pytest, scipy, filelock,
#                             matplotlib, jinja2, tqdm, hypothesis, xdist are there; attrs is too,
#                             but jsonschema and referencing need one they can import: carried)
# About 35 MB in all, under the tool's 64 MiB. Run from anywhere: bash scripts/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/data .gpu/whl
SRC=/usr/share/datasets/fashion-mnist
if [ ! -e "$SRC/train-images-idx3-ubyte.gz" ] && [ ! -e "$SRC/train-images-idx3-ubyte" ]; then
    echo "Fashion-MNIST is not in $SRC: apt-get install dataset-fashion-mnist (Debian/Ubuntu)" >&2
    exit 1
fi
rm -rf .gpu/data/fashion-mnist && cp -r "$SRC" .gpu/data/fashion-mnist
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl mlxtend==0.25.0 jsonschema==4.26.0 jsonschema-specifications referencing rpds-py attrs
du -sh .gpu
