#!/usr/bin/env bash
# The device check (issues 9 and 17): what the first session lent a GPU machine runs, in at most
# RB_CHECK_SECONDS (default 330 s: a session has 15 minutes of device time, a cold start included,
# and must be able to run this twice). Every step writes its numbers to $OUT as it ends, so a step
# cut short still returns what the ones before it measured; each step gets at most what is left.
#
#   here, once:   bash scripts/gpu_prepare.sh       # .gpu/ (ignored): Fashion-MNIST + wheels, ~35 MB
#   device call:  run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=400)
#   dry run here: RB_CHECK_CPU=1 OUT=/tmp/gpu-check bash scripts/gpu_check.sh    # CPU, smoke, < 6 min
#
# Steps, most valuable first (what comes back in $OUT, 7 files):
#   1. environment: GPU, driver, torch                                        check.log
#   2. the CUDA tests: graph replay vs eager, capture on the model's device and the eager
#      fallback, cohort vs solo (bf16; tolerances fixed in tests/test_cohort.py), the dense kernel
#      solve's memory, the plan's cuDNN setting                              cuda-tests.xml
#   3. ms per training step, eager vs CUDA graph, per model; run-steps/s of the stacked step of
#      K-member cohorts vs one solo step (scripts/gpu_speed.py)              speed.json
#   4. whole epochs of rb.train on Fashion-MNIST 60k (train, test pass, fit check)   epochs.json
#   5. the plan of the whole --gpu suite on Fashion-MNIST, 1 seed             plan-suite.json
#   6. one run planned, then trained by pytest: the estimate against the measured time
#                                                   plan-sample.json, sample-results.json
# RB_CHECK_CPU=1: the same steps on CPU at smoke scale with tiny widths (numbers meaningless): it
# tests this script's logic on a machine without a GPU (the CUDA tests skip there).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-reports/gpu}
TMP=$(mktemp -d)
mkdir -p "$OUT"
LIMIT=${RB_CHECK_SECONDS:-330}
START=$(date +%s)
if [ -d .gpu/whl ] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
log() { echo "== $* ($(date +%T), $(( $(date +%s) - START )) s)" | tee -a "$OUT/check.log"; }
# step NAME SECONDS CMD...: CMD under `timeout`, at most SECONDS and never past the check's LIMIT.
step() {
    local name=$1 want=$2 left
    shift 2
    left=$(( START + LIMIT - $(date +%s) ))
    [ "$left" -lt "$want" ] && want=$left
    if [ "$want" -lt 10 ]; then log "$name: skipped, the check's $LIMIT s are spent"; return; fi
    log "$name (at most $want s)"
    timeout "$want" "$@" 2>&1 | tee -a "$OUT/check.log"
    log "$name: exit ${PIPESTATUS[0]}"
}

if [ "${RB_CHECK_CPU:-0}" = 1 ]; then
    GPU=(--scale smoke); DEV=cpu; SPEED=(--width 0.05 --steps 3 --cohort-steps 3)
    DATA=(--dataset mnist5k); EPOCH_DATA=mnist5k; EPOCH_WIDTH=0.05
else
    GPU=(--gpu); DEV=cuda; SPEED=(); EPOCH_DATA=fashion_mnist; EPOCH_WIDTH=1.0
    DATA=(--dataset fashion_mnist --data-root .gpu/data)
fi
export DEV EPOCH_DATA EPOCH_WIDTH OUT

env_info() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
    python3 -c "import torch, pytest; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'devices', torch.cuda.device_count(), 'pytest', pytest.__version__)"
}
step "1. environment" 20 bash -c "$(declare -f env_info); env_info"

step "2. CUDA tests" 100 python3 -m pytest tests/test_graphs.py tests/test_cohort.py tests/test_kernels.py \
    tests/test_plan.py -k "cuda or gpu" -q -rA -p no:cacheprovider -p no:randomly \
    --junitxml="$OUT/cuda-tests.xml"

step "3. ms per step, eager vs graph; stacked-step run-steps/s" 60 \
    python3 scripts/gpu_speed.py --device "$DEV" "${SPEED[@]}" --out "$OUT/speed.json"

epochs() {
    python3 - <<'EOF'
import json, os, rethinkbench as rb
out = {}
for model in ("mlp1x512", "inception_small"):
    cfg = rb.RunConfig(dataset=os.environ["EPOCH_DATA"], model=model, max_epochs=3, stop_at_fit=False,
                       width=float(os.environ["EPOCH_WIDTH"]), device=os.environ["DEV"])
    res = rb.train(cfg, data_root=".gpu/data")
    secs = [h["seconds"] for h in res.history]
    out[model] = [b - a for a, b in zip([0] + secs, secs)]
    json.dump(out, open(os.path.join(os.environ["OUT"], "epochs.json"), "w"))   # after each model
    print(f"{model:16s} seconds per epoch {', '.join(f'{s:.2f}' for s in out[model])} (epoch 1 includes capture)")
EOF
}
step "4. whole epochs of rb.train, 60k examples" 45 bash -c "$(declare -f epochs); epochs"

step "5. plan of the whole --gpu suite, 1 seed" 60 python3 -m rethinkbench plan claims/ "${GPU[@]}" \
    "${DATA[@]}" --seeds 1 --cache-dir "$TMP/cache" --plan-json "$OUT/plan-suite.json"

SAMPLE="Z-F1a-fit and mlp1x512 and true_labels"
sample() {
    python3 -m rethinkbench plan claims/ "$@" --seeds 1 -k "$SAMPLE" --cache-dir "$TMP/cache" \
        --plan-json "$OUT/plan-sample.json" | tail -6
    local start=$(date +%s)
    python3 -m pytest claims/ "$@" --seeds 1 -k "$SAMPLE" -q -p no:cacheprovider -p no:randomly \
        --cache-dir "$TMP/cache" --report-dir "$TMP/report" | tail -8
    cp "$TMP/report/results.json" "$OUT/sample-results.json" 2>/dev/null
    python3 -c "import json, sys; p = json.load(open('$OUT/plan-sample.json'))
print(f'sample: planned {p[\"seconds\"]:.1f} s of training ({p[\"to_train\"]} runs), session wall', sys.argv[1], 's')" \
        "$(( $(date +%s) - start ))"
}
export SAMPLE TMP
step "6. one run planned, then trained ($SAMPLE)" 80 bash -c "$(declare -f sample); sample $(printf '%q ' "${GPU[@]}" "${DATA[@]}")"

rm -rf "$TMP"
log "done: $(ls "$OUT" | tr '\n' ' ')"
