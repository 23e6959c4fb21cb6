#!/usr/bin/env bash
# Paper-scale spot check on a lent GPU machine (no network there, so no CIFAR-10 download):
# the --gpu code path (CUDA, bf16 autocast, channels_last, the paper's full-width models) on the
# full real Fashion-MNIST (60k/10k) carried in data/fashion-mnist. About 8 minutes on one H100.
#
#   here:   mkdir -p data && cp -r /usr/share/datasets/fashion-mnist data/
#   device: run(command="bash scripts/gpu_check.sh", carry=["data"])
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
OUT=${OUT:-reports/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
# A sample: every randomization fitted by the full-width MLP and small Inception, the random/true
# ratio, and the Theorem 1 / kernel claims on the GPU's float64 linear algebra.
timeout 480 python -m pytest claims/ --gpu --dataset fashion_mnist --data-root data --seeds 1 \
    -k "(Z-F1a-fit and (mlp1x512 or inception_small) and not alexnet) or Z-C-optim-easy or TH1 or kernel_mnist" \
    --report-dir "$OUT" --cache-dir "$OUT/cache" -q -p no:cacheprovider 2>&1 | tail -40
ls -la "$OUT"
