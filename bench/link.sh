#!/usr/bin/env bash
# Distributed training on a shaped link, RingGAN against PyTorch DDP/gloo (see bench/link.py):
# sets up, installs PyTorch CPU if missing, builds the release binaries, runs as root.
#   sudo bash bench/link.sh [link.py options, e.g. --steps 30 --rate 1gbit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! python3 -c 'import torch' 2>/dev/null; then
    python3 -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages 'torch==2.13.0+cpu'
fi
swift build -c release --product gan-coordinator 2>&1 | tail -n 1
swift build -c release --product gan-worker 2>&1 | tail -n 1
if [ "$(id -u)" = 0 ]; then python3 bench/link.py "$@"; else sudo python3 bench/link.py "$@"; fi
