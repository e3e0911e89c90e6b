#!/usr/bin/env bash
# Makes the two base images docker/Dockerfile needs, locally, for a machine that can reach a
# Debian mirror but no image registry (so neither `swift:6.3-bookworm` nor
# `debian:bookworm-slim` can be pulled):
#
#   ringgan-local/debian:bookworm-slim   a Debian 12 root from debootstrap (minbase), trimmed the
#                                        way the official -slim image is (no docs, man pages,
#                                        locales, apt lists or cached .debs); the runtime base
#   ringgan-local/swift:<ver>-bookworm   the same root plus what the official Swift image adds
#                                        (git, libc6-dev, libstdc++-12-dev, ...), the Swift
#                                        toolchain on this machine (the one `swift` on PATH runs,
#                                        copied to /usr as in the official image, without the
#                                        debugger, IDE and wasm/embedded parts a build never uses)
#                                        and, where git reads github.com from a local mirror
#                                        (url.<dir>.insteadOf), the mirrored repositories
#                                        Package.resolved pins, with the same git setting
#
#   bash docker/base-images.sh            # prints SWIFT_IMAGE=... and RUNTIME_IMAGE=...
#   docker build -f docker/Dockerfile --build-arg SWIFT_IMAGE=... --build-arg RUNTIME_IMAGE=... .
#
# Talks to the engine through the Docker API (`docker` CLI; DOCKER_HOST as set). An image that
# is already there (same name, same toolchain label) is kept: a second run costs nothing.
# Needs root (debootstrap) and debootstrap itself. Where a registry is reachable, none of this is
# needed: the Dockerfile's defaults are the official images.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
mirror="${RINGGAN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { echo "base-images: $*" >&2; }

for tool in docker debootstrap swift; do
    command -v "$tool" >/dev/null || { log "'$tool' is missing"; exit 2; }
done
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap)"; exit 2; }

swift_bin="$(readlink -f "$(command -v swift)")"
toolchain_usr="$(dirname "$(dirname "$swift_bin")")"          # .../usr
swift_version="$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9][0-9.]*\).*/\1/p' | head -n 1)"
[ -n "$swift_version" ] || { log "cannot tell the Swift version of $swift_bin"; exit 2; }
swift_minor="$(echo "$swift_version" | cut -d. -f1,2)"

RUNTIME_IMAGE="ringgan-local/debian:bookworm-slim"
SWIFT_IMAGE="ringgan-local/swift:${swift_minor}-bookworm"

have_image() {   # name [label=value]
    local got
    got="$(docker image inspect -f '{{ index .Config.Labels "org.ringgan.base" }}' "$1" 2>/dev/null)" || return 1
    [ -z "${2:-}" ] || [ "$got" = "$2" ]
}

work=""
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT

# A bookworm minbase root in $1, packages $2 (comma-separated) added, trimmed like -slim.
bootstrap() {
    local dir="$1" include="${2:-}"
    log "debootstrap bookworm into $dir${include:+ (with $include)}"
    debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$dir" "$mirror" > "$dir.log" 2>&1 \
        || { tail -n 20 "$dir.log" >&2; log "debootstrap failed (log above)"; return 1; }
    # The same sources as the official image: the release, its updates and security.
    rm -f "$dir/etc/apt/sources.list"
    cat > "$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # What debian:bookworm-slim leaves out (its dpkg path-exclude rules, applied here too so
    # later apt-get installs stay slim), and the caches.
    mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
    cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
        "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
        "$dir"/var/log/* "$dir"/tmp/* "$dir"/root/.bash_history
    echo 'APT::Install-Recommends "false";' > "$dir/etc/apt/apt.conf.d/99no-recommends"
    # The official Debian images' apt settings: no package cache files, no .debs kept after install.
    cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
}

import() {   # dir image label
    log "importing $1 as $2"
    tar -C "$1" --numeric-owner -c . \
        | docker import --change "LABEL org.ringgan.base=$3" --change 'CMD ["bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$2" >/dev/null
}

# ---- the runtime base ---------------------------------------------------------------------
if have_image "$RUNTIME_IMAGE" "debootstrap-minbase"; then
    log "$RUNTIME_IMAGE is there"
else
    work="$(mktemp -d /var/tmp/ringgan-base.XXXXXX)"
    bootstrap "$work/runtime"
    import "$work/runtime" "$RUNTIME_IMAGE" "debootstrap-minbase"
    rm -rf "$work"; work=""
fi

# ---- the build base -----------------------------------------------------------------------
# Package.resolved (ignored by git) is written by the first `swift build`; make it if missing.
[ -f "$root/Package.resolved" ] || (cd "$root" && swift package resolve >/dev/null)
# Keyed by the toolchain's version and the pinned packages (a new pin needs its repository).
pins_key="$(sha256sum "$root/Package.resolved" 2>/dev/null | cut -c1-12 || echo none)"
swift_label="swift-$swift_version-$pins_key"
if have_image "$SWIFT_IMAGE" "$swift_label"; then
    log "$SWIFT_IMAGE is there ($swift_label)"
else
    work="$(mktemp -d /var/tmp/ringgan-base.XXXXXX)"
    # What the official swift:*-bookworm image installs beside the toolchain.
    bootstrap "$work/swift" "binutils,git,ca-certificates,gnupg2,libc6-dev,libcurl4-openssl-dev,libedit2,libgcc-12-dev,libpython3.11,libsqlite3-0,libstdc++-12-dev,libxml2-dev,libncurses-dev,libz3-dev,pkg-config,tzdata,zlib1g-dev,unzip"
    log "copying the toolchain $toolchain_usr into /usr"
    tar -C "$toolchain_usr" \
        --exclude='./bin/lldb*' --exclude='./lib/liblldb*' --exclude='./bin/sourcekit-lsp' \
        --exclude='./lib/libsourcekitdInProc*' --exclude='./lib/libSwiftSourceKit*' \
        --exclude='./bin/clangd' --exclude='./bin/docc' --exclude='./share/docc' \
        --exclude='./bin/swift-format' --exclude='./bin/wasmkit' --exclude='./bin/wasm-ld' \
        --exclude='./lib/swift/embedded' --exclude='./lib/swift_static' --exclude='./bin/repl_swift' \
        -c . | tar -C "$work/swift/usr" -x --keep-directory-symlink
    # The local package mirror, if git here reads github.com from one.
    mirror_dir="$(git config --system --get-regexp '^url\..*\.insteadof$' 2>/dev/null \
        | awk '$2 == "https://github.com/" { sub(/^url\./, "", $1); sub(/\.insteadof$/, "", $1); print $1; exit }')"
    if [ -n "$mirror_dir" ] && [ -d "$mirror_dir" ]; then
        log "copying the pinned repositories from the package mirror $mirror_dir"
        mkdir -p "$work/swift/$mirror_dir"
        python3 - "$root/Package.resolved" <<'EOF' | while read -r rel; do
import json, sys
for pin in json.load(open(sys.argv[1]))["pins"]:
    loc = pin["location"]
    if loc.startswith("https://github.com/"):
        rel = loc[len("https://github.com/"):]
        print(rel if rel.endswith(".git") else rel + ".git")
EOF
            mkdir -p "$work/swift/$mirror_dir/$(dirname "$rel")"
            cp -a "$mirror_dir/$rel" "$work/swift/$mirror_dir/$rel"
        done
        git config --system --get-regexp '^url\..*\.insteadof$' | while read -r key value; do
            git config --file "$work/swift/etc/gitconfig" --add "$key" "$value"
        done
    fi
    import "$work/swift" "$SWIFT_IMAGE" "$swift_label"
    rm -rf "$work"; work=""
fi

echo "SWIFT_IMAGE=$SWIFT_IMAGE"
echo "RUNTIME_IMAGE=$RUNTIME_IMAGE"
