#!/usr/bin/env bash
# Installs gan, gan-coordinator and gan-worker (release builds) into PREFIX/bin and the 5,000
# digits into PREFIX/share/ringgan/data, where the installed commands find them from any folder.
#   bash scripts/install.sh [--prefix DIR]      (default /usr/local; DIR/bin should be on PATH)
# A per-user install: bash scripts/install.sh --prefix ~/.local
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
        -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install: unknown option '$1'" >&2; exit 2 ;;
    esac
done
bash scripts/setup.sh
swift build -c release --product gan 2>&1 | tail -n 1
swift build -c release --product gan-coordinator 2>&1 | tail -n 1
swift build -c release --product gan-worker 2>&1 | tail -n 1
bin="$(swift build -c release --show-bin-path)"
as_root=()
if ! mkdir -p "$prefix/bin" "$prefix/share/ringgan/data" 2>/dev/null || [ ! -w "$prefix/bin" ]; then
    as_root=(sudo)
    sudo mkdir -p "$prefix/bin" "$prefix/share/ringgan/data"
fi
for exe in gan gan-coordinator gan-worker; do
    "${as_root[@]}" install -m 755 "$bin/$exe" "$prefix/bin/$exe"
done
"${as_root[@]}" rm -rf "$prefix/share/ringgan/data/mnist-5k"
"${as_root[@]}" cp -r data/mnist-5k "$prefix/share/ringgan/data/mnist-5k"
echo "install: gan, gan-coordinator, gan-worker in $prefix/bin; digits in $prefix/share/ringgan/data"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "install: add $prefix/bin to PATH" ;; esac
