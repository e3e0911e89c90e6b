#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

# The interop tests read our TensorBoard files with the real reader (tensorboard) and load our
# exported weights into the tutorial's PyTorch classes (torch, safetensors, numpy). Installed
# only when missing; Debian 12's system Python needs --break-system-packages for pip.
PY_TEST_PACKAGES=(tensorboard safetensors numpy 'torch==2.13.0+cpu')
if ! python3 -c 'import tensorboard, torch, safetensors, numpy' 2>/dev/null; then
    echo "test: installing the Python packages of the interop tests: ${PY_TEST_PACKAGES[*]}"
    python3 -m pip install --quiet "${PY_TEST_PACKAGES[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "${PY_TEST_PACKAGES[@]}" || true
fi
# The Kubernetes schema validator (cluster/validate-k8s.sh); without it that check is skipped.
command -v kubernetes-validate >/dev/null \
    || python3 -m pip install --quiet kubernetes-validate 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate 2>/dev/null || true
if python3 -c 'import tensorboard, torch, safetensors, numpy' 2>/dev/null; then
    # With the packages in place, a missing one fails the interop tests instead of skipping them.
    export RINGGAN_REQUIRE_INTEROP=1
else
    echo "test: WARNING: could not install ${PY_TEST_PACKAGES[*]} (PyPI unreachable?);"
    echo "test: WARNING: the TensorBoard-reader and PyTorch-interop tests will report themselves skipped"
fi

# Layers only point down (Sources/ imports against the graph in the script), and the index of
# backward rules in docs/ARCHITECTURE.md is where the ops are.
bash scripts/check-layers.sh
python3 scripts/backward-index.py --check docs/ARCHITECTURE.md
# No function in Sources/ over 60 lines (a newcomer reads each in one screen).
python3 scripts/check-function-length.py
# The Python that judges runs (cluster/runcheck.py) under pytest (Debian's python3-pytest where
# the python3 on PATH has none).
ringgan_pytest=python3
python3 -c 'import pytest' 2>/dev/null || ringgan_pytest=/usr/bin/python3
"$ringgan_pytest" -m pytest -q -p no:cacheprovider cluster/test_runcheck.py
swift build --build-tests 2>&1 | tail -n 3
# The test process runs the OpenBLAS kernels the executables run: where OpenBLAS falls back to
# its generic kernels on a CPU it does not know, `gan` sets OPENBLAS_CORETYPE and re-executes
# itself (BLASRuntime.selectKernels), which a test process cannot do, so the value `gan info`
# ends up with is exported here. A value already set (by the user or the machine) is kept, so
# `OPENBLAS_CORETYPE=Prescott bash scripts/test.sh` runs the whole suite on the generic kernels.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    core=$("$(swift build --show-bin-path)/gan" info 2>/dev/null | sed -n 's/^openblas core: *//p')
    if [ -n "$core" ] && [ "$core" != unknown ]; then export OPENBLAS_CORETYPE="$core"; fi
fi
echo "test: OpenBLAS kernels: ${OPENBLAS_CORETYPE:-as OpenBLAS detects them}"
xctest_log="$(mktemp)"
trap 'rm -f "$xctest_log"' EXIT
# Two suites (scripts/suites.sh, from Tests/slow-classes.txt): the fast one (under 2 minutes;
# scripts/fast-test.sh runs it alone), then the slow one (processes, rings on sockets, seconds of
# training). The recipe suite of scripts/recipe-test.sh (release build, minutes) is left to that script.
source scripts/suites.sh
xctests=0; xcskipped=0
for suite in fast slow; do
    if [ $suite = fast ]; then
        echo "test: the fast suite (every class not in Tests/slow-classes.txt)"
        swift test --skip DefaultRecipeTests --skip "$SLOW_FILTER" 2>&1 | tee "$xctest_log"
    else
        echo "test: the slow suite (Tests/slow-classes.txt)"
        swift test --skip DefaultRecipeTests --filter "$SLOW_FILTER" 2>&1 | tee "$xctest_log"
    fi
    # XCTest's own count ("Executed N tests, with F failures" of the whole run). With --skip or
    # --filter the whole run's suite is called 'Selected tests' instead of 'All tests'.
    summary=$(grep -E "Test Suite '(All|Selected) tests' (passed|failed)" -A1 "$xctest_log" | tail -n 1 || true)
    if [ -z "$summary" ]; then
        echo "test: FAILED: swift test printed no closing 'Executed N tests' line for the $suite suite"
        exit 1
    fi
    n=$(echo "$summary" | grep -oE 'Executed [0-9]+ test' | grep -oE '[0-9]+' | tail -n 1)
    k=$(echo "$summary" | grep -oE '[0-9]+ tests? skipped' | grep -oE '^[0-9]+' || true)
    echo "test: the $suite suite: $n tests, ${k:-0} skipped"
    xctests=$((xctests + n)); xcskipped=$((xcskipped + ${k:-0}))
done

# Cluster and container files (cluster/, docker/). The compose file is validated with Debian's
# docker-compose (a placeholder token satisfies its required variable), and the Kubernetes
# manifests and the compose file are checked against each other.
echo "test: docker-compose config (docker/docker-compose.yml)"
RINGGAN_TOKEN="${RINGGAN_TOKEN:-placeholder-for-config-check}" docker-compose -f docker/docker-compose.yml config -q
ringgan_py=python3
python3 -c 'import yaml' 2>/dev/null || ringgan_py=/usr/bin/python3   # python3-yaml comes with docker-compose
"$ringgan_py" cluster/check-manifests.py
# Checks that may report themselves skipped (exit 77) where this machine cannot run them; each
# is counted once in the closing line, and the skipped ones are named there.
extra_passed=0; extra_skipped=0; skipped_names=()
counted() {   # name command...: 0 passed, 77 skipped, anything else fails the suite
    local name="$1" rc=0; shift
    "$@" || rc=$?
    if [ "$rc" = 0 ]; then extra_passed=$((extra_passed + 1))
    elif [ "$rc" = 77 ]; then extra_skipped=$((extra_skipped + 1)); skipped_names+=("$name")
    else echo "test: $name: FAILED (exit $rc)"; exit 1; fi
}
# The manifests against the real Kubernetes schemas (kubernetes-validate from PyPI).
counted k8s-schemas bash cluster/validate-k8s.sh
# Coordinator and two workers in separate network namespaces, like three hosts (needs root),
# with the binaries just built above.
ringgan_bin="$(swift build --show-bin-path)"
if [ "$(id -u)" = 0 ]; then bash cluster/netns-test.sh --bin "$ringgan_bin"
else sudo bash cluster/netns-test.sh --bin "$ringgan_bin"; fi
# The fault matrix's quick version (cluster/fault-matrix.sh --quick, about 1.5 minutes with the
# debug build on 2 cores): a worker killed with -9, a worker frozen with SIGSTOP, a slow lossy
# link on every host, hostile peers during a run, each judged against an unfaulted run's
# parameters. It needs root (namespaces); otherwise it exits 77 with the reason: skipped.
counted fault-matrix bash cluster/fault-matrix.sh --quick --bin "$ringgan_bin"
# Four workers launched by OpenMPI's mpirun, and four given Slurm's task variables.
counted launchers bash cluster/launcher-test.sh --bin "$ringgan_bin"
# Real Slurm (cluster/slurm-test.sh, about 35 s with the debug build): a one-host cluster (munged,
# slurmctld, slurmd started as plain daemons in a temporary folder, a node of 4 CPUs), the
# documented sbatch script (docs/DISTRIBUTED.md) submitted with sbatch and run to the end, and `srun -n 4 gan-worker`
# against a coordinator; everything stopped afterwards. Root, else skipped with the reason.
if [ "$(id -u)" = 0 ]; then counted slurm bash cluster/slurm-test.sh --bin "$ringgan_bin"
else counted slurm sudo bash cluster/slurm-test.sh --bin "$ringgan_bin"; fi
# A short soak (cluster/soak.sh --quick, about 20 s with the debug build): four workers train a
# tiny DCGAN for 400 steps while their memory, descriptors and checkpoints are sampled; flat
# memory and descriptors, equal replica checksums and the checkpoint rotation are checked (the
# long soak's figures are in docs/RELIABILITY.md).
counted soak bash cluster/soak.sh --quick --bin "$ringgan_bin"
# The docker-compose cluster built and run for real (docker/test.sh; root and a container engine,
# else skipped with the reason).
if [ "$(id -u)" = 0 ]; then counted containers bash docker/test.sh
else counted containers sudo bash docker/test.sh; fi

# A brief fuzz run of every parser of outside bytes (fuzz/run.sh: .npy, safetensors, IDX raw
# and gzip, checkpoints, wire frames and the handshake), 15 s each from the committed seeds: a
# crash, leak, timeout or out-of-memory input fails the suite. Where swiftc cannot build a
# libFuzzer target the run reports itself skipped (exit 77) instead of failing.
fuzz_rc=0
bash fuzz/run.sh --time "${RINGGAN_FUZZ_SECONDS:-15}" || fuzz_rc=$?
fuzz_passed=1; fuzz_skipped=0
if [ "$fuzz_rc" = 77 ]; then
    echo "test: fuzz: SKIPPED (the fuzzer toolchain is not usable on this machine)"
    fuzz_passed=0; fuzz_skipped=1
elif [ "$fuzz_rc" != 0 ]; then
    echo "test: fuzz: FAILED (fuzz/run.sh exit $fuzz_rc; the inputs are under .build-fuzz/findings/)"
    exit 1
fi

# One closing line for the whole suite: the XCTest cases plus the seven checks above (layers,
# backward index, function length, the checkers' pytest, compose, manifests, network namespaces), the Kubernetes schemas, the fault
# matrix, the launchers, real Slurm, the short soak, the containers and the fuzz run.
[ "$fuzz_skipped" = 0 ] || skipped_names+=(fuzz)
skipped=$(( ${xcskipped:-0} + fuzz_skipped + extra_skipped ))
echo "ringgan: $(( ${xctests:-0} - ${xcskipped:-0} + 7 + extra_passed + fuzz_passed )) passed, 0 failed, $skipped skipped${skipped_names[*]:+ (not run here: ${skipped_names[*]})}"
