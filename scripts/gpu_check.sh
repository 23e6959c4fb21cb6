#!/usr/bin/env bash
# The device check of issue 9, for a session lent a GPU machine (no network there: no CIFAR-10
# download, no PyPI). About 8 minutes on one H100. Everything it measures lands under $OUT.
#
#   here, once:  mkdir -p data && cp -r /usr/share/datasets/fashion-mnist data/
#                mkdir -p .git/info && echo /.whl/ >> .git/info/exclude && python3 -m pip download --no-deps \
#                  --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 \
#                  -d .whl mlxtend==0.25.0 jsonschema==4.26.0 jsonschema-specifications referencing rpds-py
#   device:      run(command="bash scripts/gpu_check.sh", carry=["data", ".whl"], timeout_s=560)
#
# 1. environment; 2. the CUDA tests (graph replay vs eager, cohort vs solo); 3. ms per step, eager
# vs CUDA-graphed, per model, and cohort run-steps/s (scripts/gpu_speed.py); 4. whole epochs of
# rb.train on Fashion-MNIST 60k; 5. the plan of the whole --gpu suite on Fashion-MNIST; 6. a sample
# of that suite planned, then run to completion with its report, to set the estimate against the
# measured time.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-reports/gpu}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/check.log"; }
DATA=(--dataset fashion_mnist --data-root data)
# RB_CHECK_CPU=1: the same steps on CPU at smoke scale with tiny widths, to test this script's logic
# on a machine without a GPU (numbers meaningless).
if [ "${RB_CHECK_CPU:-0}" = 1 ]; then
    GPU=(--scale smoke); DEV=cpu; SPEED=(--width 0.05 --steps 3 --cohort-steps 4)
    DATA=(--dataset mnist5k); EPOCH_DATA=mnist5k; EPOCH_WIDTH=0.05
else
    GPU=(--gpu); DEV=cuda; SPEED=(); EPOCH_DATA=fashion_mnist; EPOCH_WIDTH=1.0
fi
export DEV EPOCH_DATA EPOCH_WIDTH

log "1. environment"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, pytest; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'pytest', pytest.__version__)"
} 2>&1 | tee -a "$OUT/check.log"

log "2. CUDA tests: graph replay vs eager, cohorts vs solo"
timeout 90 python3 -m pytest tests/test_graphs.py tests/test_cohort.py -q -p no:cacheprovider -x 2>&1 \
    | tail -5 | tee -a "$OUT/check.log"

log "3. ms per step (batch 128, full width), eager vs graph; cohort run-steps/s"
timeout 120 python3 scripts/gpu_speed.py --device "$DEV" "${SPEED[@]}" --out "$OUT/speed.json" 2>&1 | tee -a "$OUT/check.log"

log "4. whole epochs of rb.train on Fashion-MNIST 60k (training, test pass, fit check)"
timeout 90 python3 - <<'EOF' 2>&1 | tee -a "$OUT/check.log"
import json, os, rethinkbench as rb
out = {}
for model in ("mlp1x512", "inception_small"):
    cfg = rb.RunConfig(dataset=os.environ["EPOCH_DATA"], model=model, max_epochs=3, stop_at_fit=False,
                       width=float(os.environ["EPOCH_WIDTH"]), device=os.environ["DEV"])
    res = rb.train(cfg, data_root="data")
    secs = [h["seconds"] for h in res.history]
    per_epoch = [b - a for a, b in zip([0] + secs, secs)]
    out[model] = per_epoch
    print(f"{model:16s} seconds per epoch {', '.join(f'{s:.2f}' for s in per_epoch)} (epoch 1 includes capture)")
json.dump(out, open(os.path.join(os.environ.get("OUT", "reports/gpu"), "epochs.json"), "w"))
EOF

log "5. plan of the whole --gpu suite on Fashion-MNIST, 1 seed"
timeout 120 python3 -m rethinkbench plan claims/ "${GPU[@]}" "${DATA[@]}" --seeds 1 \
    --cache-dir "$OUT/cache" 2>&1 | tail -25 | tee "$OUT/plan-suite.txt" | tee -a "$OUT/check.log"

SAMPLE="Z-F1a-fit and mlp1x512"
log "6. a sample ($SAMPLE): planned, then run, then compared"
timeout 60 python3 -m rethinkbench plan claims/ "${GPU[@]}" "${DATA[@]}" --seeds 1 -k "$SAMPLE" \
    --cache-dir "$OUT/cache" 2>&1 | tail -8 | tee "$OUT/plan-sample.txt" | tee -a "$OUT/check.log"
start=$(date +%s)
timeout 200 python3 -m pytest claims/ "${GPU[@]}" "${DATA[@]}" --seeds 1 -k "$SAMPLE" -p no:cacheprovider \
    --cache-dir "$OUT/cache" --report-dir "$OUT" -q 2>&1 | tail -25 | tee -a "$OUT/check.log"
echo "sample wall: $(( $(date +%s) - start )) s (the plan's estimate is in plan-sample.txt)" | tee -a "$OUT/check.log"
rm -rf "$OUT/cache"
ls -la "$OUT"
