#!/usr/bin/env bash
# The docker-compose cluster, built and run for real through the Docker API:
#
#   1. the engine: $DOCKER_HOST if set, else a Docker daemon's socket, else Podman's Docker API
#      (`podman system service` on a socket of its own, stopped at the end);
#   2. the base images: the official ones where they are already on the machine, else made
#      locally (docker/base-images.sh: debootstrap + the installed Swift toolchain);
#   3. `docker build -f docker/Dockerfile` (the real, unchanged Dockerfile; timed); the image
#      runs as non-root, its size and start-up are measured, the token is nowhere in it;
#   4. `docker-compose up` of docker/docker-compose.yml (coordinator + worker-0..3 on the compose
#      network) with a short run (an override file sets the training flags); every container
#      exits 0, the checkpoint, sample grid and TensorBoard events are in the shared volume;
#   5. the same run on the local cluster (cluster/local.sh, same seed and steps, with the
#      image's own binaries): G and D parameters equal bit for bit;
#   6. `--min-workers 3`: worker-3's container is stopped mid-run; the coordinator re-forms the
#      ring with the three survivors, they resume from the last checkpoint, the run completes;
#   7. the StatefulSet's ordinal-to-rank mapping (cluster/k8s/workers.yaml): four containers
#      named ringgan-worker-<ordinal> run the manifest's own command and environment against a
#      coordinator reachable as ringgan-coordinator, and must join as rank <ordinal>;
#   8. the token appears in no log and not in `docker inspect` of the image;
#   9. teardown: no container, network or volume of the test is left (checked).
#
#   bash docker/test.sh        # as root; exits 77 (skipped, reason printed) where containers cannot run
#
# Environment: RINGGAN_SWIFT_IMAGE / RINGGAN_RUNTIME_IMAGE (base images to build from),
# RINGGAN_DOCKER_STEPS (steps of the short run, default 40), RINGGAN_DOCKER_TIMEOUT (seconds any
# one wait may take, default 900), RINGGAN_SKIP_CONTAINERS=1 (report skipped without trying). Figures go to stdout and to $RINGGAN_DOCKER_FIGURES if set.
# Last line: `docker-test: P passed, F failed, 0 skipped` (cluster/verdicts.sh; or
# `docker-test: SKIPPED (reason)`, exit 77).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
steps="${RINGGAN_DOCKER_STEPS:-40}"
wait_s="${RINGGAN_DOCKER_TIMEOUT:-900}"
export DOCKER_BUILDKIT=0          # the classic build API (what Podman serves)
export COMPOSE_DOCKER_CLI_BUILD=0

# shellcheck source=../cluster/verdicts.sh
source "$root/cluster/verdicts.sh"
verdicts_init docker-test
pass() { verdict PASS "$@"; }
fail() { verdict FAIL "$@"; }
note() { echo "docker-test: $*"; }
figure() { echo "docker-test: figure: $*"; [ -z "${RINGGAN_DOCKER_FIGURES:-}" ] || echo "$*" >> "$RINGGAN_DOCKER_FIGURES"; }
skip() { echo "docker-test: SKIPPED ($*)"; exit 77; }

[ -z "${RINGGAN_SKIP_CONTAINERS:-}" ] || skip "RINGGAN_SKIP_CONTAINERS is set"
[ "$(id -u)" = 0 ] || skip "needs root: the container engine here is rootful Podman or a Docker daemon"
command -v docker >/dev/null || skip "no docker CLI"
command -v docker-compose >/dev/null || skip "no docker-compose"

tmp="$(mktemp -d /var/tmp/ringgan-docker-test.XXXXXX)"
project="ringgan-test-$$"
podman_pid=""
compose_files=()
dc() { docker-compose -p "$project" "${compose_files[@]}" "$@"; }

teardown() {
    if [ ${#compose_files[@]} -gt 0 ]; then
        dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
    fi
    docker rm -f $(docker ps -aq --filter "label=org.ringgan.test=$project") >/dev/null 2>&1 || true
    docker network rm "$project-k8s" >/dev/null 2>&1 || true
}
# Podman's API service keeps every uploaded build context and imported root as
# /var/tmp/api_load.tar* (2.2 GB seen after one run); the ones this run made are removed.
uploads_before="$(ls /var/tmp/api_load.tar* 2>/dev/null || true)"
cleanup() {
    teardown
    [ -z "$podman_pid" ] || { kill "$podman_pid" 2>/dev/null; wait "$podman_pid" 2>/dev/null; }
    rm -rf "$tmp"
    for f in /var/tmp/api_load.tar*; do
        [ -e "$f" ] || continue
        grep -qxF "$f" <<< "$uploads_before" || rm -f "$f"
    done
}
trap cleanup EXIT
trap 'echo "docker-test: interrupted"; exit 130' INT TERM

# ---- 1. the engine --------------------------------------------------------------------------
# A container runtime needs the cgroup filesystem; inside a chroot (the fresh-machine check binds
# /sys without its submounts) runc fails with "no cgroup mount found in mountinfo". Say so now,
# before ten minutes of base images.
grep -qE ' - cgroup2? ' /proc/self/mountinfo \
    || skip "containers cannot run here: no cgroup filesystem is mounted (a chroot or a minimal container?)"
if [ -z "${DOCKER_HOST:-}" ] && ! docker version >/dev/null 2>&1; then
    command -v podman >/dev/null || skip "no Docker daemon and no podman (apt-get install podman runc)"
    sock_dir="$tmp/podman"; mkdir -p "$sock_dir"
    export DOCKER_HOST="unix://$sock_dir/docker.sock"
    podman system service --time=0 "$DOCKER_HOST" > "$tmp/podman-service.log" 2>&1 &
    podman_pid=$!
    for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
docker version >/dev/null 2>&1 || skip "the Docker API does not answer at ${DOCKER_HOST:-the default socket}: $(docker version 2>&1 | tail -n 1)"
note "engine: $(docker version -f '{{.Server.Version}}' 2>/dev/null) at ${DOCKER_HOST:-the default socket}"

# ---- 2. base images -------------------------------------------------------------------------
swift_image="${RINGGAN_SWIFT_IMAGE:-}"; runtime_image="${RINGGAN_RUNTIME_IMAGE:-}"
if [ -z "$swift_image" ] || [ -z "$runtime_image" ]; then
    official_swift="$(sed -n 's/^ARG SWIFT_IMAGE=//p' docker/Dockerfile)"
    official_runtime="$(sed -n 's/^ARG RUNTIME_IMAGE=//p' docker/Dockerfile)"
    # The official images, if they are here. (Podman also answers a short name with a local
    # image whose name merely ends in it, e.g. ringgan-local/debian for debian:..., so images
    # carrying our base-images.sh label do not count as official.)
    ours() { docker image inspect -f '{{ index .Config.Labels "org.ringgan.base" }}' "$1" 2>/dev/null | grep -q .; }
    if docker image inspect "$official_swift" "$official_runtime" >/dev/null 2>&1 \
       && ! ours "$official_swift" && ! ours "$official_runtime"; then
        swift_image="${swift_image:-$official_swift}"; runtime_image="${runtime_image:-$official_runtime}"
        note "base images: the official $official_swift and $official_runtime (already here)"
    else
        t0=$(date +%s)
        if ! bash docker/base-images.sh > "$tmp/base-images.out" 2> "$tmp/base-images.log"; then
            tail -n 15 "$tmp/base-images.log"
            skip "no registry image here and the local base images could not be made (docker/base-images.sh; log above)"
        fi
        eval "$(grep -E '^(SWIFT_IMAGE|RUNTIME_IMAGE)=' "$tmp/base-images.out")"
        swift_image="${swift_image:-$SWIFT_IMAGE}"; runtime_image="${runtime_image:-$RUNTIME_IMAGE}"
        note "base images: local $swift_image and $runtime_image ($(( $(date +%s) - t0 )) s; cached in the engine's store)"
    fi
fi
if ! docker run --rm "$runtime_image" true > "$tmp/probe.log" 2>&1; then
    tail -n 5 "$tmp/probe.log"
    skip "containers cannot run here: docker run $runtime_image true failed (above)"
fi

# ---- 3. the image ---------------------------------------------------------------------------
image="ringgan:docker-test"     # kept after the test: its layers are the next run's build cache
note "docker build -f docker/Dockerfile (SWIFT_IMAGE=$swift_image RUNTIME_IMAGE=$runtime_image)"
t0=$(date +%s)
if docker build -f docker/Dockerfile --build-arg "SWIFT_IMAGE=$swift_image" --build-arg "RUNTIME_IMAGE=$runtime_image" \
        -t "$image" . > "$tmp/build.log" 2>&1; then
    build_s=$(( $(date +%s) - t0 ))
    cached=$(grep -c -- '--> Using cache' "$tmp/build.log" || true)
    pass "image built in ${build_s} s through the Docker API ($cached layers from the build cache)"
    figure "build: ${build_s} s ($cached cached layers)"
else
    tail -n 30 "$tmp/build.log"
    fail "docker build (log above)"
    verdicts_summary; exit 1
fi
size=$(docker image inspect -f '{{.Size}}' "$image")
size_mb=$(( size / 1000000 ))
figure "image size: $size_mb MB ($size bytes; runtime base $(( $(docker image inspect -f '{{.Size}}' "$runtime_image") / 1000000 )) MB)"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
uid=$(docker run --rm "$image" id -u)
if [ "$uid" != 0 ] && [ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ]; then
    pass "the image runs as a non-root user (User $user, id -u $uid)"
else
    fail "the image runs as root (User '$user', id -u $uid)"
fi
t0=$(date +%s%N)
for _ in 1 2 3; do docker run --rm "$image" gan-worker --help >/dev/null; done
figure "start-up: $(( ($(date +%s%N) - t0) / 3000000 )) ms per 'docker run --rm IMAGE gan-worker --help' (mean of 3)"

# ---- 4. the compose cluster -----------------------------------------------------------------
RINGGAN_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export RINGGAN_TOKEN RINGGAN_IMAGE="$image"
run_flags=(--model=dcgan --image-size=32 --batch=64 --seed=7 --steps="$steps"
           --sample-every=$((steps / 2)) --checkpoint-every=$((steps / 2)))
override() {   # name, then coordinator flags
    local name="$1"; shift
    {
        echo 'version: "3.8"'
        echo 'services:'
        echo '  coordinator:'
        echo '    command:'
        echo "      - --name=$name"
        for f in "$@"; do echo "      - $f"; done
    } > "$tmp/override-$name.yml"
    compose_files=(-f docker/docker-compose.yml -f "$tmp/override-$name.yml")
}
wait_exit() {   # service -> its exit code (waits at most $wait_s)
    local id; id="$(dc ps -q "$1")"
    timeout "$wait_s" docker wait "$id" 2>/dev/null || echo "timeout"
}
volume_run() {   # command in a container with the run volume (the image's user)
    docker run --rm -v "${project}_runs:/ringgan/runs" "$image" "$@"
}

override compose-test "${run_flags[@]}" --rendezvous-timeout=300
note "docker-compose up: coordinator + 4 workers, $steps steps (${run_flags[*]})"
t0=$(date +%s)
if dc up -d > "$tmp/up.log" 2>&1; then
    code=$(wait_exit coordinator)
    run_s=$(( $(date +%s) - t0 ))
    codes="coordinator=$code"
    all0=1; [ "$code" = 0 ] || all0=0
    for w in 0 1 2 3; do
        c=$(wait_exit "worker-$w"); codes="$codes worker-$w=$c"; [ "$c" = 0 ] || all0=0
    done
    dc logs --no-color > "$tmp/compose.log" 2>&1
    if [ $all0 = 1 ]; then pass "compose run of $steps steps: every container exited 0 ($codes)"
    else fail "compose run: exit codes $codes"; tail -n 40 "$tmp/compose.log"; fi
else
    cat "$tmp/up.log"; fail "docker-compose up"
fi
listing="$(volume_run find /ringgan/runs/compose-test -type f 2>&1)"
final_ckpt="$(printf '%08d' "$steps")"
for want in "checkpoints/step_${final_ckpt}.rgan" "samples/step_${final_ckpt}\.png" "events\.out\.tfevents\." "metrics\.jsonl" "config\.json"; do
    if echo "$listing" | grep -qE "compose-test/$want|compose-test/.*$want"; then pass "in the shared volume: $want"
    else fail "not in the shared volume: $want (found: $(echo "$listing" | tr '\n' ' '))"; fi
done
mkdir -p "$tmp/container-runs"
volume_run tar -C /ringgan/runs -c compose-test | tar -C "$tmp/container-runs" -x

# Steps per second inside containers: the coordinator's own rate over the run (its last progress line).
rate_in="$(grep -oE '[0-9.]+ (steps/s|step/s|it/s)' "$tmp/compose.log" | tail -n 1)"

# ---- 5. the same run on the local cluster, with the image's binaries ------------------------
mkdir -p "$tmp/image/bin" "$tmp/image/lib"
cid="$(docker create "$image")"
docker cp "$cid:/usr/local/bin/." "$tmp/image/bin/" && docker cp -L "$cid:/usr/lib/swift/linux/." "$tmp/image/lib/"
docker rm "$cid" >/dev/null
note "local cluster (cluster/local.sh, 4 workers, the image's binaries): the same $steps steps"
t0=$(date +%s)
if LD_LIBRARY_PATH="$tmp/image/lib" RINGGAN_DATA="$root/data" bash cluster/local.sh -n 4 --bin "$tmp/image/bin" \
        -- --runs-dir "$tmp/local-runs" --name compose-test "${run_flags[@]}" > "$tmp/local.log" 2>&1; then
    local_s=$(( $(date +%s) - t0 ))
    pass "local cluster run of $steps steps"
else
    tail -n 20 "$tmp/local.log"; fail "local cluster run"
fi
rate_out="$(grep -oE '[0-9.]+ (steps/s|step/s|it/s)' "$tmp/local.log" | tail -n 1)"
figure "steps/s, $steps steps of dcgan 32x32 batch 64 on 4 workers: containers ${rate_in:-?} (compose up to exit ${run_s:-?} s), local processes ${rate_out:-?} (${local_s:-?} s)"

ck_c="$tmp/container-runs/compose-test/checkpoints/step_${final_ckpt}.rgan"
ck_l="$tmp/local-runs/compose-test/checkpoints/step_${final_ckpt}.rgan"
if [ -f "$ck_c" ] && [ -f "$ck_l" ]; then
    # gan compare judges (the image's own gan): the whole checkpoints, weights, optimizer state and
    # data position, bit for bit; only the digits' path differs (/ringgan/data in the image).
    if said=$(LD_LIBRARY_PATH="$tmp/image/lib" "$tmp/image/bin/gan" compare --ignore-config dataDir "$ck_c" "$ck_l"); then
        pass "containers and local cluster: the step-$steps checkpoints are identical (${said#compare: identical: })"
    else
        fail "containers and local cluster: $said"
    fi
else
    fail "no final checkpoint to compare ($ck_c, $ck_l)"
fi
dc down -v --remove-orphans -t 5 > /dev/null 2>&1

# ---- 6. a worker stopped, --min-workers 3 ---------------------------------------------------
long=$((steps * 4))
override compose-reform --model=dcgan --image-size=32 --batch=64 --seed=7 --steps="$long" \
    --sample-every="$long" --checkpoint-every=$((steps / 2)) --min-workers=3 --rendezvous-timeout=120 --dead-after=15
note "docker-compose up with --min-workers=3, $long steps; worker-3 is stopped after the first checkpoint"
dc up -d > "$tmp/up2.log" 2>&1 || { cat "$tmp/up2.log"; fail "docker-compose up (re-formation run)"; }
coord_id="$(dc ps -q coordinator)"
stopped_at=""
for _ in $(seq $((wait_s * 2))); do
    if docker exec "$coord_id" sh -c 'ls /ringgan/runs/compose-reform/checkpoints/*.rgan' >/dev/null 2>&1; then
        dc stop -t 5 worker-3 >/dev/null 2>&1
        stopped_at="$(docker exec "$coord_id" sh -c 'ls /ringgan/runs/compose-reform/checkpoints' 2>/dev/null | tail -n 1)"
        break
    fi
    [ "$(docker inspect -f '{{.State.Running}}' "$coord_id" 2>/dev/null)" = true ] || break
    sleep 0.5
done
code=$(wait_exit coordinator)
dc logs --no-color > "$tmp/compose-reform.log" 2>&1
if [ -n "$stopped_at" ]; then note "worker-3 stopped once $stopped_at was written"; else fail "no checkpoint appeared to stop worker-3 after"; fi
survivors_ok=1
for w in 0 1 2; do c=$(wait_exit "worker-$w"); [ "$c" = 0 ] || { survivors_ok=0; note "worker-$w exited $c"; }; done
# The run's event log judges (cluster/runcheck.py): two formations, the last of the 3 survivors
# from a checkpoint, completed at the last step.
mkdir -p "$tmp/reform-run"
volume_run cat /ringgan/runs/compose-reform/events.jsonl > "$tmp/reform-run/events.jsonl" 2>/dev/null || true
said=$(python3 cluster/runcheck.py expect "$tmp/reform-run" --formations 2 --last-workers 3 --resumed --ending completed --step "$long")
judged=$?
if [ "$code" = 0 ] && [ $survivors_ok = 1 ] && [ $judged = 0 ] \
   && volume_run test -f "/ringgan/runs/compose-reform/checkpoints/step_$(printf '%08d' "$long").rgan"; then
    pass "worker-3 stopped: $said; every survivor exited 0"
else
    grep -E 'error|critical' "$tmp/compose-reform.log" | tail -n 20
    fail "re-formation after a stopped worker (coordinator exit $code): $said"
fi

# ---- 7. the StatefulSet's ordinal -> rank, with the manifest's own command and environment --
python3 docker/k8s-pod.py cluster/k8s/workers.yaml > "$tmp/k8s-worker.sh" || fail "reading cluster/k8s/workers.yaml"
k8s_cmd=(); k8s_env=""; k8s_master=""
# shellcheck disable=SC1090
. "$tmp/k8s-worker.sh"
docker network create --label "org.ringgan.test=$project" "$project-k8s" >/dev/null
docker run -d --label "org.ringgan.test=$project" --network "$project-k8s" --network-alias "$k8s_master" \
    --name "$project-coordinator" -e RINGGAN_TOKEN "$image" gan-coordinator --workers=4 --host=0.0.0.0 --port=29500 \
    --runs-dir=/tmp/runs --name=k8s --model=dcgan --image-size=32 --batch=64 --steps=4 --sample-every=4 \
    --checkpoint-every=4 --rendezvous-timeout=120 >/dev/null
env_args=(); while IFS= read -r kv; do [ -n "$kv" ] && env_args+=(-e "$kv"); done <<< "$k8s_env"
for o in 0 1 2 3; do
    # The pod's hostname is <statefulset>-<ordinal>; the Secret's token arrives as RINGGAN_TOKEN;
    # POD_IP (downward API) is left unset: gan-worker then advertises the address it reaches the
    # coordinator from, which is the pod's address.
    docker run -d --label "org.ringgan.test=$project" --network "$project-k8s" --hostname "ringgan-worker-$o" \
        --name "$project-ringgan-worker-$o" "${env_args[@]}" -e RINGGAN_TOKEN \
        --entrypoint "${k8s_cmd[0]}" "$image" "${k8s_cmd[@]:1}" >/dev/null
done
kcode=$(timeout "$wait_s" docker wait "$project-coordinator" 2>/dev/null || echo timeout)
docker logs "$project-coordinator" > "$tmp/k8s-coordinator.log" 2>&1
ok=1
for o in 0 1 2 3; do
    docker logs "$project-ringgan-worker-$o" > "$tmp/k8s-worker-$o.log" 2>&1
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$project-ringgan-worker-$o")"
    grep -q "pod ringgan-worker-$o is rank $o" "$tmp/k8s-worker-$o.log" \
        && grep -q "rank $o joined from $ip:" "$tmp/k8s-coordinator.log" \
        && grep -q "the run is finished; idle" "$tmp/k8s-worker-$o.log" \
        || { ok=0; note "ringgan-worker-$o ($ip):"; tail -n 5 "$tmp/k8s-worker-$o.log"; }
done
if [ "$kcode" = 0 ] && [ $ok = 1 ]; then
    pass "StatefulSet pods ringgan-worker-0..3 (the manifest's command and env) joined as ranks 0..3 and trained to the end"
else
    grep -E 'joined|refused|error' "$tmp/k8s-coordinator.log" | tail -n 10
    fail "StatefulSet ordinal -> rank (coordinator exit $kcode)"
fi

# ---- 8. the token -----------------------------------------------------------------------------
leaks=""
docker image inspect "$image" | grep -qF "$RINGGAN_TOKEN" && leaks="$leaks docker-inspect-of-the-image"
for f in "$tmp"/compose.log "$tmp"/compose-reform.log "$tmp"/k8s-*.log "$tmp"/build.log; do
    grep -qF "$RINGGAN_TOKEN" "$f" && leaks="$leaks $(basename "$f")"
done
grep -rqF "$RINGGAN_TOKEN" "$tmp/container-runs" && leaks="$leaks the-run-folder"
if [ -z "$leaks" ]; then pass "the token is in no log, not in the run folder, not in docker inspect of the image"
else fail "the token appears in:$leaks"; fi

# ---- 9. teardown ----------------------------------------------------------------------------
teardown
left="$(docker ps -aq --filter "label=com.docker.compose.project=$project"; docker ps -aq --filter "label=org.ringgan.test=$project";
        docker network ls -q --filter "name=$project"; docker volume ls -q --filter "name=$project")"
if [ -z "$left" ]; then pass "teardown: no container, network or volume of the test is left"
else fail "teardown left: $(echo "$left" | tr '\n' ' ')"; fi
compose_files=()

verdicts_summary
