#!/usr/bin/env bash
# A local RingGAN cluster: one gan-coordinator and N gan-worker processes on this machine,
# started the way a user starts them on separate hosts (separate processes, a shared token file,
# workers joining the coordinator by address) rather than with `gan-coordinator --spawn`.
#
#   bash cluster/local.sh [-n N] [--name NAME] [--port PORT] [--release|--debug|--bin DIR] [-- COORDINATOR FLAGS...]
#
#   bash cluster/local.sh -n 4 --name digits -- --model dcgan --image-size 32 --steps 2000
#
# Everything after `--` goes to gan-coordinator unchanged (model, loss, steps, batch, data, ...).
# Logs: runs/<name>/logs/coordinator.log and runs/<name>/logs/rank-<r>.log (the coordinator's
# output is also shown here). Samples and checkpoints: runs/<name>/samples, runs/<name>/checkpoints.
# The script waits for the coordinator and exits with its status; if the coordinator fails, or
# on Ctrl-C / SIGTERM, the workers are stopped. Each worker runs one engine thread (RINGGAN_THREADS=1).
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  -n, --workers N   number of workers (default 4)
  --name NAME       run name: the run folder is <runs-dir>/NAME (default local-<date>-<time>)
  --port PORT       coordinator port on 127.0.0.1 (default $MASTER_PORT, else 29500, else a free one)
  --release         binaries from .build/release (default)
  --debug           binaries from .build/debug
  --bin DIR         binaries from DIR
  -h, --help        this text
EOF
}

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

n=4
name=""
port=""
bindir=".build/release"
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--workers) n="${2:?-n needs a number}"; shift 2 ;;
        --name) name="${2:?--name needs a value}"; shift 2 ;;
        --port) port="${2:?--port needs a value}"; shift 2 ;;
        --release) bindir=".build/release"; shift ;;
        --debug) bindir=".build/debug"; shift ;;
        --bin) bindir="${2:?--bin needs a folder}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "local.sh: unknown option '$1' (coordinator flags go after --)" >&2; usage >&2; exit 2 ;;
    esac
done
coord_flags=("$@")

case "$n" in ''|*[!0-9]*) echo "local.sh: -n must be a positive integer, got '$n'" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "local.sh: -n must be at least 1" >&2; exit 2; }
for exe in gan-coordinator gan-worker; do
    if [ ! -x "$bindir/$exe" ]; then
        echo "local.sh: $bindir/$exe not found; build first: swift build -c release (or pass --debug / --bin DIR)" >&2
        exit 2
    fi
done

# The run folder: the coordinator's --runs-dir / --name if given after --, else ours.
runs_dir="runs"
nflags=${#coord_flags[@]}
for ((i = 0; i < nflags; i++)); do
    [ -n "${coord_flags[$i]+set}" ] || continue
    case "${coord_flags[$i]}" in
        --runs-dir) runs_dir="${coord_flags[$((i + 1))]:-runs}" ;;
        --runs-dir=*) runs_dir="${coord_flags[$i]#--runs-dir=}" ;;
        --name) name="${coord_flags[$((i + 1))]:-$name}"; unset 'coord_flags[i]' 'coord_flags[i+1]'; i=$((i + 1)) ;;
        --name=*) name="${coord_flags[$i]#--name=}"; unset 'coord_flags[i]' ;;
        --workers|--workers=*|--spawn|--host|--host=*|--port|--port=*|--token-file|--token-file=*)
            echo "local.sh: '${coord_flags[$i]}' is set by the launcher (use -n / --port)" >&2; exit 2 ;;
    esac
done
coord_flags=(${coord_flags[@]+"${coord_flags[@]}"})
[ -n "$name" ] || name="local-$(date +%Y%m%d-%H%M%S)"
run_dir="$runs_dir/$name"
log_dir="$run_dir/logs"
mkdir -p "$log_dir"

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
if [ -z "$port" ]; then
    port="${MASTER_PORT:-29500}"
    if command -v ss >/dev/null && port_in_use "$port"; then
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        echo "local.sh: port ${MASTER_PORT:-29500} is in use; using $port"
    fi
fi

# The shared token: random, in a file only this user can read, removed on exit.
token_file="$(mktemp "${TMPDIR:-/tmp}/ringgan-token.XXXXXX")"
chmod 600 "$token_file"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"

coord_pid=""
tail_pid=""
worker_pids=()
stop_workers() {
    local p alive=()
    for p in ${worker_pids[@]+"${worker_pids[@]}"}; do
        kill -0 "$p" 2>/dev/null && alive+=("$p")
    done
    [ ${#alive[@]} -gt 0 ] || return 0
    echo "local.sh: stopping worker(s) ${alive[*]}" >&2
    kill -TERM "${alive[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
        local any=0
        for p in "${alive[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
        [ $any = 1 ] || break
        sleep 0.1
    done
    for p in "${alive[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait "${alive[@]}" 2>/dev/null || true
}
cleanup() {
    [ -n "$coord_pid" ] && kill -TERM "$coord_pid" 2>/dev/null || true
    stop_workers
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
    rm -f "$token_file"
}
on_signal() {
    echo >&2
    echo "local.sh: interrupted; stopping the cluster (logs in $log_dir)" >&2
    trap - INT TERM
    cleanup
    exit 130
}
trap on_signal INT TERM
trap cleanup EXIT

echo "local.sh: run $run_dir: coordinator on 127.0.0.1:$port, $n worker(s), binaries in $bindir"
echo "local.sh: logs in $log_dir (coordinator.log, rank-0.log .. rank-$((n - 1)).log)"

# The log exists (empty) before tail opens it: the coordinator's redirection runs in the
# background job and may come after tail starts, which then gave up ("cannot open") and showed
# nothing. -F also follows the file if it is replaced.
: > "$log_dir/coordinator.log"
"$bindir/gan-coordinator" --workers "$n" --host 127.0.0.1 --port "$port" --token-file "$token_file" \
    --runs-dir "$runs_dir" --name "$name" ${coord_flags[@]+"${coord_flags[@]}"} \
    > "$log_dir/coordinator.log" 2>&1 < /dev/null &
coord_pid=$!
tail -n +1 -s 0.2 --pid="$coord_pid" -F "$log_dir/coordinator.log" 2>/dev/null &
tail_pid=$!

for ((r = 0; r < n; r++)); do
    RINGGAN_THREADS=1 OPENBLAS_NUM_THREADS=1 "$bindir/gan-worker" --rank "$r" --coordinator "127.0.0.1:$port" \
        --token-file "$token_file" --ring-host 127.0.0.1 \
        > "$log_dir/rank-$r.log" 2>&1 < /dev/null &
    worker_pids+=($!)
done
echo "local.sh: coordinator pid $coord_pid, worker pids ${worker_pids[*]}"

status=0
wait "$coord_pid" || status=$?
coord_pid=""
wait "$tail_pid" 2>/dev/null || true
tail_pid=""

if [ "$status" -eq 0 ]; then
    # The workers end on their own once the coordinator says the run is done; give them a moment.
    for _ in $(seq 100); do
        any=0
        for p in "${worker_pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
        [ $any = 1 ] || break
        sleep 0.1
    done
    stop_workers
    echo "local.sh: done."
    echo "  samples:     $run_dir/samples"
    echo "  checkpoints: $run_dir/checkpoints"
    echo "  logs:        $log_dir"
else
    echo "local.sh: the coordinator exited with status $status; stopping the workers" >&2
    stop_workers
    echo "local.sh: logs in $log_dir (coordinator.log, rank-<r>.log)" >&2
    for ((r = 0; r < n; r++)); do
        echo "--- last lines of $log_dir/rank-$r.log" >&2
        tail -n 5 "$log_dir/rank-$r.log" >&2 || true
    done
fi
exit "$status"
