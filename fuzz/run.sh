#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/targets/*.swift) against the project's sources and runs
# each for a while with ASan and limits on memory, allocation size and time per input.
#
#   fuzz/run.sh [--time SECONDS] [--runs N] [target...]      targets: npy safetensors idx checkpoint frames
#
# --time is per target (default 60). --runs N stops each target after N inputs instead (no time
# limit unless --time is given too). Each target starts from its committed seed corpus
# (fuzz/corpus/<target>/) plus the inputs found in earlier runs (.build-fuzz/corpus/<target>/,
# not committed). A crash, leak, timeout or out-of-memory input fails the script; the input is
# left in .build-fuzz/findings/<target>/ (add it to the owning test target as a regression test).
# Exit 0: all clean; 1: something found; 77: the fuzzer toolchain is not usable here (skipped).
#
# Why not SwiftPM: `swift build -Xswiftc -sanitize=fuzzer` would rebuild every dependency
# (swift-crypto included) in another build folder and needs a product without `main`. Instead
# each needed module is compiled here with swiftc into .build-fuzz/ (ignored by git), in
# dependency order, instrumented; the target's own file is compiled into the module it fuzzes
# (so it can call the internal parser entry points). swift build / swift test are untouched.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TIME=""
RUNS=""
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) TIME="$2"; shift 2 ;;
        --time=*) TIME="${1#--time=}"; shift ;;
        --runs) RUNS="$2"; shift 2 ;;
        --runs=*) RUNS="${1#--runs=}"; shift ;;
        -h|--help) sed -n 2,21p "$0"; exit 0 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(npy safetensors idx checkpoint frames)
# Without --runs, 60 s per target unless --time says otherwise; with it, no time limit (0) unless given.
if [ -z "$RUNS" ]; then TIME="${TIME:-60}"; RUNS=-1; else TIME="${TIME:-0}"; fi

B="$ROOT/.build-fuzz"
mkdir -p "$B/mods" "$B/logs"
SWIFTC=(swiftc -sanitize=fuzzer,address -parse-as-library -g -Onone -module-cache-path "$B/mc" -I "$B/mods")

# Is the toolchain usable at all? (A tiny target must build and run.)
probe() {
    printf '@_cdecl("LLVMFuzzerTestOneInput") public func f(_ d: UnsafePointer<UInt8>, _ n: Int) -> CInt { 0 }\n' > "$B/probe.swift"
    "${SWIFTC[@]}" "$B/probe.swift" -o "$B/probe" >"$B/logs/probe.log" 2>&1 && "$B/probe" -runs=10 >>"$B/logs/probe.log" 2>&1
}
if ! command -v swiftc >/dev/null || ! probe; then
    echo "fuzz: SKIPPED: swiftc -sanitize=fuzzer,address does not build or run a fuzz target on this machine ($B/logs/probe.log)"
    exit 77
fi

OB_I=$(pkg-config --cflags-only-I openblas | sed 's/-I//g' | xargs)
OB_L=$(pkg-config --libs-only-L openblas | sed 's/-L//g' | xargs)
CINC=(-I "$ROOT/Sources/COpenBLAS" -I "$ROOT/Sources/CZlib" -I "$B/cchecksum" -I "$B/ckernels" ${OB_I:+-Xcc -I"$OB_I"})
LINK=(${OB_L:+-L"$OB_L"} -L "$B")

# Rebuilds `out` when any of the files after it is newer.
stale() { local out=$1; shift; [ ! -e "$out" ] && return 0; for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done; return 1; }

# A static library and .swiftmodule for module $1 from the given sources; rebuilt when they or
# the libraries of the modules named in $DEPS (its imports) are newer.
lib() {
    local name=$1; shift
    local deps=() d
    for d in ${DEPS:-}; do deps+=("$B/lib$d.a"); done
    stale "$B/lib$name.a" "$@" ${deps[@]+"${deps[@]}"} || return 0
    echo "fuzz: building module $name"
    "${SWIFTC[@]}" -module-name "$name" "${CINC[@]}" "${LINK[@]}" "$@" -emit-library -static -emit-module \
        -emit-module-path "$B/mods/$name.swiftmodule" -o "$B/lib$name.a" >"$B/logs/$name.log" 2>&1 \
        || { grep -E "error" "$B/logs/$name.log" | head -20; return 1; }
}

# A C target of Sources/ ($1: every .c file in it) as a static library, with a module map for
# Swift.
cmodule() {
    local name=$1 dir lower f objs=()
    dir="Sources/$name"; lower=$(echo "$name" | tr '[:upper:]' '[:lower:]')
    local header; header=$(ls "$dir"/include/*.h | head -n 1)
    mkdir -p "$B/$lower"
    printf 'module %s {\n    header "%s"\n    export *\n}\n' "$name" "$ROOT/$header" > "$B/$lower/module.modulemap"
    stale "$B/lib$name.a" "$dir"/*.c "$dir"/*.h "$dir"/include/*.h 2>/dev/null || return 0
    rm -f "$B/lib$name.a"
    for f in "$dir"/*.c; do
        clang -c -g -O1 -fsanitize=address,fuzzer-no-link -I "$dir/include" "$f" -o "$B/$lower/$(basename "$f" .c).o" || return 1
        objs+=("$B/$lower/$(basename "$f" .c).o")
    done
    ar rcs "$B/lib$name.a" "${objs[@]}"
}
# The CRC-32C of CChecksum; CKernels: the optimizers' loops, the codecs' byte planes and the
# convolutions' column matrices (Tensors imports it).
cchecksum() { cmodule CChecksum; }
ckernels() { cmodule CKernels; }

# swift-log's Logging (Telemetry needs it): from SwiftPM's checkout.
logging() {
    local src=.build/checkouts/swift-log/Sources/Logging
    [ -d "$src" ] || swift package resolve >/dev/null 2>&1
    local saved=("${SWIFTC[@]}")
    SWIFTC+=(-package-name swift_log)
    local files; mapfile -t files < <(find "$src" -name '*.swift' | sort)
    lib Logging "${files[@]}"; local rc=$?
    SWIFTC=("${saved[@]}")
    return $rc
}

# An executable: module $1's sources plus the target file, linked with the libraries after --.
exe() {
    local target=$1 module=$2; shift 2
    local srcs=() libs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do srcs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    libs=("$@")
    local libfiles=() l
    for l in ${libs[@]+"${libs[@]}"}; do libfiles+=("$B/lib$l.a"); done
    # (Relinked when a library changes: the list used to name "lib<name>" without ".a", so a
    # rebuilt library left the old executable in place.)
    stale "$B/fuzz-$target" "${srcs[@]}" "fuzz/targets/$target.swift" "$0" ${libfiles[@]+"${libfiles[@]}"} || return 0
    echo "fuzz: building fuzz-$target"
    "${SWIFTC[@]}" -module-name "$module" "${CINC[@]}" "${LINK[@]}" "${srcs[@]}" "fuzz/targets/$target.swift" \
        "${libs[@]/#/-l}" ${OB_L:+-lopenblas} -lz -o "$B/fuzz-$target" >"$B/logs/fuzz-$target.log" 2>&1 \
        || { grep -E "error" "$B/logs/fuzz-$target.log" | head -20; return 1; }
}

# Module $1's fuzz executable for target $2: every module below it built as Package.swift's
# graph says (scripts/modules.py plan: C targets and swift-log's Logging as static libraries,
# system libraries need nothing), then $1's own sources compiled with the target and linked
# with those libraries, dependents before their dependencies.
module_exe() {
    local module=$1 target=$2 name lang deps built=() plan systems=" "
    plan=$(python3 scripts/modules.py plan "$module") || return 1
    while read -r name lang deps; do
        [ "$name" = "$module" ] && break
        case "$lang" in
            system) systems+="$name "; continue ;;
            c) cmodule "$name" || return 1 ;;
            product)
                [ "$name" = Logging ] || { echo "fuzz: no recipe for the package product $name"; return 1; }
                logging || return 1 ;;
            swift) DEPS="$(without "$systems" "$deps")" lib "$name" Sources/"$name"/*.swift || return 1 ;;
        esac
        built=("$name" ${built[@]+"${built[@]}"})
    done <<< "$plan"
    exe "$target" "$module" Sources/"$module"/*.swift -- ${built[@]+"${built[@]}"}
}
# The names of $2 not in $1 (the system libraries: module maps, no library to build).
without() { local d out=(); for d in $2; do [[ "$1" == *" $d "* ]] || out+=("$d"); done; echo "${out[*]:-}"; }

build() {
    case "$1" in
        npy|safetensors) module_exe Tensors "$1" ;;
        idx) module_exe Datasets idx ;;
        checkpoint) module_exe GAN checkpoint ;;
        frames)
            # Three files of Collectives (the frame reader, the socket, the handshake): the module
            # whole needs swift-crypto, whose HMAC fuzz/support/AuthStub.swift stands in for.
            cchecksum && exe frames Collectives Sources/Collectives/Frame.swift Sources/Collectives/Socket.swift \
                Sources/Collectives/Handshake.swift fuzz/support/AuthStub.swift -- CChecksum ;;
        *) echo "fuzz: unknown target $1 (npy safetensors idx checkpoint frames)"; return 1 ;;
    esac
}

# Per-target input size limits (checkpoint seeds are whole small checkpoints).
maxlen() { case "$1" in checkpoint) echo 262144 ;; frames) echo 65536 ;; *) echo 16384 ;; esac; }

status=0
summary=()
for t in "${TARGETS[@]}"; do
    if ! build "$t"; then echo "fuzz: $t: BUILD FAILED"; status=1; summary+=("$t: build failed"); continue; fi
    work="$B/corpus/$t"; findings="$B/findings/$t"
    mkdir -p "$work" "$findings" "fuzz/corpus/$t"
    log="$B/logs/run-$t.log"
    # -rss_limit_mb: the whole process; -malloc_limit_mb: any one allocation; -timeout: per input.
    t0=$SECONDS
    "$B/fuzz-$t" "$work" "fuzz/corpus/$t" -max_total_time="$TIME" -runs="$RUNS" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -timeout=10 -max_len="$(maxlen "$t")" -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
    rc=$?
    secs=$((SECONDS - t0))
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz: $t: FOUND a problem after ${runs:-?} inputs (exit $rc); input in $findings/, log $log"
        grep -E "ERROR: |Fatal error|SUMMARY|Test unit written" "$log" | head -8
        summary+=("$t: FOUND (${runs:-?} inputs)")
    else
        echo "fuzz: $t: ${runs:-?} inputs in ${secs} s, ${cov:-cov: ?}, no crash, leak, timeout or oom"
        summary+=("$t: ${runs:-?} inputs clean")
    fi
done
echo "fuzz: $(IFS=';'; echo "${summary[*]}")"
exit $status
