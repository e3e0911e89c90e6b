#!/usr/bin/env bash
# Best digits in five minutes (see bench/quality_5min.py): sets up (apt packages, PyTorch CPU),
# builds the release gan, trains the digit classifier if missing, then trains the tutorial's
# PyTorch MLP GAN and DCGAN, RingGAN's `gan train --preset fast` and the same preset on the local
# 4-worker cluster (gan-coordinator --spawn) for 5 minutes each, scores them
# all with `gan evaluate` and writes its section of bench/RESULTS.md and the grids into
# docs/images/five-min-*.png. About 23 minutes on 2 cores.
#   bash bench/quality_5min.sh [quality_5min.py options, e.g. --seconds 300 --threads 2 --lock]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "quality_5min: installing PyTorch (CPU) and NumPy"
    python3 -m pip install --quiet 'torch==2.13.0+cpu' numpy 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages 'torch==2.13.0+cpu' numpy
fi
swift build -c release 2>&1 | tail -n 1   # gan, and gan-coordinator + gan-worker for the cluster run
./.build/release/gan train-classifier --dataset mnist --if-missing
python3 bench/quality_5min.py "$@"
