#!/usr/bin/env bash
# Launcher conventions, end to end on this machine: a gan-coordinator on 127.0.0.1, then
#
#   mpirun   four gan-workers started by Debian's OpenMPI `mpirun -np 4` (rank and world size
#            from OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE, the coordinator from
#            RINGGAN_COORDINATOR passed with -x): trains to the end;
#   slurm    four gan-workers given the environment `srun` gives its tasks (SLURM_PROCID,
#            SLURM_NTASKS, SLURM_JOB_NODELIST=localhost,node[02-04]: the coordinator is the
#            first host of the node list, on MASTER_PORT). There is no Slurm here: the variables
#            are set by this script, not by srun;
#
# each checked for exit status 0, a final checkpoint, and every rank saying which launcher gave
# its rank and where its coordinator address came from.
#
#   bash cluster/launcher-test.sh [--bin DIR] [mpirun|slurm ...]     (default: both)
#
# --bin DIR: gan-coordinator and gan-worker (default .build/release if there, else .build/debug).
# mpirun as root needs --allow-run-as-root, and --oversubscribe where there are fewer cores than
# ranks; both are passed. Exits 77 when mpirun is missing (apt-get install openmpi-bin) and only
# mpirun was asked for. Last line: `launcher-test: P passed, F failed`.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bindir=""
which=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bindir="${2:?--bin needs a folder}"; shift 2 ;;
        mpirun|slurm) which+=("$1"); shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "launcher-test: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ ${#which[@]} -gt 0 ] || which=(mpirun slurm)
NETNS_NAME=launcher-test; source "$root/cluster/netns-lib.sh"   # for netns_find_bin
bindir="$(netns_find_bin "$bindir" gan-coordinator gan-worker)" || exit 2

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ringgan-launcher.XXXXXX")"
token_file="$tmp/token"; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"; chmod 600 "$token_file"
pids=()
cleanup() { for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
passed=0; failed=0; skipped=0
steps=6

free_port() { python3 "$root/cluster/free-port.py"; }   # outside the ephemeral range: mpirun's listeners cannot take it

start_coordinator() {   # name port
    timeout 300 "$bindir/gan-coordinator" --workers 4 --host 127.0.0.1 --port "$2" --token-file "$token_file" \
        --runs-dir "$tmp/runs" --name "$1" --model dcgan --image-size 32 --batch 64 --steps "$steps" \
        --sample-every "$steps" --checkpoint-every "$steps" --rendezvous-timeout 120 \
        > "$tmp/$1-coordinator.log" 2>&1 < /dev/null &
    coord_pid=$!
    pids+=("$coord_pid")
}

check() {   # name launcher-word source-word coordinator-host workers-rc  (worker logs: $tmp/<name>-worker*.log)
    local name="$1" word="$2" source="$3" host="$4" wrc="$5" crc=0 ok=1 r
    wait "$coord_pid" || crc=$?
    [ "$crc" = 0 ] || { ok=0; echo "launcher-test: $name: the coordinator exited $crc"; tail -n 5 "$tmp/$name-coordinator.log"; }
    [ "$wrc" = 0 ] || { ok=0; echo "launcher-test: $name: the workers' launcher exited $wrc"; }
    [ -f "$tmp/runs/$name/checkpoints/step_$(printf '%08d' "$steps").rgan" ] || { ok=0; echo "launcher-test: $name: no final checkpoint"; }
    for r in 0 1 2 3; do
        grep -qF "rank $r of 4 ($word), coordinator $host:$port ($source)" "$tmp"/"$name"-worker*.log \
            || { ok=0; echo "launcher-test: $name: no worker says 'rank $r of 4 ($word), coordinator $host:$port ($source)'"; }
        grep -q "rank $r joined" "$tmp/$name-coordinator.log" || { ok=0; echo "launcher-test: $name: rank $r never joined"; }
    done
    if [ $ok = 1 ]; then echo "launcher-test:   ok    $name: 4 workers ($word ranks, coordinator from $source) trained $steps steps to the end"; passed=$((passed + 1))
    else echo "launcher-test:   FAIL  $name"; tail -n 5 "$tmp"/"$name"-worker*.log; failed=$((failed + 1)); fi
}

for w in "${which[@]}"; do
    port="$(free_port)"
    case "$w" in
    mpirun)
        if ! command -v mpirun >/dev/null; then
            echo "launcher-test: mpirun: SKIPPED (no mpirun; apt-get install openmpi-bin)"; skipped=$((skipped + 1)); continue
        fi
        start_coordinator mpirun "$port"
        as_root=(); [ "$(id -u)" = 0 ] && as_root=(--allow-run-as-root)
        wrc=0
        timeout 300 mpirun "${as_root[@]}" --oversubscribe -np 4 \
            -x RINGGAN_COORDINATOR="127.0.0.1:$port" -x RINGGAN_THREADS=1 -x OPENBLAS_NUM_THREADS=1 \
            "$bindir/gan-worker" --token-file "$token_file" --ring-host 127.0.0.1 \
            > "$tmp/mpirun-worker.log" 2>&1 < /dev/null || wrc=$?
        check mpirun openmpi RINGGAN_COORDINATOR 127.0.0.1 "$wrc"
        ;;
    slurm)
        start_coordinator slurm "$port"
        wpids=()
        for r in 0 1 2 3; do
            env -u RANK -u MASTER_ADDR -u OMPI_COMM_WORLD_RANK -u RINGGAN_COORDINATOR \
                SLURM_PROCID="$r" SLURM_NTASKS=4 SLURM_JOB_NODELIST='localhost,node[02-04]' MASTER_PORT="$port" \
                RINGGAN_THREADS=1 OPENBLAS_NUM_THREADS=1 \
                timeout 300 "$bindir/gan-worker" --token-file "$token_file" --ring-host 127.0.0.1 \
                > "$tmp/slurm-worker-$r.log" 2>&1 < /dev/null &
            wpids+=($!); pids+=($!)
        done
        wrc=0
        for p in "${wpids[@]}"; do wait "$p" || wrc=$?; done
        check slurm slurm SLURM_JOB_NODELIST localhost "$wrc"
        ;;
    esac
done
echo "launcher-test: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] || exit 1
[ "$passed" -gt 0 ] || exit 77
