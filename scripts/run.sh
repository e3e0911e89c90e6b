#!/usr/bin/env bash
# The main job: a local cluster of one gan-coordinator and 4 gan-worker processes (a TCP ring on
# this machine) trains DCGAN 32x32 on the real MNIST digits, writing 8x8 sample grids and
# checkpoints into runs/<name>/, then scores the result (FID on our digit classifier's features,
# against the same generator untrained).
#
#   bash scripts/run.sh                 # 1,000 steps (about 6 minutes on 2 cores)
#   STEPS=3000 bash scripts/run.sh      # longer; any extra arguments go to gan-coordinator
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release 2>&1 | tail -n 1
gan=./.build/release/gan
"$gan" info
name="${RINGGAN_RUN:-cluster-$(date +%Y%m%d-%H%M%S)}"
bash cluster/local.sh -n 4 --name "$name" -- --model dcgan --loss bce --steps "${STEPS:-1000}" --batch 64 \
    --sample-every 100 --checkpoint-every 250 "$@"
"$gan" train-classifier --dataset mnist --if-missing   # the digit classifier FID uses (~/.cache/ringgan)
ckpt="$(ls runs/"$name"/checkpoints/*.rgan | tail -n 1)"
"$gan" evaluate --checkpoint "$ckpt" --baseline
echo
echo "sample grids: runs/$name/samples/   checkpoints: runs/$name/checkpoints/   logs: runs/$name/logs/"
echo "TensorBoard:  tensorboard --logdir runs"
