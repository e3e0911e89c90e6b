#!/usr/bin/env bash
# The emulated cluster (issue 24; see bench/emucluster.py): every worker and the coordinator a
# "machine" with its own network namespace, tbf-shaped link and cgroup CPU budget; RingGAN
# against PyTorch DDP/gloo at N = 1, 2, 4, 8 (16) workers. Installs what it needs (apt packages via
# scripts/setup.sh, PyTorch CPU and matplotlib where missing), builds the release binaries, runs
# as root, and removes every namespace, interface and cgroup on exit, Ctrl-C or a crash.
#   bash bench/emucluster.sh [emucluster.py options, e.g. --workers 1,2,4,8 --models dcgan32 --mode weak]
#   bash bench/emucluster.sh --mpi [mpi_compare.py options]   (the ring against OpenMPI's
#       MPI_Allreduce on the same machines; installs openmpi-bin and libopenmpi-dev)
#   bash bench/emucluster.sh --skew [rig_skew.py options]   (what a statistics exchange waits
#       for on these machines after the same work on every rank)
# It needs root (namespaces, tc, cgroups): run by another user it runs itself again under sudo,
# keeping PATH (plain `sudo bash ...` resets PATH to sudo's secure_path, which need not hold
# the Swift toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then exec sudo env "PATH=$PATH" bash "$0" "$@"; fi
bash scripts/setup.sh
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ "${1:-}" = --skew ]; then
    # The rig's own skew (bench/rig_skew.py): a statistics exchange after the same work on every rank.
    shift
    swift build -c release --product gan-dist-bench 2>&1 | tail -n 1
    trap 'as_root python3 bench/emucluster.py --cleanup' EXIT
    as_root python3 bench/rig_skew.py "$@"
    exit
fi
if [ "${1:-}" = --mpi ]; then
    shift
    for p in openmpi-bin libopenmpi-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openmpi-bin libopenmpi-dev
            break
        }
    done
    swift build -c release --product gan-dist-bench 2>&1 | tail -n 1
    trap 'as_root python3 bench/emucluster.py --cleanup' EXIT
    as_root python3 bench/mpi_compare.py "$@"
    exit
fi
pip_install() {
    python3 -m pip install --quiet "$@" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$@"
}
python3 -c 'import torch' 2>/dev/null || pip_install 'torch==2.13.0+cpu'
python3 -c 'import matplotlib' 2>/dev/null || pip_install matplotlib
swift build -c release --product gan-coordinator 2>&1 | tail -n 1
swift build -c release --product gan-worker 2>&1 | tail -n 1
# Whatever happens to the Python process (even SIGKILL), nothing it made outlives this script.
trap 'as_root python3 bench/emucluster.py --cleanup' EXIT
as_root python3 bench/emucluster.py "$@"
