#!/usr/bin/env bash
# Real Slurm, end to end on this machine: a one-host cluster (Debian's munged, slurmctld and
# slurmd, started here as plain daemons, no systemd) whose one node has 4 CPUs configured, then
#
#   sbatch   the documented batch script (the ```sh block after the `ringgan.sbatch` marker in
#            docs/DISTRIBUTED.md, run as it is) submitted with the real `sbatch` for 4 tasks of 1 CPU on
#            the one node: the coordinator starts in the script, `srun` starts four gan-workers
#            (rank from SLURM_PROCID, the coordinator from the first host of SLURM_JOB_NODELIST
#            on MASTER_PORT), a small mlp run (arguments after the script's name) to the end;
#   srun     `srun -n 4 gan-worker` straight from this script, against a coordinator it started;
#
# each checked for the job's (or srun's) exit status 0, a final checkpoint, and every rank saying
# its rank came from Slurm and its coordinator from SLURM_JOB_NODELIST.
#
#   bash cluster/slurm-test.sh [--bin DIR] [--keep]
#
# --bin DIR: gan-coordinator and gan-worker (default .build/release if there, else .build/debug);
# --keep: leave the temporary folder (configuration, daemon logs, job output) for reading.
# Needs root (the daemons run as root, and so do the jobs). The cluster lives in a temporary
# folder: a generated munge key and munged's socket there, slurm.conf there (SLURM_CONF), state
# and spool there, free ports; the node is `localhost` (NodeAddr 127.0.0.1), so the node list
# resolves on any machine; CPUs=4 whatever the cores (SlurmdParameters=config_overrides);
# proctrack/linuxproc, task/none, no accounting; no cgroups (cgroup.conf names cgroup/v1, which
# slurmd loads without looking at /sys/fs/cgroup, empty in a chroot). Everything started here is stopped
# at the end, on failure too. Exits 77 with the reason when not root, when the Slurm or munge
# programs are missing (apt-get install slurmctld slurmd slurm-client munge; scripts/setup.sh
# --test installs them), or when the daemons do not come up. Last line:
# `slurm-test: P passed, F failed`.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bindir=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bindir="${2:?--bin needs a folder}"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "slurm-test: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
NETNS_NAME=slurm-test; source "$root/cluster/netns-lib.sh"   # for netns_find_bin
bindir="$(netns_find_bin "$bindir" gan-coordinator gan-worker)" || exit 2

if [ "$(id -u)" != 0 ]; then
    echo "slurm-test: SKIPPED (needs root: it runs munged, slurmctld and slurmd; sudo bash $0)"; exit 77
fi
for c in munged munge slurmctld slurmd sbatch srun scontrol scancel squeue sinfo; do
    command -v "$c" >/dev/null || {
        echo "slurm-test: SKIPPED (no $c; apt-get install slurmctld slurmd slurm-client munge)"; exit 77; }
done

# The launcher variables that win over Slurm's must not leak in from the caller.
unset RANK WORLD_SIZE MASTER_ADDR MASTER_PORT RINGGAN_COORDINATOR OMPI_COMM_WORLD_RANK OMPI_COMM_WORLD_SIZE
export RINGGAN_THREADS=1 OPENBLAS_NUM_THREADS=1

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ringgan-slurm.XXXXXX")"
chmod 700 "$tmp"
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool/slurmd-localhost" "$tmp/log" "$tmp/home"
# Every process started here carries this variable (the daemons, and through them slurmstepd and
# the jobs), so the cleanup can find exactly those, and nothing else, if one outlives its parent.
marker="RINGGAN_SLURM_TEST=$tmp"
daemons=()
own_pids=()
ran_pids() {   # the processes whose environment holds the marker
    local e p
    for e in /proc/[0-9]*/environ; do
        p="${e#/proc/}"; p="${p%/environ}"
        [ "$p" != $$ ] && { tr '\0' '\n' < "$e"; } 2>/dev/null | grep -qxF "$marker" && echo "$p"
    done
}
cleanup() {
    local p i
    if [ -S "$tmp/munge/munge.socket" ] && [ -f "$tmp/slurm.conf" ]; then
        SLURM_CONF="$tmp/slurm.conf" timeout 10 scancel --quiet --full --user=root 2>/dev/null
        for i in $(seq 20); do
            [ -z "$(SLURM_CONF="$tmp/slurm.conf" timeout 5 squeue -h 2>/dev/null)" ] && break; sleep 0.5
        done
    fi
    for p in ${own_pids[@]+"${own_pids[@]}"}; do kill "$p" 2>/dev/null; done
    for p in ${daemons[@]+"${daemons[@]}"}; do kill "$p" 2>/dev/null; done   # slurmd, slurmctld, munged
    for p in ${daemons[@]+"${daemons[@]}"} ${own_pids[@]+"${own_pids[@]}"}; do
        for i in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$p" 2>/dev/null
    done
    for p in $(ran_pids); do kill -9 "$p" 2>/dev/null; done   # a slurmstepd or task left behind
    if [ $keep = 1 ]; then echo "slurm-test: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() { python3 "$root/cluster/free-port.py"; }   # outside the ephemeral range: srun's listeners cannot take it
skip_start() {   # reason: the daemons would not come up
    echo "slurm-test: SKIPPED (Slurm did not start here: $1)"
    local f; for f in "$tmp"/log/*; do echo "--- $f"; tail -n 8 "$f"; done
    exit 77
}

# munge: a key of our own, its socket in the temporary folder.
head -c 1024 /dev/urandom > "$tmp/munge/munge.key"; chmod 400 "$tmp/munge/munge.key"
env "$marker" munged --foreground --force --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.socket" \
    --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" --log-file="$tmp/log/munged.log" \
    > "$tmp/log/munged.out" 2>&1 < /dev/null &
daemons+=($!)
for i in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.2; done
echo ok | munge -S "$tmp/munge/munge.socket" 2>/dev/null | unmunge -S "$tmp/munge/munge.socket" >/dev/null 2>&1 \
    || skip_start "munged does not answer on $tmp/munge/munge.socket"

host="$(hostname -s)"
ctld_port="$(free_port)"; slurmd_port="$(free_port)"
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(free_port)"; done
cat > "$tmp/slurm.conf" <<EOF
# Written by RingGAN cluster/slurm-test.sh: one host, one node of 4 CPUs, everything in $tmp.
ClusterName=ringgan-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/slurmd-%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=ringgan Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
# slurmd loads a cgroup plugin whatever the other plugins (Slurm 22.05), by default the one
# /sys/fs/cgroup calls for, and fails where nothing is mounted there (a chroot): cgroup/v1 named
# here loads without looking; with proctrack/linuxproc and task/none it is never used.
printf '%s\n' "# Written by RingGAN cluster/slurm-test.sh: no cgroups are used." \
    CgroupPlugin=cgroup/v1 CgroupAutomount=no > "$tmp/cgroup.conf"
export SLURM_CONF="$tmp/slurm.conf"

env "$marker" slurmctld -D -c -f "$SLURM_CONF" > "$tmp/log/slurmctld.out" 2>&1 < /dev/null &
daemons+=($!)
for i in $(seq 50); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
timeout 5 scontrol ping 2>/dev/null | grep -q UP || skip_start "slurmctld does not answer on port $ctld_port"
env "$marker" slurmd -D -N localhost -f "$SLURM_CONF" > "$tmp/log/slurmd.out" 2>&1 < /dev/null &
daemons+=($!)
state=""
for i in $(seq 100); do
    state="$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null)"
    [ "$state" = idle ] && break; sleep 0.2
done
[ "$state" = idle ] || skip_start "the node is '${state:-unknown}', not idle, after 20 s"
echo "slurm-test: Slurm $(slurmctld -V | awk '{print $2}') up: slurmctld on 127.0.0.1:$ctld_port, node localhost ($(timeout 5 sinfo -h -n localhost -o %c) CPUs) on :$slurmd_port"

passed=0; failed=0
steps=20
run_args=(--model mlp --batch 64 --steps "$steps" --sample-every "$steps" --checkpoint-every "$steps" --rendezvous-timeout 120)

check() {   # name log-files-glob run-folder rc: the workers' lines, the joins, the final checkpoint
    local name="$1" logs="$2" run="$3" rc="$4" port="$5" ok=1 r
    [ "$rc" = 0 ] || { ok=0; echo "slurm-test: $name: exit status $rc"; }
    [ -f "$run/checkpoints/step_$(printf '%08d' "$steps").rgan" ] || { ok=0; echo "slurm-test: $name: no final checkpoint in $run"; }
    for r in 0 1 2 3; do
        # shellcheck disable=SC2086
        grep -qF "rank $r of 4 (slurm), coordinator localhost:$port (SLURM_JOB_NODELIST)" $logs \
            || { ok=0; echo "slurm-test: $name: no worker says 'rank $r of 4 (slurm), coordinator localhost:$port (SLURM_JOB_NODELIST)'"; }
        # shellcheck disable=SC2086
        grep -q "rank $r joined" $logs || { ok=0; echo "slurm-test: $name: rank $r never joined"; }
    done
    if [ $ok = 1 ]; then echo "slurm-test:   ok    $name: 4 workers (ranks from SLURM_PROCID, coordinator from SLURM_JOB_NODELIST) trained $steps steps to the end"; passed=$((passed + 1))
    else
        echo "slurm-test:   FAIL  $name"
        # shellcheck disable=SC2086
        tail -n 15 $logs
        failed=$((failed + 1))
    fi
}

# 1. The documented batch script (docs/DISTRIBUTED.md), as it is, with real sbatch.
awk '/<!-- ringgan.sbatch:/ { found = 1; next }
     found == 1 && /^```sh$/ { found = 2; next }
     found == 2 && /^```$/ { exit }
     found == 2 { print }' docs/DISTRIBUTED.md > "$tmp/ringgan.sbatch"
if ! head -n 1 "$tmp/ringgan.sbatch" | grep -q '^#!/bin/bash' || ! grep -q '^srun ' "$tmp/ringgan.sbatch"; then
    echo "slurm-test:   FAIL  sbatch: no batch script after the 'ringgan.sbatch' marker in docs/DISTRIBUTED.md"; failed=$((failed + 1))
else
    port="$(free_port)"
    start=$SECONDS
    # sbatch's options win over the script's #SBATCH lines: 4 tasks on the one node, 1 CPU each.
    job="$(env "$marker" HOME="$tmp/home" MASTER_PORT="$port" PATH="$bindir:$PATH" \
        timeout 30 sbatch --parsable --nodes=1 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=1 --time=10 \
            --output="$tmp/job-%j.out" "$tmp/ringgan.sbatch" "${run_args[@]}" 2> "$tmp/sbatch.err")"
    if [ -z "$job" ]; then
        echo "slurm-test:   FAIL  sbatch: sbatch refused the job: $(cat "$tmp/sbatch.err")"; failed=$((failed + 1))
    else
        job="${job%%;*}"
        echo "slurm-test: sbatch: job $job submitted"
        jstate=""; code=""
        for i in $(seq 600); do   # 300 s
            line="$(timeout 5 scontrol show job -o "$job" 2>/dev/null)"
            jstate="$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<< "$line")"
            code="$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<< "$line")"
            case "$jstate" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) break ;; esac
            sleep 0.5
        done
        echo "slurm-test: sbatch: job $job ${jstate:-vanished} with ExitCode=${code:-?} after $((SECONDS - start)) s"
        rc=0; [ "$jstate" = COMPLETED ] && [ "$code" = 0:0 ] || rc="${jstate:-none} ExitCode=${code:-?}"
        [ -e "$tmp/home/.ringgan/token-$job" ] && { echo "slurm-test: sbatch: the script left its token behind"; rc="$rc/token left"; }
        check sbatch "$tmp/job-$job.out" "$tmp/home/runs/slurm-$job" "$rc" "$port"
    fi
fi

# 2. srun -n 4 gan-worker straight from here, against a coordinator started here.
port="$(free_port)"
token="$tmp/token"; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token"; chmod 600 "$token"
env "$marker" timeout 300 "$bindir/gan-coordinator" --workers 4 --host 0.0.0.0 --port "$port" --token-file "$token" \
    --runs-dir "$tmp/runs" --name srun "${run_args[@]}" > "$tmp/srun-coordinator.log" 2>&1 < /dev/null &
coord=$!; own_pids+=($coord)
start=$SECONDS
wrc=0
env "$marker" MASTER_PORT="$port" timeout 300 srun -n 4 --cpus-per-task=1 --kill-on-bad-exit=0 \
    "$bindir/gan-worker" --token-file "$token" --threads 1 > "$tmp/srun-workers.log" 2>&1 < /dev/null || wrc=$?
crc=0; wait "$coord" || crc=$?
echo "slurm-test: srun: workers exited $wrc, coordinator $crc after $((SECONDS - start)) s"
[ "$crc" = 0 ] || wrc="$wrc/coordinator $crc"
check srun "$tmp/srun-workers.log $tmp/srun-coordinator.log" "$tmp/runs/srun" "$wrc" "$port"

echo "slurm-test: $passed passed, $failed failed"
[ "$failed" = 0 ] || exit 1
