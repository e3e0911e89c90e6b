#!/usr/bin/env bash
# The fault matrix: faults injected into a real multi-host run, one trial at a time, each judged
# by what the run's final parameters or its last checkpoint say. The coordinator and the workers
# each live in their own Linux network namespace, joined by a bridge (cluster/netns-lib.sh, as
# cluster/netns-test.sh does):
#
#   rgfm-c   10.210.0.1    gan-coordinator
#   rgfm-w0  10.210.0.10   gan-worker --rank 0      (rgfm-w1 .11 rank 1, rgfm-w2 .12 rank 2)
#   rgfm-x   10.210.0.99   a hostile host (trial h)
#   rgfm-sw  the bridge; the veth rgfm-sI is host I's port on it (0 is the coordinator)
#
# Trials (each on a tiny model, a few dozen steps, a checkpoint every 2 steps, fresh namespaces):
#
#   a  kill -9 of a random worker at a random step (--trials N times); --min-workers 2 of 3
#   b  kill -9 of rank 0 while it writes a checkpoint: the mlp model (checkpoints of ~24 MB with the
#      optimizer state) and a watcher polling the checkpoint folder every 0.5 ms for rank 0's
#      temporary file (.step_N.rgan.tmp-PID, see Sources/Tensors/AtomicFile.swift), killing when
#      it appears; a hit is a temporary file still there after the kill and no step_N.rgan
#   c  kill -9 of the coordinator at a random step, restarted with --resume auto; the workers
#      (started with --rejoin-timeout) must rejoin. NOT RUN when the binaries lack those flags
#   d  SIGSTOP of a random worker (found dead after --dead-after, the survivors re-form); it is
#      continued (SIGCONT) after the re-formation and must not get back in
#   e  a worker's link cut (its bridge port down) for --dead-after + 3 s, then restored
#   f  a slow, lossy link on every host: netem delay 50ms loss 2% rate 100mbit (tc netem when the
#      kernel has sch_netem, else cluster/fault-tool.py's userspace stand-in on TAP devices);
#      the run must finish with the same parameters as an unshaped run; step times reported
#   g  a full disk while checkpointing: the run folder on a 16 MB tmpfs mounted here, filled
#      after a checkpoint: a clear error naming the device, and the previous checkpoint loads
#   h  hostile peers during a run: idle connections, random bytes, HTTP requests and slow drips
#      to the coordinator's port and both ring ports from rgfm-x, from 6 s before the workers
#      start to the end of a run of about 8 s: the run finishes with unchanged parameters
#
# How each ends: a re-formed run (a, b, d, e, and c) passes when it finishes and its final
# checkpoint equals, tensor for tensor and byte for byte (gan compare), that of
# an uninterrupted run resumed from the checkpoint the re-formation started from, with the number
# of workers the faulted run ended with (the reference: gan-coordinator --spawn --resume, on
# loopback inside rgfm-c). f and h compare with an unfaulted run of the same seed and world size.
# g passes with a non-zero exit, "No space left on device" in the coordinator's error, and the
# checkpoint it names reading back whole (gan verify) and loading (gan sample).
# "Steps lost": steps every rank had completed that were trained again after the re-formation
# (for g: completed steps after the last checkpoint).
#
#   sudo bash cluster/fault-matrix.sh [--trials N] [--quick] [--only LETTERS] [--bin DIR]
#                                     [--report FILE] [--seed S] [--keep]
#
#   --trials N     kill trials (a); default 10
#   --quick        the CI version: one kill trial, SIGSTOP, the shaped link, hostile peers
#   --only LETTERS run only these trials, e.g. --only ag
#   --bin DIR      folder with gan-coordinator, gan-worker and gan (default .build/release if
#                  all are there, else .build/debug)
#   --report FILE  also write the table as markdown to FILE
#   --seed S       seed of the random choices (victims, steps); default: from the clock (printed)
#   --keep         keep the work folder (printed) even when everything passes
#
# Environment: RINGGAN_FM_DATA (digits folder, default data/mnist-5k), RINGGAN_FM_TIMEOUT
# (seconds any one process may run, default 240).
#
# Needs root (namespaces, tmpfs); without it exits 77 with the reason (scripts/test.sh counts that
# as skipped). Every process runs under `timeout`; namespaces, tmpfs mounts and qdiscs are removed
# on exit, also on failure or interruption. Exit 0 when nothing failed. Last line:
# `fault-matrix: P passed, F failed, N skipped` (cluster/verdicts.sh).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
NETNS_NAME=fault-matrix
NETNS_NOT_ROOT_EXIT=77
source "$root/cluster/netns-lib.sh"

bindir=""; trials=10; quick=0; only=""; report=""; seed=""; keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bindir="${2:?--bin needs a folder}"; shift 2 ;;
        --trials) trials="${2:?--trials needs a number}"; shift 2 ;;
        --quick) quick=1; shift ;;
        --only) only="${2:?--only needs trial letters}"; shift 2 ;;
        --report) report="${2:?--report needs a file}"; shift 2 ;;
        --seed) seed="${2:?--seed needs a number}"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fault-matrix: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[[ "$trials" =~ ^[0-9]+$ ]] || { echo "fault-matrix: --trials needs a number" >&2; exit 2; }
if [ -z "$only" ]; then
    if [ $quick = 1 ]; then only=adfh; trials=1; else only=abcdefgh; fi
fi
[[ "$only" =~ ^[a-h]+$ ]] || { echo "fault-matrix: --only takes letters a-h" >&2; exit 2; }

netns_require_root cluster/fault-matrix.sh
netns_require_tools ip tc timeout nsenter python3 mount umount dd pgrep awk
bindir="$(netns_find_bin "$bindir" gan-coordinator gan-worker gan)" || exit 2
[ -n "$report" ] && report="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
data="$(cd "${RINGGAN_FM_DATA:-data/mnist-5k}" 2>/dev/null && pwd)" \
    || { echo "fault-matrix: no digits in ${RINGGAN_FM_DATA:-data/mnist-5k} (run scripts/setup.sh)" >&2; exit 2; }
[ -n "$seed" ] || seed=$(( $(date +%s) % 100000 ))
RANDOM=$seed
LIMIT=${RINGGAN_FM_TIMEOUT:-240}
TOOL="$root/cluster/fault-tool.py"

P=rgfm
NS_SW=$P-sw
NS_C=$P-c
NS_W=($P-w0 $P-w1 $P-w2)
NS_X=$P-x
HOSTS=("$NS_C" "${NS_W[@]}" "$NS_X")
ADDRS=(10.210.0.1 10.210.0.10 10.210.0.11 10.210.0.12 10.210.0.99)
SHAPED=(10.211.0.1 10.211.0.10 10.211.0.11 10.211.0.12 10.211.0.99)   # the TAP stand-in's subnet
PORT=29500
REF_PORT=29510
RING_PORT0=29601

work="$(mktemp -d "${TMPDIR:-/tmp}/ringgan-faults.XXXXXX")"
pids=()        # every background process started here (timeout's pid for the RingGAN ones)
mounts=()      # tmpfs mounts
wire_pid=""

# kill_tree SIGNAL PID: the process and everything under it (children first).
kill_tree() {
    local c
    for c in $(pgrep -P "$2" 2>/dev/null); do kill_tree "$1" "$c"; done
    kill "-$1" "$2" 2>/dev/null || true
}

# stop_job JOB: SIGTERM to the program at the bottom of a job (so that it can report), then wait.
kill_leaves() {
    local c kids; kids=$(pgrep -P "$1" 2>/dev/null)
    if [ -z "$kids" ]; then kill -TERM "$1" 2>/dev/null || true; return; fi
    for c in $kids; do kill_leaves "$c"; done
}
stop_job() { kill_leaves "$1"; reap "$1"; }

cleanup() {
    local p m
    for p in ${pids[@]+"${pids[@]}"}; do kill_tree TERM "$p"; done
    [ -n "$wire_pid" ] && kill_tree TERM "$wire_pid"
    sleep 0.2
    for p in ${pids[@]+"${pids[@]}"}; do kill_tree KILL "$p"; done
    [ -n "$wire_pid" ] && kill_tree KILL "$wire_pid"
    wait 2>/dev/null
    # qdiscs live on interfaces inside the namespaces and go with them; TAP devices go with the
    # stand-in's process.
    netns_delete "$P" "${HOSTS[@]}" "$NS_SW"
    for m in ${mounts[@]+"${mounts[@]}"}; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    find "$work" -name token -delete 2>/dev/null
}
on_exit() { cleanup; if [ -n "${final_rm:-}" ]; then rm -rf "$work"; fi; }
trap on_exit EXIT
trap 'echo "fault-matrix: interrupted; work folder kept: $work" >&2; exit 130' INT TERM

# --- results --------------------------------------------------------------------------------

# Counted and printed the way every shell check does (cluster/verdicts.sh); the rows also make
# the report's table.
# shellcheck source=verdicts.sh
source "$root/cluster/verdicts.sh"
verdicts_init fault-matrix
rows=()     # trial|what|outcome|seconds|lost|detail
record() {  # record TRIAL WHAT OUTCOME SECONDS LOST DETAIL (paths shown relative to the work folder)
    local d="${6//$work\//}"
    rows+=("$1|$2|$3|$4|$5|$d")
    local outcome=FAIL; case "$3" in PASS) outcome=PASS ;; "NOT RUN") outcome=SKIP ;; esac
    verdict "$outcome" "$(printf '%-4s %5ss  lost %-4s %s' "$1" "$4" "$5" "$d")"
}

# --- network ----------------------------------------------------------------------------------

fresh_network() {
    pids=()
    netns_delete "$P" "${HOSTS[@]}" "$NS_SW"
    local hosts=("${HOSTS[@]}") addrs=("${ADDRS[@]}")
    if ! (set -e; netns_setup "$P" "$NS_SW" hosts addrs); then
        echo "fault-matrix: could not create the network namespaces (a container without CAP_NET_ADMIN?)" >&2
        return 1
    fi
}

# --- processes --------------------------------------------------------------------------------

# Background jobs run as ( timeout ... ; exit $? ) &: the subshell ends normally, so bash prints
# no "Killed" notice when the program inside is killed on purpose. gan_pid_of JOB finds the
# program (nsenter and env exec, so it is a grandchild: subshell -> timeout -> gan-*).
gan_pid_of() {
    local job="$1" i c g
    for i in $(seq 50); do
        for c in $(pgrep -P "$job" 2>/dev/null); do
            for g in $(pgrep -P "$c" 2>/dev/null); do
                case "$(cat "/proc/$g/comm" 2>/dev/null)" in gan*) echo "$g"; return 0 ;; esac
            done
        done
        sleep 0.1
    done
    return 1
}

# start_coord DIR TAG ARGS...: gan-coordinator in rgfm-c, --json lines to DIR/TAG.out, the log
# to DIR/TAG.log; its `timeout` pid in COORD.
start_coord() {
    local dir="$1" tag="$2"; shift 2
    ( timeout -k 5 "$LIMIT" nsenter --net="/run/netns/$NS_C" "$bindir/gan-coordinator" \
        --token-file "$dir/token" --data "$data" --runs-dir "$dir/runs" --json "$@" \
        > "$dir/$tag.out" 2> "$dir/$tag.log" < /dev/null; exit $? ) 2>/dev/null &
    COORD=$!
    pids+=("$COORD")
}

# start_worker DIR I COORD_ADDR ARGS...: worker I (rank I) in rgfm-wI; its `timeout` pid in W[I].
W=()
# A worker that loses the coordinator waits --rejoin-timeout for it (default 120 s); one that was
# declared dead (d, e) waits that long after the run ends before it gives up, so the trials other
# than c give it 10 s.
start_worker() {
    local dir="$1" i="$2" caddr="$3"; shift 3
    local rejoin=()
    case " $* " in *" --rejoin-timeout "*) ;; *)
        "$bindir/gan-worker" --help 2>&1 | grep -q -- '--rejoin-timeout' && rejoin=(--rejoin-timeout 10) ;;
    esac
    ( timeout -k 5 "$LIMIT" nsenter --net="/run/netns/${NS_W[$i]}" env OPENBLAS_NUM_THREADS=1 RINGGAN_THREADS=1 \
        "$bindir/gan-worker" --rank "$i" --coordinator "$caddr:$PORT" --token-file "$dir/token" \
        --connect-timeout 60 "${rejoin[@]}" "$@" > "$dir/rank-$i.log" 2>&1 < /dev/null; exit $? ) 2>/dev/null &
    W[$i]=$!
    pids+=("${W[$i]}")
}

# reap JOB: waits for it; its exit status in RC (124 or 137: `timeout` ended it).
reap() { RC=0; wait "$1" 2>/dev/null || RC=$?; }

# Completed steps the coordinator has printed (--json lines, in order).
steps_of() { grep -o '"step":[0-9]*' "$1" 2>/dev/null | cut -d: -f2; }
last_step() { steps_of "$1" | tail -n 1; }

# wait_step FILE N SECONDS PID: until the coordinator printed step N (1), or PID ended (0 and
# the timeout alike give 1).
wait_step() {
    local end=$((SECONDS + $3)) s
    while [ $SECONDS -lt $end ]; do
        s=$(last_step "$1"); [ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# wait_log FILE REGEX SECONDS: until the file has a line matching the (extended) regex.
wait_log() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# The last line of a coordinator log that says why it ended.
why_ended() { grep -E "critical|error" "$1" | tail -n 1 | sed 's/^[^ ]* //'; }

# What a run did, from what it wrote for machines (cluster/runcheck.py: the run folder's
# events.jsonl and the coordinator's --json lines), never from its log wording.
runcheck() { python3 "$root/cluster/runcheck.py" "$@"; }
# Steps trained again after re-formations (from the --json step numbers).
steps_lost() { runcheck lost-steps "$1"; }
# Seconds per step of the last formation (the coordinator's images/s over its global batch).
step_time() { runcheck step-time "$1" "$2"; }
# The run's formations: "COUNT N K PATH", the last one's workers, first step and the checkpoint
# it resumed from ("-" from step 0).
formations_of() { runcheck formations "$1"; }

# --- references --------------------------------------------------------------------------------

# reference DIR WORKERS CHECKPOINT|- ARGS...: an uninterrupted run with --spawn on loopback inside
# rgfm-c, from the checkpoint (copied into DIR/ref so that the faulted run's folder is left alone)
# or from step 0 with ARGS; prints its final checkpoint, or nothing when it failed.
reference() {
    local dir="$1/ref" n="$2" from="$3"; shift 3
    mkdir -p "$dir/runs/ref/checkpoints"
    local args=(--workers "$n" --spawn --host 127.0.0.1 --port "$REF_PORT" --runs-dir "$dir/runs" --name ref
                --data "$data" --json --sample-every 0 --checkpoint-every 0 --keep 2 --rendezvous-timeout 60)
    if [ "$from" != - ]; then
        cp "$from" "$dir/runs/ref/checkpoints/"
        args+=(--resume "$dir/runs/ref/checkpoints/$(basename "$from")")
    else
        args+=("$@")
    fi
    timeout -k 5 "$LIMIT" nsenter --net="/run/netns/$NS_C" "$bindir/gan-coordinator" "${args[@]}" \
        > "$dir/ref.out" 2> "$dir/ref.log" < /dev/null
    local s=$?
    [ $s = 0 ] || { echo "fault-matrix: the reference run failed (exit $s): $(why_ended "$dir/ref.log")" >&2; return 1; }
    ls "$dir"/runs/ref/checkpoints/step_*.rgan 2>/dev/null | tail -n 1
}

# Every checkpoint left in a run folder reads back whole; prints a count or the first bad one.
all_verify() {
    local f n=0
    for f in "$1"/checkpoints/step_*.rgan; do
        [ -e "$f" ] || continue
        "$bindir/gan" verify "$f" >/dev/null || { echo "BAD $("$bindir/gan" verify "$f")"; return 1; }
        n=$((n + 1))
    done
    echo "$n"
}

# judge_reformed TRIAL WHAT DIR T0 [NOTE]: a re-formed run must finish and match the reference
# resumed from the checkpoint its last formation started from, with that formation's world size.
judge_reformed() {
    local trial="$1" what="$2" dir="$3" t0="$4" note="${5:-}"
    reap "$COORD"; local cs=$RC
    local secs=$((SECONDS - t0))
    local lost; lost=$(steps_lost "$dir/coord.out")
    if [ "$cs" != 0 ]; then
        record "$trial" "$what" FAIL "$secs" "$lost" "coordinator exit $cs: $(why_ended "$dir/coord.log")${note:+; $note}"
        return
    fi
    local formations n k from
    read -r formations n k from <<< "$(formations_of "$dir/runs/run")"
    local final; final=$(ls "$dir"/runs/run/checkpoints/step_*.rgan 2>/dev/null | tail -n 1)
    local ver; ver=$(all_verify "$dir/runs/run") || { record "$trial" "$what" FAIL "$secs" "$lost" "a checkpoint does not read back: $ver"; return; }
    if [ "$formations" -lt 2 ]; then
        record "$trial" "$what" FAIL "$secs" "$lost" "the run finished without a re-formation (the fault came too late?)${note:+; $note}"
        return
    fi
    local ref; ref=$(reference "$dir" "$n" "$from" "${RUN_ARGS[@]}") || ref=""
    if [ -z "$ref" ]; then record "$trial" "$what" FAIL "$secs" "$lost" "no reference run (see $dir/ref/ref.log)"; return; fi
    local cmp; cmp=$("$bindir/gan" compare "$final" "$ref"); local rc=$?
    local detail="re-formed $((formations - 1))x, last with $n worker(s) from step $k; $ver checkpoints read back; final vs reference: ${cmp#compare: }${note:+; $note}"
    if [ $rc = 0 ]; then record "$trial" "$what" PASS "$secs" "$lost" "$detail"
    else record "$trial" "$what" FAIL "$secs" "$lost" "$detail"; fi
}

new_trial_dir() {
    TD="$work/$1"
    mkdir -p "$TD"
    netns_new_token "$TD/token"
}

# --- the trials -----------------------------------------------------------------------------

SMALL=(--model dcgan --image-size 16 --ngf 8 --ndf 8 --batch 12)
S_STEPS=40          # steps of the small runs

# A small run of 3 workers that re-forms with 2 after a fault (a, d, e). Sets VICTIM, AT.
start_reforming_run() {   # start_reforming_run DIR DEAD_AFTER [COORD_ARGS...]
    local dir="$1" dead="$2"; shift 2
    RUN_ARGS=("${SMALL[@]}" --steps "$S_STEPS" --seed "$seed")
    start_coord "$dir" coord --workers 3 --min-workers 2 --host "${ADDRS[0]}" --port "$PORT" --name run \
        "${RUN_ARGS[@]}" --sample-every 0 --checkpoint-every 2 --keep 1000 \
        --checksum-every 2 --dead-after "$dead" --rendezvous-timeout 30 "$@"
    local i
    for i in 0 1 2; do start_worker "$dir" "$i" "${ADDRS[0]}"; done
    VICTIM=$((RANDOM % 3))
    AT=$((3 + RANDOM % (S_STEPS - 12)))
}

trial_kill() {   # a: kill -9 of a random worker at a random step
    local k="$1" t0=$SECONDS
    new_trial_dir "a$k"; fresh_network || { record "a$k" "kill -9 worker" FAIL 0 - "no network"; return; }
    start_reforming_run "$TD" 10
    local what="kill -9 of rank $VICTIM at step $AT (3 workers, --min-workers 2)"
    if ! wait_step "$TD/coord.out" "$AT" 120 "$COORD"; then
        record "a$k" "$what" FAIL $((SECONDS - t0)) - "step $AT never came: $(why_ended "$TD/coord.log")"; return
    fi
    local v; v=$(gan_pid_of "${W[$VICTIM]}")
    local seen; seen=$(last_step "$TD/coord.out")
    kill -KILL "$v"
    # The steps are short: the kill lands once the coordinator has reported step AT or later.
    what="kill -9 of rank $VICTIM after step $seen (3 workers, --min-workers 2)"
    judge_reformed "a$k" "$what" "$TD" "$t0"
}

trial_checkpoint_kill() {   # b: kill -9 of rank 0 during a checkpoint write
    local t0=$SECONDS
    new_trial_dir b; fresh_network || { record b "kill -9 rank 0 in a checkpoint write" FAIL 0 - "no network"; return; }
    local skip=$((RANDOM % 4))
    RUN_ARGS=(--model mlp --batch 12 --steps 20 --seed "$seed")
    start_coord "$TD" coord --workers 3 --min-workers 2 --host "${ADDRS[0]}" --port "$PORT" --name run \
        "${RUN_ARGS[@]}" --sample-every 0 --checkpoint-every 2 --keep 1000 \
        --checksum-every 2 --dead-after 10 --rendezvous-timeout 30
    local i
    for i in 0 1 2; do start_worker "$TD" "$i" "${ADDRS[0]}"; done
    local r0; r0=$(gan_pid_of "${W[0]}")
    local what="kill -9 of rank 0 during checkpoint write no. $((skip + 1)) (mlp, ~24 MB checkpoints)"
    local hit; hit=$(python3 "$TOOL" watch-kill "$TD/runs/run/checkpoints" "$r0" --skip "$skip" --timeout 120)
    local hrc=$?
    echo "$hit" > "$TD/watch-kill.txt"
    local note; note=$(echo "$hit" | head -n 1 | sed 's/^watch-kill: //')
    if [ $hrc != 0 ]; then
        reap "$COORD"
        record b "$what" FAIL $((SECONDS - t0)) - "the write window was not hit: $note"
        return
    fi
    judge_reformed b "$what" "$TD" "$t0" "$note"
}

trial_coordinator_kill() {   # c: kill -9 of the coordinator, restarted with --resume auto
    local t0=$SECONDS what="kill -9 of the coordinator at a random step, restarted with --resume auto"
    local missing=()
    "$bindir/gan-coordinator" --help 2>&1 | grep -A4 -- '--resume <resume>' | grep -qi auto || missing+=("gan-coordinator --resume auto")
    "$bindir/gan-worker" --help 2>&1 | grep -q -- '--rejoin-timeout' || missing+=("gan-worker --rejoin-timeout")
    if [ ${#missing[@]} -gt 0 ]; then
        local list; list=$(printf '%s and ' "${missing[@]}"); list=${list% and }
        record c "$what" "NOT RUN" 0 - "the binaries in $bindir do not have $list yet (their --help)"
        return
    fi
    new_trial_dir c; fresh_network || { record c "$what" FAIL 0 - "no network"; return; }
    RUN_ARGS=("${SMALL[@]}" --steps "$S_STEPS" --seed "$seed")
    local coord_args=(--workers 3 --host "${ADDRS[0]}" --port "$PORT" --name run "${RUN_ARGS[@]}" --sample-every 0
                      --checkpoint-every 2 --keep 1000 --checksum-every 2 --dead-after 10 --rendezvous-timeout 60)
    start_coord "$TD" coord1 "${coord_args[@]}"
    local first=$COORD i
    for i in 0 1 2; do start_worker "$TD" "$i" "${ADDRS[0]}" --rejoin-timeout 60; done
    local at=$((3 + RANDOM % (S_STEPS - 12)))
    what="kill -9 of the coordinator at step $at, restarted with --resume auto (workers: --rejoin-timeout 60)"
    if ! wait_step "$TD/coord1.out" "$at" 120 "$first"; then
        record c "$what" FAIL $((SECONDS - t0)) - "step $at never came: $(why_ended "$TD/coord1.log")"; return
    fi
    kill -KILL "$(gan_pid_of "$first")"
    reap "$first"
    local before; before=$(last_step "$TD/coord1.out")
    start_coord "$TD" coord "${coord_args[@]}" --resume auto
    reap "$COORD"; local cs=$RC
    local secs=$((SECONDS - t0)) ws=()
    for i in 0 1 2; do reap "${W[$i]}"; ws+=("$RC"); done
    local formations n k from; read -r formations n k from <<< "$(formations_of "$TD/runs/run")"
    # (Rank 0 may have checkpointed a step the coordinator had not yet printed: nothing lost then.)
    local lost=-; [ -n "${k:-}" ] && lost=$((before > k ? before - k : 0))
    if [ "$cs" != 0 ]; then
        record c "$what" FAIL "$secs" "$lost" "restarted coordinator exit $cs: $(why_ended "$TD/coord.log"); workers exit ${ws[*]}"; return
    fi
    if [ "${from:--}" = - ]; then
        record c "$what" FAIL "$secs" "$lost" "the restarted coordinator did not resume from a checkpoint ($TD/runs/run/events.jsonl: $formations formation(s))"; return
    fi
    local final; final=$(ls "$TD"/runs/run/checkpoints/step_*.rgan | tail -n 1)
    local ref; ref=$(reference "$TD" "$n" "$from" "${RUN_ARGS[@]}") || ref=""
    [ -n "$ref" ] || { record c "$what" FAIL "$secs" "$lost" "no reference run"; return; }
    local cmp; cmp=$("$bindir/gan" compare "$final" "$ref"); local rc=$?
    local detail="coordinator killed after step $before; restarted one resumed step $k with $n worker(s); workers exit ${ws[*]}; final vs reference: ${cmp#compare: }"
    if [ $rc = 0 ] && [ "${ws[*]}" = "0 0 0" ]; then record c "$what" PASS "$secs" "$lost" "$detail"
    else record c "$what" FAIL "$secs" "$lost" "$detail"; fi
}

trial_sigstop() {   # d: a frozen worker
    local t0=$SECONDS dead=3
    new_trial_dir d; fresh_network || { record d "SIGSTOP worker" FAIL 0 - "no network"; return; }
    start_reforming_run "$TD" "$dead"
    local what="SIGSTOP of rank $VICTIM at step $AT (--dead-after $dead), SIGCONT after the re-formation"
    if ! wait_step "$TD/coord.out" "$AT" 120 "$COORD"; then
        record d "$what" FAIL $((SECONDS - t0)) - "step $AT never came: $(why_ended "$TD/coord.log")"; return
    fi
    local v; v=$(gan_pid_of "${W[$VICTIM]}")
    kill -STOP "$v"
    what="SIGSTOP of rank $VICTIM after step $(last_step "$TD/coord.out") (--dead-after $dead), SIGCONT after the re-formation"
    local ts=$SECONDS note
    if wait_log "$TD/coord.log" "re-forming the ring" 60; then
        note="re-formation began $((SECONDS - ts)) s after the SIGSTOP"
    else
        note="no re-formation within 60 s of the SIGSTOP"
    fi
    wait_log "$TD/coord.log" "started 2 worker\(s\)" 60
    kill -CONT "$v" 2>/dev/null
    reap "${W[$VICTIM]}"; local vs=$RC
    local said; said=$(grep -E "error|critical" "$TD/rank-$VICTIM.log" | tail -n 1 | sed 's/^[^ ]* //' | cut -c1-160)
    judge_reformed d "$what" "$TD" "$t0" "$note; the continued worker exited $vs (${said:-no error line})"
}

trial_cut_link() {   # e: a worker's link down for longer than --dead-after
    local t0=$SECONDS dead=3
    new_trial_dir e; fresh_network || { record e "cut link" FAIL 0 - "no network"; return; }
    start_reforming_run "$TD" "$dead"
    local port="$P-s$((VICTIM + 1))"
    local what="link of rank $VICTIM cut (bridge port $port down) at step $AT for $((dead + 3)) s (--dead-after $dead)"
    if ! wait_step "$TD/coord.out" "$AT" 120 "$COORD"; then
        record e "$what" FAIL $((SECONDS - t0)) - "step $AT never came: $(why_ended "$TD/coord.log")"; return
    fi
    in_ns "$NS_SW" ip link set "$port" down
    what="link of rank $VICTIM cut (bridge port $port down) after step $(last_step "$TD/coord.out") for $((dead + 3)) s (--dead-after $dead)"
    sleep $((dead + 3))
    in_ns "$NS_SW" ip link set "$port" up
    reap "${W[$VICTIM]}"; local vs=$RC
    judge_reformed e "$what" "$TD" "$t0" "the cut-off worker exited $vs"
}

# A run of 2 workers from step 0 on the addresses given (f, h): its final checkpoint in FINAL.
F_STEPS=20
two_worker_run() {   # two_worker_run DIR COORD_ADDR STEPS [SECONDS_BEFORE_THE_WORKERS]
    local dir="$1" caddr="$2" steps="$3"
    start_coord "$dir" coord --workers 2 --host "$caddr" --port "$PORT" --name run "${SMALL[@]}" --steps "$steps" \
        --seed "$seed" --sample-every 0 --checkpoint-every 0 --checksum-every 2 --dead-after 20 --rendezvous-timeout 60
    [ -n "${4:-}" ] && sleep "$4"
    start_worker "$dir" 0 "$caddr" --ring-port "$RING_PORT0"
    start_worker "$dir" 1 "$caddr" --ring-port "$((RING_PORT0 + 1))"
}
finish_two() {   # the exit statuses "coord w0 w1" in ST
    local a b; reap "$COORD"; a=$RC; reap "${W[0]}"; b=$RC; reap "${W[1]}"; ST="$a $b $RC"
}

# plain_run STEPS: the unshaped, unfaulted run of f and h (same seed, 2 workers, over the
# bridge): its final checkpoint in PLAIN, its seconds per step in PLAIN_STEP.
PLAIN=""; PLAIN_STEP=""
plain_run() {
    new_trial_dir "plain-$1"; fresh_network || return 1
    two_worker_run "$TD" "${ADDRS[0]}" "$1"
    finish_two; local st=$ST
    [ "$st" = "0 0 0" ] || { echo "fault-matrix: the plain run failed ($st): $(why_ended "$TD/coord.log")" >&2; return 1; }
    PLAIN=$(ls "$TD"/runs/run/checkpoints/step_*.rgan | tail -n 1)
    PLAIN_STEP=$(step_time "$TD/coord.out" 12)
}

kernel_netem() {   # does this kernel have sch_netem? (tried on a scratch namespace's lo)
    local ok=1
    ip netns add "$P-probe" 2>/dev/null || return 1
    nsenter --net="/run/netns/$P-probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null && ok=0
    ip netns del "$P-probe"
    return $ok
}

trial_shaped() {   # f: delay 50 ms, loss 2%, 100 Mbit/s on every host
    local t0=$SECONDS what="netem delay 50ms loss 2% rate 100mbit on every host (2 workers, $F_STEPS steps)"
    if ! plain_run "$F_STEPS"; then record f "$what" FAIL $((SECONDS - t0)) - "the unshaped run failed"; return; fi
    new_trial_dir f; fresh_network || { record f "$what" FAIL 0 - "no network"; return; }
    local how caddr i
    if kernel_netem; then
        how="tc netem"
        for i in 0 1 2; do
            in_ns "${HOSTS[$i]}" tc qdisc add dev eth0 root netem delay 50ms loss 2% rate 100mbit \
                || { record f "$what" FAIL 0 - "tc netem failed on ${HOSTS[$i]}"; return; }
        done
        caddr=${ADDRS[0]}
    else
        # No sch_netem in this kernel: each host gets a second interface, eth1 (a TAP device), on
        # the 10.211 subnet, whose frames pass through fault-tool.py wire on their way to the bridge.
        how="fault-tool.py wire (this kernel has no sch_netem)"
        local pairs=()
        for i in 0 1 2; do pairs+=("${HOSTS[$i]}:eth1=$NS_SW:$P-t$i"); done
        rm -f "$TD/wire.ready"
        ( timeout -k 5 "$LIMIT" python3 "$TOOL" wire "${pairs[@]}" --delay 50 --loss 0.02 --rate 100e6 --seed "$seed" \
            --ready "$TD/wire.ready" > "$TD/wire.log" 2>&1; exit $? ) 2>/dev/null &
        wire_pid=$!
        wait_log "$TD/wire.ready" . 10 || { record f "$what" FAIL 0 - "the wire stand-in did not start: $(tail -n 1 "$TD/wire.log")"; return; }
        for i in 0 1 2; do
            in_ns "${HOSTS[$i]}" ip addr add "${SHAPED[$i]}/24" dev eth1
            in_ns "${HOSTS[$i]}" ip link set eth1 up
            in_ns "$NS_SW" ip link set "$P-t$i" master br0
            in_ns "$NS_SW" ip link set "$P-t$i" up
        done
        caddr=${SHAPED[0]}
    fi
    two_worker_run "$TD" "$caddr" "$F_STEPS"
    finish_two; local st=$ST
    local secs=$((SECONDS - t0))
    if [ -n "$wire_pid" ]; then stop_job "$wire_pid"; wire_pid=""; fi
    local wire=""; [ -s "$TD/wire.log" ] && wire="; $(tail -n 1 "$TD/wire.log" | sed 's/^wire: //')"
    local shaped_step; shaped_step=$(step_time "$TD/coord.out" 12)
    local ring=""; grep -qE "rank 0 -> ${caddr%.*}\." "$TD/rank-0.log" && ring="ring over the shaped subnet; "
    if [ "$st" != "0 0 0" ]; then
        record f "$what" FAIL "$secs" - "exit statuses $st: $(why_ended "$TD/coord.log") ($how)"; return
    fi
    local final; final=$(ls "$TD"/runs/run/checkpoints/step_*.rgan | tail -n 1)
    local cmp; cmp=$("$bindir/gan" compare "$final" "$PLAIN"); local rc=$?
    local detail="$how; ${ring}step time ${shaped_step} s shaped vs ${PLAIN_STEP} s unshaped; vs the unshaped run: ${cmp#compare: }$wire"
    SHAPED_TIMES="${shaped_step}/${PLAIN_STEP}"
    if [ $rc = 0 ]; then record f "$what" PASS "$secs" 0 "$detail"; else record f "$what" FAIL "$secs" - "$detail"; fi
}

trial_full_disk() {   # g: the run folder on a small tmpfs, filled after a checkpoint
    local t0=$SECONDS
    new_trial_dir g; fresh_network || { record g "full disk" FAIL 0 - "no network"; return; }
    local disk="$TD/disk"
    mkdir -p "$disk"
    if ! mount -t tmpfs -o size=16m rgfm-tmpfs "$disk"; then
        record g "full disk while checkpointing" FAIL 0 - "could not mount a tmpfs on $disk"; return
    fi
    mounts+=("$disk")
    local at=$((4 + 2 * (RANDOM % 8)))
    local what="run folder on a 16 MB tmpfs, filled (dd) as soon as the step-$at checkpoint appeared (2 workers, no --min-workers)"
    start_coord "$TD" coord --workers 2 --host "${ADDRS[0]}" --port "$PORT" --name run --runs-dir "$disk" \
        "${SMALL[@]}" --steps "$S_STEPS" --seed "$seed" --sample-every 0 --checkpoint-every 2 --keep 1000 \
        --checksum-every 2 --dead-after 10 --rendezvous-timeout 30
    start_worker "$TD" 0 "${ADDRS[0]}"; start_worker "$TD" 1 "${ADDRS[0]}"
    local ck; ck=$(printf '%s/run/checkpoints/step_%08d.rgan' "$disk" "$at")
    local end=$((SECONDS + 120))
    while [ ! -e "$ck" ] && [ $SECONDS -lt $end ] && kill -0 "$COORD" 2>/dev/null; do sleep 0.02; done
    if [ ! -e "$ck" ]; then
        record g "$what" FAIL $((SECONDS - t0)) - "checkpoint $at never appeared: $(why_ended "$TD/coord.log")"; return
    fi
    dd if=/dev/zero of="$disk/filler" bs=64k 2>/dev/null   # until the device is full (ENOSPC)
    reap "$COORD"; local cs=$RC
    local secs=$((SECONDS - t0)) w0 w1; reap "${W[0]}"; w0=$RC; reap "${W[1]}"; w1=$RC
    local err; err=$(why_ended "$TD/coord.log")
    local named; named=$(echo "$err" | grep -oE "the last checkpoint is [^ ;]+" | awk '{print $5}')
    local failed_at; failed_at=$(echo "$err" | grep -oE "rank [0-9]+ at step [0-9]+" | head -n 1 | awk '{print $5}')
    local ckstep=""; [ -n "$named" ] && ckstep=$((10#$(basename "$named" .rgan | cut -d_ -f2)))
    local lost=-; [ -n "$failed_at" ] && [ -n "$ckstep" ] && lost=$((failed_at - 1 - ckstep))
    rm -f "$disk/filler"
    local problems=()
    [ "$cs" != 0 ] || problems+=("the coordinator exited 0")
    echo "$err" | grep -q "No space left on device" || problems+=("no 'No space left on device' in the coordinator's error")
    local ver="" load=""
    if [ -n "$named" ] && [ -e "$named" ]; then
        ver=$("$bindir/gan" verify "$named") || problems+=("$ver")
        if timeout -k 5 120 "$bindir/gan" sample --checkpoint "$named" --out "$TD/sample.png" > "$TD/sample.log" 2>&1; then
            load="gan sample loads it"
        else
            problems+=("gan sample could not load $named: $(tail -n 1 "$TD/sample.log")")
        fi
    else
        problems+=("the error names no existing checkpoint")
    fi
    local stray; stray=$(ls -a "$disk/run/checkpoints" | grep -c '\.tmp-' || true)
    local detail="coordinator exit $cs, workers $w0 $w1: \"$(echo "$err" | sed 's/.*critical //' | cut -c1-220)\"; ${ver#verify: }; $load; $stray temporary files left"
    if [ ${#problems[@]} = 0 ]; then record g "$what" PASS "$secs" "$lost" "$detail"
    else record g "$what" FAIL "$secs" "$lost" "$(IFS=';'; echo "${problems[*]}"); $detail"; fi
}

trial_hostile() {   # h: strangers on the coordinator's and the ring ports during a run
    local t0=$SECONDS what="hostile peers during a run"
    # About 8 s of training under attack: the step count from an unfaulted run's step time.
    if [ -z "$PLAIN_STEP" ] && ! plain_run "$F_STEPS"; then record h "$what" FAIL $((SECONDS - t0)) - "the unfaulted run failed"; return; fi
    local H_STEPS; H_STEPS=$(awk -v t="$PLAIN_STEP" 'BEGIN { n = int(8 / (t > 0 ? t : 1)); print (n < 40 ? 40 : (n > 500 ? 500 : n)) }')
    what="from another host: 20 idle connections per port (reopened when dropped), random bytes, an HTTP request and a new slow drip every second, to the coordinator's port and both ring ports, from 6 s before the workers start to the end (2 workers, $H_STEPS steps)"
    if ! plain_run "$H_STEPS"; then record h "$what" FAIL $((SECONDS - t0)) - "the unfaulted run failed"; return; fi
    new_trial_dir h; fresh_network || { record h "$what" FAIL 0 - "no network"; return; }
    # The strangers come first (past the coordinator's 5 s handshake deadline before the workers
    # join), and stay for the whole run.
    # (1 s for two_worker_run to start the coordinator's listener; the workers 7 s after it.)
    ( sleep 1; timeout -k 5 "$LIMIT" nsenter --net="/run/netns/$NS_X" python3 "$TOOL" hostile --seconds 600 --seed "$seed" \
        "${ADDRS[0]}:$PORT" "${ADDRS[1]}:$RING_PORT0" "${ADDRS[2]}:$((RING_PORT0 + 1))" > "$TD/hostile.log" 2>&1; exit $? ) 2>/dev/null &
    local hp=$!
    pids+=("$hp")
    two_worker_run "$TD" "${ADDRS[0]}" "$H_STEPS" 7
    finish_two; local st=$ST
    local secs=$((SECONDS - t0))
    stop_job "$hp"
    local dropped; dropped=$(grep -c "warning" "$TD/coord.log" || true)
    if [ "$st" != "0 0 0" ]; then record h "$what" FAIL "$secs" - "exit statuses $st: $(why_ended "$TD/coord.log")"; return; fi
    local final; final=$(ls "$TD"/runs/run/checkpoints/step_*.rgan | tail -n 1)
    local cmp; cmp=$("$bindir/gan" compare "$final" "$PLAIN"); local rc=$?
    local wr=0 f; for f in "$TD"/rank-*.log; do wr=$((wr + $(grep -c "warning" "$f" || true))); done
    local detail="finished; $dropped coordinator and $wr worker warnings (strangers dropped); $(tail -n 1 "$TD/hostile.log"); vs the unfaulted run: ${cmp#compare: }"
    if [ $rc = 0 ]; then record h "$what" PASS "$secs" 0 "$detail"; else record h "$what" FAIL "$secs" - "$detail"; fi
}

# --- main --------------------------------------------------------------------------------------

echo "fault-matrix: binaries from $bindir, digits from $data, seed $seed, trials '$only'$([ $quick = 1 ] && echo " (quick)"), work folder $work"
# The judge is `gan verify` / `gan compare` (GAN/CheckpointCompare.swift; GANTests/CheckpointCompareTests
# check that they tell equal from different files).
SHAPED_TIMES=""
t_start=$SECONDS
# run_trial NAME FUNCTION ARGS...: a trial that ends without recording a row (a bug here, an
# expansion error) counts as failed instead of vanishing from the table.
run_trial() {
    local name="$1" before=${#rows[@]} t0=$SECONDS; shift
    "$@"
    [ ${#rows[@]} -gt "$before" ] || record "$name" "$1" FAIL $((SECONDS - t0)) - "the trial stopped without a result (fault-matrix.sh itself failed; see its output)"
}
case "$only" in *a*) for k in $(seq 1 "$trials"); do run_trial "a$k" trial_kill "$k"; done ;; esac
case "$only" in *b*) run_trial b trial_checkpoint_kill ;; esac
case "$only" in *c*) run_trial c trial_coordinator_kill ;; esac
case "$only" in *d*) run_trial d trial_sigstop ;; esac
case "$only" in *e*) run_trial e trial_cut_link ;; esac
case "$only" in *f*) run_trial f trial_shaped ;; esac
case "$only" in *g*) run_trial g trial_full_disk ;; esac
case "$only" in *h*) run_trial h trial_hostile ;; esac
cleanup
pids=()

table() {
    echo "| trial | what was done | outcome | seconds | steps lost | details |"
    echo "|---|---|---|---|---|---|"
    local r
    for r in ${rows[@]+"${rows[@]}"}; do
        IFS='|' read -r t w o s l d <<< "$r"
        echo "| $t | $w | $o | $s | $l | ${d//|//} |"
    done
}
echo
table
if [ -n "$report" ]; then
    {
        echo "# Fault matrix ($(date -u +%Y-%m-%dT%H:%MZ), seed $seed, $((SECONDS - t_start)) s)"
        echo
        echo "\`bash cluster/fault-matrix.sh$([ $quick = 1 ] && echo " --quick") --seed $seed\` with the binaries in \`$bindir\`."
        echo
        table
        echo
        verdicts_summary
    } > "$report"
    echo "fault-matrix: report written to $report"
fi
if [ "$VERDICTS_FAILED" = 0 ] && [ $keep = 0 ]; then final_rm=1; else echo "fault-matrix: work folder kept: $work"; fi
verdicts_summary
