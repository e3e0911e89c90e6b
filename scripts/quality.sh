#!/usr/bin/env bash
# End-to-end quality runs on the real MNIST digits (issue 3): mlp + BCE for 3,000 steps, dcgan
# 32x32 + BCE for 1,500 steps, and mlp + WGAN-GP for 2,000 steps; then FID of each against the
# same model untrained. Grids land in runs/quality-*/samples; figures in runs/quality-report.txt.
# Takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product gan 2>&1 | tail -n 1
gan=./.build/release/gan
$gan train-classifier --dataset mnist --if-missing
report=runs/quality-report.txt
mkdir -p runs
: > "$report"
train() {  # name, then train flags
    local name=$1; shift
    rm -rf "runs/$name"
    $gan train --name "$name" --sample-every 500 --checkpoint-every 500 "$@"
    local ckpt
    ckpt=$(ls runs/$name/checkpoints/*.rgan | tail -n 1)
    { echo "== $name: $*"; $gan evaluate --checkpoint "$ckpt" --baseline; echo; } | tee -a "$report"
}
train quality-mlp --model mlp --loss bce --steps 3000
train quality-dcgan --model dcgan --loss bce --steps 1500
train quality-mlp-wgangp --model mlp --loss wgan-gp --steps 2000
echo "report: $report"
