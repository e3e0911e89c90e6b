#!/usr/bin/env bash
# The benchmarks (release builds): the engine (gan-bench) and the distributed layer
# (gan-dist-bench), each side by side with PyTorch when it is installed. Figures: bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release 2>&1 | tail -n 1
./.build/release/gan info
./.build/release/gan-bench "$@"
echo
./.build/release/gan-dist-bench
