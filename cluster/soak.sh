#!/usr/bin/env bash
# Soak: a long run of a local cluster (gan-coordinator --spawn and N gan-workers on this machine)
# watched from outside. Every few seconds it samples each process's resident memory (VmRSS in
# /proc/PID/status), open file descriptors (/proc/PID/fd) and threads, and the number of
# checkpoints on disk. At the end it judges whether memory and descriptors stayed flat, checks
# the run's exit, the replica checks and the checkpoint rotation, prints a table and (--report)
# writes it as markdown.
#
#   bash cluster/soak.sh [--model mlp|dcgan] [--steps N] [--batch B] [--report FILE] [options]
#   bash cluster/soak.sh --quick          (a tiny DCGAN, 400 steps, under a minute; run by scripts/test.sh)
#
# Flat, judged on the samples taken while training (after the first step is shown, before the
# last): for every process, the median RSS of the last quarter of them is at most the
# second quarter's median x (1 + --rss-pct/100) + --rss-mb MiB, and after warm-up (the first
# quarter) the descriptor count does not grow: the last quarter's median is at most the second
# quarter's and its maximum at most the second quarter's + 2 (a checkpoint or grid being written
# holds a file and its folder open for a moment).
# The replica checks: the coordinator compares the ranks' parameter checksums on every
# --checksum-every-th step and the last, and stops the run with "replicas diverged" on a
# difference (ClusterTests.ReplicaChecksumTests shows that stop); it does not log the
# comparisons, so the count reported is the number of steps the rule selects among the steps
# completed, and "equal" means the run exited 0 without that message.
# Rotation: --keep K (gan-coordinator's flag): at no sample are more than K checkpoints on disk,
# and the ones left at the end are the newest K written.
# Exit: 0 flat and clean, 1 a check failed, 2 usage or missing binaries.
set -uo pipefail

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --model mlp|dcgan     model (default mlp; dcgan trains 32x32 with --ngf/--ndf 8)
  --steps N             steps (default 20000 for mlp, 1500 for dcgan; --quick 400)
  -n, --workers N       workers (default 4)
  --batch B             global batch (default 8)
  --codec C             gradient codec (default: none for mlp, the coordinator's default for dcgan)
  --checksum-every K    replica checksum cadence (default 10)
  --checkpoint-every C  checkpoint cadence (default steps/20)
  --keep K              checkpoints kept (default 3)
  --interval S          seconds between samples (default 5; --quick 0.5)
  --rss-pct P           allowed RSS growth, percent (default 5)
  --rss-mb M            allowed RSS growth on top, MiB (default 4)
  --runs-dir DIR        where the run folder goes (default runs; --quick a temporary folder, removed)
  --name NAME           run name (default soak-<model>-<date>-<time>)
  --report FILE         also write the summary as markdown
  --bin DIR             binaries (default .build/release if built, else .build/debug)
  --quick               a short soak: dcgan 16x16 with ngf = ndf = 4 and latent 8, 400 steps, batch 4,
                        codec none, checkpoint and grid every 25 steps, keep 2, a sample every 0.5 s
  -h, --help            this text
Everything after -- goes to gan-coordinator unchanged.
EOF
}

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

model=mlp; steps=""; workers=4; batch=8; codec=""; checksum_every=10; ckpt_every=""; keep=3
interval=""; rss_pct=5; rss_mb=4; runs_dir=""; name=""; report=""; bindir=""; quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="${2:?}"; shift 2 ;;
        --steps) steps="${2:?}"; shift 2 ;;
        -n|--workers) workers="${2:?}"; shift 2 ;;
        --batch) batch="${2:?}"; shift 2 ;;
        --codec) codec="${2:?}"; shift 2 ;;
        --checksum-every) checksum_every="${2:?}"; shift 2 ;;
        --checkpoint-every) ckpt_every="${2:?}"; shift 2 ;;
        --keep) keep="${2:?}"; shift 2 ;;
        --interval) interval="${2:?}"; shift 2 ;;
        --rss-pct) rss_pct="${2:?}"; shift 2 ;;
        --rss-mb) rss_mb="${2:?}"; shift 2 ;;
        --runs-dir) runs_dir="${2:?}"; shift 2 ;;
        --name) name="${2:?}"; shift 2 ;;
        --report) report="${2:?}"; shift 2 ;;
        --bin) bindir="${2:?}"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "soak: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
extra=("$@")

if [ "$quick" = 1 ]; then
    # A DCGAN small enough for debug builds (scripts/test.sh runs this with them): about 20
    # steps/s with 4 workers on 2 shared cores, where the mlp manages 0.6 (2.0M parameters
    # through -Onone Adam loops).
    model=tiny; steps="${steps:-400}"; batch=4; codec="${codec:-none}"; ckpt_every="${ckpt_every:-25}"; keep=2
    interval="${interval:-0.5}"
fi
case "$model" in
    mlp) steps="${steps:-20000}"; codec="${codec:-none}"; model_flags=(--model mlp) ;;
    dcgan) steps="${steps:-1500}"; model_flags=(--model dcgan --image-size 32 --ngf 8 --ndf 8) ;;
    tiny) model_flags=(--model dcgan --image-size 16 --ngf 4 --ndf 4 --latent-dim 8) ;;
    *) echo "soak: --model must be mlp or dcgan" >&2; exit 2 ;;
esac
[ -n "$codec" ] && model_flags+=(--codec "$codec")
interval="${interval:-5}"
ckpt_every="${ckpt_every:-$(( steps / 20 > 0 ? steps / 20 : 1 ))}"
for v in steps workers batch checksum_every ckpt_every keep; do
    case "${!v}" in ''|*[!0-9]*|0) echo "soak: --${v//_/-} must be a positive integer, got '${!v}'" >&2; exit 2 ;; esac
done
NETNS_NAME=soak; source "$root/cluster/netns-lib.sh"   # for netns_find_bin
bindir="$(netns_find_bin "$bindir" gan-coordinator gan-worker)" || exit 2

# The judge itself first (made-up series: flat ones must pass, leaking ones fail).
if [ "$quick" = 1 ]; then python3 "$root/cluster/soak-report.py" --self-test || exit 1; fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ringgan-soak.XXXXXX")"
if [ -z "$runs_dir" ]; then
    if [ "$quick" = 1 ]; then runs_dir="$tmp/runs"; else runs_dir=runs; fi
fi
name="${name:-soak-$model-$(date +%Y%m%d-%H%M%S)}"
run_dir="$runs_dir/$name"
mkdir -p "$run_dir/logs"
samples="$run_dir/logs/soak-samples.tsv"
steps_json="$run_dir/logs/steps.jsonl"
coord_log="$run_dir/logs/coordinator.log"

coord_pid=""
cleanup() {
    if [ -n "$coord_pid" ] && kill -0 "$coord_pid" 2>/dev/null; then
        kill -TERM "$coord_pid" 2>/dev/null   # it kills and reaps the workers it spawned
        for _ in $(seq 100); do kill -0 "$coord_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$coord_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

port="$(python3 "$root/cluster/free-port.py")"
coord_args=(--workers "$workers" --spawn --host 127.0.0.1 --port "$port" "${model_flags[@]}" --batch "$batch" --steps "$steps"
            --checksum-every "$checksum_every" --checkpoint-every "$ckpt_every" --keep "$keep" --sample-every "$ckpt_every"
            --data "$root/data/mnist-5k" --runs-dir "$runs_dir" --name "$name" --seed 1 --json ${extra[@]+"${extra[@]}"})
echo "soak: $model, $workers workers, $steps steps, batch $batch${codec:+, codec $codec}, checksum every $checksum_every," \
     "checkpoint every $ckpt_every (keep $keep), a sample every $interval s; binaries $bindir"
echo "soak: run folder $run_dir"
echo "soak: gan-coordinator ${coord_args[*]}" > "$run_dir/logs/soak-command.txt"
t_start=$(date +%s.%N)
"$bindir/gan-coordinator" "${coord_args[@]}" > "$steps_json" 2> "$coord_log" < /dev/null &
coord_pid=$!

# The workers' pids, from the coordinator's "spawned rank R (pid P)" lines.
declare -A pid_of=()
for _ in $(seq 600); do
    while read -r r p; do pid_of[$r]=$p; done < <(sed -nE 's/.*spawned rank ([0-9]+) \(pid ([0-9]+)\).*/\1 \2/p' "$coord_log")
    [ ${#pid_of[@]} -ge "$workers" ] && break
    kill -0 "$coord_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ${#pid_of[@]} -lt "$workers" ]; then
    echo "soak: the coordinator did not start $workers workers:" >&2; tail -n 20 "$coord_log" >&2; exit 1
fi
procs=("coordinator:$coord_pid")
for ((r = 0; r < workers; r++)); do procs+=("rank-$r:${pid_of[$r]}"); done
echo "soak: coordinator pid $coord_pid, workers ${pid_of[*]}"

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }   # (no bc needed)

# Sampling, until the coordinator exits: time, step, process, RSS (kB), fds, threads, checkpoints.
printf 'time\tstep\tprocess\trss_kb\tfds\tthreads\tcheckpoints\n' > "$samples"
last_print=0
while kill -0 "$coord_pid" 2>/dev/null; do
    now=$(date +%s.%N)
    step=$(tail -n 1 "$steps_json" 2>/dev/null | sed -nE 's/^\{"step":([0-9]+),.*/\1/p')
    ck=$(find "$run_dir/checkpoints" -maxdepth 1 -name 'step_*.rgan' 2>/dev/null | wc -l)
    for pp in "${procs[@]}"; do
        label=${pp%%:*}; pid=${pp#*:}
        rss=$(sed -nE 's/^VmRSS:\s+([0-9]+) kB/\1/p' "/proc/$pid/status" 2>/dev/null)
        thr=$(sed -nE 's/^Threads:\s+([0-9]+)/\1/p' "/proc/$pid/status" 2>/dev/null)
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        [ -n "$rss" ] && printf '%.2f\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(minus "$now" "$t_start")" "${step:-0}" "$label" "$rss" "$fds" "$thr" "$ck" >> "$samples"
    done
    if [ "$quick" = 0 ] && [ "$(minus "$now" "$last_print" | cut -d. -f1)" -ge 60 ]; then
        echo "soak: $(date +%H:%M:%S) step ${step:-0}/$steps, coordinator RSS $(sed -nE 's/^VmRSS:\s+([0-9]+) kB/\1/p' /proc/$coord_pid/status 2>/dev/null) kB, checkpoints $ck"
        last_print=$now
    fi
    sleep "$interval"
done
rc=0
wait "$coord_pid" || rc=$?
coord_pid=""
t_end=$(date +%s.%N)
# The workers end on their own after the coordinator confirms the end; it reaps them.
for pp in "${procs[@]:1}"; do
    pid=${pp#*:}
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done

python3 "$root/cluster/soak-report.py" --samples "$samples" --steps-json "$steps_json" --coordinator-log "$coord_log" \
    --run-dir "$run_dir" --exit "$rc" --wall "$(minus "$t_end" "$t_start")" --steps "$steps" --workers "$workers" \
    --checksum-every "$checksum_every" --checkpoint-every "$ckpt_every" --keep "$keep" --rss-pct "$rss_pct" --rss-mb "$rss_mb" \
    --title "$model, $workers workers, $steps steps, batch $batch, codec ${codec:-shuffle-zstd (the default)}" \
    --command "$(cat "$run_dir/logs/soak-command.txt")" ${report:+--report "$report"}
status=$?
[ "$quick" = 1 ] || echo "soak: logs and samples in $run_dir/logs"
exit $status
