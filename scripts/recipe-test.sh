#!/usr/bin/env bash
# The recipe suite: checks that take minutes with the release build, kept out of the normal suite
# (scripts/test.sh skips them). Today: DefaultRecipeTests, every model's default recipe trained
# on the real digits for 300 steps must vary with its latent, and the tutorial's collapsed
# StyleGAN settings must not (about 5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product gan 2>&1 | tail -n 1
swift build --build-tests 2>&1 | tail -n 1
export RINGGAN_SLOW=1 RINGGAN_RELEASE_BIN="$(swift build -c release --show-bin-path)/gan"
swift test --skip-build --filter 'GANTests.DefaultRecipeTests'
