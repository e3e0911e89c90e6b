#!/usr/bin/env bash
# Bit-identity of two builds (issue 25: a refactor changes no number): trains the main recipes
# for a few steps with the binaries in BEFORE and in AFTER (folders holding gan, gan-coordinator
# and gan-worker) and compares every final checkpoint byte for byte with cmp.
#
#   bash scripts/checkpoint-cmp.sh BEFORE_BIN_DIR AFTER_BIN_DIR [STEPS]
#
# Exit 0 when every checkpoint is identical, 1 naming those that differ.
set -euo pipefail
cd "$(dirname "$0")/.."
before="$1"; after="$2"; steps="${3:-20}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
recipes=(
  "mlp|--model mlp"
  "dcgan|--model dcgan"
  "wgan-gp|--model dcgan --loss wgan-gp --n-critic 2"
  "sndcgan-hinge|--model sndcgan --loss hinge --lr-d 4e-4 --lr-g 1e-4 --beta1 0 --beta2 0.9"
  "progressive|--model dcgan --progressive"
  "stylegan|--model stylegan"
  "dcgan-ema-smooth|--model dcgan --g-ema 0.999 --label-smoothing 0.9"
  "exact|--model dcgan --exact --micro-batches 4"
)
cluster="cluster-dcgan|--model dcgan"
run_all() {   # side bin
    local side="$1" bin="$2"
    for r in "${recipes[@]}"; do
        local name="${r%%|*}" flags="${r#*|}"
        # shellcheck disable=SC2086
        "$bin/gan" train $flags --steps "$steps" --batch 16 --threads 2 --sample-every 0 --checkpoint-every 0 \
            --runs-dir "$work/$side" --name "$name" --log-level warning >/dev/null
    done
    local flags="${cluster#*|}"
    # shellcheck disable=SC2086
    "$bin/gan-coordinator" --workers 2 --spawn $flags --steps "$steps" --batch 16 --sample-every 0 \
        --checkpoint-every 0 --port 0 --runs-dir "$work/$side" --name cluster --log-level warning >/dev/null 2>&1
}
run_all before "$before"
run_all after "$after"
differ=0; same=0
for ck in $(cd "$work/before" && find . -name '*.rgan' | sort); do
    if cmp -s "$work/before/$ck" "$work/after/$ck"; then same=$((same + 1)); echo "identical: $ck"
    else differ=$((differ + 1)); echo "DIFFER: $ck"; fi
done
echo "checkpoint-cmp: $same identical, $differ differ ($steps steps each)"
[ "$differ" = 0 ] && [ "$same" -gt 0 ]
