#!/usr/bin/env bash
# Whole training runs against PyTorch (see bench/wholerun.py): sets up (apt packages, PyTorch CPU),
# builds the release binaries, runs the comparison and writes its section of bench/RESULTS.md.
#   bash bench/wholerun.sh [wholerun.py options, e.g. --rounds 3 --threads 1,2 --scale 0.5]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! python3 -c 'import torch' 2>/dev/null; then
    echo "wholerun: installing PyTorch (CPU)"
    python3 -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages 'torch==2.13.0+cpu'
fi
swift build -c release --product gan 2>&1 | tail -n 1
swift build -c release --product gan-coordinator 2>&1 | tail -n 1
swift build -c release --product gan-worker 2>&1 | tail -n 1
swift build -c release --product gan-bench 2>&1 | tail -n 1
python3 bench/wholerun.py "$@"
