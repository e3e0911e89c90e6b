#!/usr/bin/env bash
# Distributed training on a shaped link, RingGAN against PyTorch DDP/gloo (see bench/link.py):
# sets up, installs PyTorch CPU if missing, builds the release binaries, runs as root.
#   bash bench/link.sh [link.py options, e.g. --steps 30 --rate 1gbit]
# Run by another user it runs itself again under sudo, keeping PATH (plain `sudo bash ...` resets
# PATH to sudo's secure_path, which need not hold the Swift toolchain; and PyTorch must be
# installed for root's python3, which runs link.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then exec sudo env "PATH=$PATH" bash "$0" "$@"; fi
bash scripts/setup.sh
if ! python3 -c 'import torch' 2>/dev/null; then
    python3 -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages 'torch==2.13.0+cpu'
fi
swift build -c release --product gan-coordinator 2>&1 | tail -n 1
swift build -c release --product gan-worker 2>&1 | tail -n 1
python3 bench/link.py "$@"
