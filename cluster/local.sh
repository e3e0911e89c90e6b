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
# The script supervises the coordinator: when it dies abnormally (killed by a signal, or exit
# status 1: the run failed after it started), it is started again with `--resume auto` (the run's
# newest checkpoint that reads back whole), at most --restarts times; the workers, still waiting
# for it (gan-worker --rejoin-timeout), rejoin, and any that had exited are started again. Exit
# status 2 (could not start: flags, token, run folder, data, port) and 64 (a malformed flag) are
# not retried, nor are 130 / 143 (the coordinator stopped on SIGINT / SIGTERM after its final
# checkpoint). A coordinator that hangs instead of dying is found by its heartbeat file
# (runs/<name>/logs/coordinator.heartbeat, gan-coordinator --heartbeat-file, touched about every
# second by its loop): when it is older than --stale-after seconds the coordinator is killed
# (SIGKILL) and restarted the same way. The script exits with the coordinator's last status;
# then the workers are stopped.
# Ctrl-C or SIGTERM: the coordinator is asked to stop (the steps already sent are trained, rank 0
# writes a checkpoint and a grid, the workers exit), the command that resumes the run is printed
# and the script exits 130; a second Ctrl-C stops everything at once. Each worker runs one
# engine thread (RINGGAN_THREADS=1).
set -euo pipefail

usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  -n, --workers N   number of workers (default 4)
  --name NAME       run name: the run folder is <runs-dir>/NAME (default local-<date>-<time>)
  --port PORT       coordinator port on 127.0.0.1 (default $MASTER_PORT, else 29500, else a free one)
  --restarts N      restart a coordinator that dies abnormally at most N times (default 3; 0: never)
  --stale-after S   kill (and restart) a coordinator whose heartbeat file is older than S seconds
                    (default 30; 0: no liveness check)
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
max_restarts=3
stale_after=30
bindir=".build/release"
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--workers) n="${2:?-n needs a number}"; shift 2 ;;
        --name) name="${2:?--name needs a value}"; shift 2 ;;
        --port) port="${2:?--port needs a value}"; shift 2 ;;
        --restarts) max_restarts="${2:?--restarts needs a number}"; shift 2 ;;
        --stale-after) stale_after="${2:?--stale-after needs a number of seconds}"; shift 2 ;;
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
case "$max_restarts" in ''|*[!0-9]*) echo "local.sh: --restarts must be a number (0 or more), got '$max_restarts'" >&2; exit 2 ;; esac
case "$stale_after" in ''|*[!0-9]*) echo "local.sh: --stale-after must be a whole number of seconds (0: no liveness check), got '$stale_after'" >&2; exit 2 ;; esac
for exe in gan-coordinator gan-worker; do
    if [ ! -x "$bindir/$exe" ]; then
        echo "local.sh: $bindir/$exe not found; build first: swift build -c release (or pass --debug / --bin DIR)" >&2
        exit 2
    fi
done

# The run folder: the coordinator's --runs-dir / --name if given after --, else ours. A restart
# passes --resume auto instead of any --resume given here (restart_flags).
runs_dir="runs"
nflags=${#coord_flags[@]}
restart_flags=()
for ((i = 0; i < nflags; i++)); do
    [ -n "${coord_flags[$i]+set}" ] || continue
    case "${coord_flags[$i]}" in
        --runs-dir) runs_dir="${coord_flags[$((i + 1))]:-runs}" ;;
        --runs-dir=*) runs_dir="${coord_flags[$i]#--runs-dir=}" ;;
        --name) name="${coord_flags[$((i + 1))]:-$name}"; unset 'coord_flags[i]' 'coord_flags[i+1]'; i=$((i + 1)); continue ;;
        --name=*) name="${coord_flags[$i]#--name=}"; unset 'coord_flags[i]'; continue ;;
        --resume) i=$((i + 1)); continue ;;
        --resume=*) continue ;;
        --workers|--workers=*|--spawn|--host|--host=*|--port|--port=*|--token-file|--token-file=*|--heartbeat-file|--heartbeat-file=*)
            echo "local.sh: '${coord_flags[$i]}' is set by the launcher (use -n / --port)" >&2; exit 2 ;;
    esac
    restart_flags+=("${coord_flags[$i]}")
done
coord_flags=(${coord_flags[@]+"${coord_flags[@]}"})
restart_flags+=(--resume auto)
[ -n "$name" ] || name="local-$(date +%Y%m%d-%H%M%S)"
run_dir="$runs_dir/$name"
log_dir="$run_dir/logs"
mkdir -p "$log_dir"

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
if [ -z "$port" ]; then
    port="${MASTER_PORT:-29500}"
    if command -v ss >/dev/null && port_in_use "$port"; then
        port="$(python3 "$root/cluster/free-port.py")"
        echo "local.sh: port ${MASTER_PORT:-29500} is in use; using $port"
    fi
fi

# The shared token: random, in a file only this user can read, removed on exit.
token_file="$(mktemp "${TMPDIR:-/tmp}/ringgan-token.XXXXXX")"
chmod 600 "$token_file"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"

coord_pid=""
watch_pid=""
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
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
    [ -n "$coord_pid" ] && kill -TERM "$coord_pid" 2>/dev/null || true
    stop_workers
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
    rm -f "$token_file"
}
# The command that resumes this run: the same cluster, the run folder by name, --resume auto.
resume_command() {
    local words=(bash cluster/local.sh -n "$n" --name "$name" --restarts "$max_restarts")
    case "$bindir" in
        .build/release) ;;
        .build/debug) words+=(--debug) ;;
        *) words+=(--bin "$bindir") ;;
    esac
    [ "$stale_after" = 30 ] || words+=(--stale-after "$stale_after")
    words+=(-- "${restart_flags[@]}")
    printf '%q ' "${words[@]}" | sed 's/ $//'
}
# A first Ctrl-C / SIGTERM: the coordinator (which ignores the terminal's SIGINT, as a background
# job of this script) is sent SIGTERM and finishes the steps it sent; rank 0 writes the final
# checkpoint and grid; then the workers, which have exited, are reaped. A second one: at once.
on_signal() {
    trap hard_stop INT TERM
    echo >&2
    if [ -n "$coord_pid" ] && kill -0 "$coord_pid" 2>/dev/null; then
        echo "local.sh: interrupted; the coordinator finishes the steps already sent and rank 0 writes a checkpoint (Ctrl-C again to stop at once)" >&2
        kill -TERM "$coord_pid" 2>/dev/null || true
        wait "$coord_pid" 2>/dev/null || true
        coord_pid=""
        local p
        for _ in $(seq 100); do
            local any=0
            for p in ${worker_pids[@]+"${worker_pids[@]}"}; do kill -0 "$p" 2>/dev/null && any=1; done
            [ $any = 1 ] || break
            sleep 0.1
        done
    fi
    hard_stop
}
hard_stop() {
    trap - INT TERM
    echo "local.sh: stopping the cluster (logs in $log_dir)" >&2
    cleanup
    echo "local.sh: to resume: $(resume_command)" >&2
    exit 130
}
trap on_signal INT TERM
trap cleanup EXIT

echo "local.sh: run $run_dir: coordinator on 127.0.0.1:$port, $n worker(s), binaries in $bindir"
echo "local.sh: logs in $log_dir (coordinator.log, rank-0.log .. rank-$((n - 1)).log)"

# The coordinator's heartbeat: it touches the file about every second from its own loop.
heartbeat_file="$log_dir/coordinator.heartbeat"
# Liveness: kills coordinator $1 (SIGKILL, which also ends a stopped one) once its heartbeat file
# is older than --stale-after seconds (a file not made yet counts from the start); the supervisor
# below sees it killed and restarts it. Ends with the coordinator.
watch_heartbeat() {
    local pid=$1 started now m
    started=$(date +%s)
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        now=$(date +%s)
        m=$(stat -c %Y "$heartbeat_file" 2>/dev/null) || m=$started
        [ "$m" -ge "$started" ] || m=$started   # a file of an earlier coordinator
        if [ $((now - m)) -gt "$stale_after" ] && kill -0 "$pid" 2>/dev/null; then
            echo "local.sh: the coordinator (pid $pid) is hung: its heartbeat $heartbeat_file was last touched $((now - m)) s ago (--stale-after $stale_after); killing it" \
                >> "$log_dir/coordinator.log"
            kill -KILL "$pid" 2>/dev/null || true
            return 0
        fi
    done
}
# The coordinator's output goes to one log across restarts (appended).
start_coordinator() {
    "$bindir/gan-coordinator" --workers "$n" --host 127.0.0.1 --port "$port" --token-file "$token_file" \
        --runs-dir "$runs_dir" --name "$name" --heartbeat-file "$heartbeat_file" "$@" \
        >> "$log_dir/coordinator.log" 2>&1 < /dev/null &
    coord_pid=$!
    if [ "$stale_after" -gt 0 ]; then
        watch_heartbeat "$coord_pid" &
        watch_pid=$!
    fi
}
# Rank $1; its log is appended to when it is started again.
start_worker() {
    RINGGAN_THREADS=1 OPENBLAS_NUM_THREADS=1 "$bindir/gan-worker" --rank "$1" --coordinator "127.0.0.1:$port" \
        --token-file "$token_file" --ring-host 127.0.0.1 \
        >> "$log_dir/rank-$1.log" 2>&1 < /dev/null &
    worker_pids[$1]=$!
}

# The log exists (empty) before tail opens it: the coordinator's redirection runs in the
# background job and may come after tail starts, which then gave up ("cannot open") and showed
# nothing. -F also follows the file if it is replaced. It follows the log until this script ends.
: > "$log_dir/coordinator.log"
for ((r = 0; r < n; r++)); do : > "$log_dir/rank-$r.log"; done
start_coordinator ${coord_flags[@]+"${coord_flags[@]}"}
tail -n +1 -s 0.2 --pid=$$ -F "$log_dir/coordinator.log" 2>/dev/null &
tail_pid=$!

for ((r = 0; r < n; r++)); do start_worker "$r"; done
echo "local.sh: coordinator pid $coord_pid, worker pids ${worker_pids[*]}"

# Supervise: a coordinator that dies abnormally is started again with --resume auto.
restarts=0
while true; do
    status=0
    wait "$coord_pid" || status=$?
    coord_pid=""
    if [ -n "$watch_pid" ]; then kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; watch_pid=""; fi
    case "$status" in
        0) break ;;
        2|64) echo "local.sh: the coordinator could not start (status $status); not restarting it" >&2; break ;;
        130|143) echo "local.sh: the coordinator stopped on SIGINT / SIGTERM (status $status) after its final checkpoint; not restarting it" >&2; break ;;
    esac
    if [ "$status" -gt 128 ]; then
        how="was killed by signal $((status - 128)) ($(kill -l "$((status - 128))" 2>/dev/null || echo '?'))"
    else
        how="exited with status $status"
    fi
    if [ "$restarts" -ge "$max_restarts" ]; then
        echo "local.sh: the coordinator $how; not restarting it (--restarts $max_restarts used up)" >&2
        break
    fi
    restarts=$((restarts + 1))
    # (Into the log, which the terminal follows.)
    echo "local.sh: the coordinator $how; restarting it with --resume auto (restart $restarts of $max_restarts)" \
        >> "$log_dir/coordinator.log"
    sleep 1
    # Workers still running rejoin the new coordinator on their own; any that exited (told to
    # stop, out of --rejoin-timeout, or run with --rejoin-timeout 0) are started again.
    for ((r = 0; r < n; r++)); do
        if ! kill -0 "${worker_pids[$r]}" 2>/dev/null; then
            wstatus=0
            wait "${worker_pids[$r]}" 2>/dev/null || wstatus=$?
            echo "local.sh: rank $r had exited (status $wstatus); starting it again" >&2
            start_worker "$r"
        fi
    done
    start_coordinator "${restart_flags[@]}"
    echo "local.sh: coordinator pid $coord_pid (restart $restarts), worker pids ${worker_pids[*]}"
done
sleep 0.5   # tail shows the last lines
kill "$tail_pid" 2>/dev/null || true
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
    echo "local.sh: done.$([ "$restarts" -gt 0 ] && echo " (the coordinator was restarted $restarts time(s))")"
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
