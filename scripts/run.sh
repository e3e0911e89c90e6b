#!/usr/bin/env bash
# The main job. Until the trainer and the cluster exist, it builds RingGAN in release mode,
# prints which OpenBLAS kernels run, and runs the engine benchmark (bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release 2>&1 | tail -n 3
./.build/release/gan info
./.build/release/gan-bench "$@"
