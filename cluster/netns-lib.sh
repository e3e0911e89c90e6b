# Shared pieces of the scripts that run RingGAN across Linux network namespaces
# (cluster/netns-test.sh, cluster/fault-matrix.sh; soak.sh, launcher-test.sh and slurm-test.sh use netns_find_bin).
# Sourced, not run:
#
#   source "$root/cluster/netns-lib.sh"
#
# Hosts are namespaces joined by a bridge (br0) in a "switch" namespace, one veth pair per host:
# the host's end is eth0 inside the host's namespace, the switch's end (PREFIX-sI) is plugged into
# the bridge. Every interface and address lives inside namespaces created here, so nothing is
# added to the machine's own network namespace. Callers set NETNS_NAME (the name their messages
# start with) before calling these.

NETNS_NAME=${NETNS_NAME:-netns}

# Runs a command in a namespace's network only (nsenter --net). `ip netns exec` would also remount
# / and /sys, which fails where / is not a mount point (a chroot, as the fresh-machine check uses).
in_ns() {
    local ns="$1"; shift
    nsenter --net="/run/netns/$ns" "$@"
}

# netns_require_root SCRIPT: exits 2 (or with $NETNS_NOT_ROOT_EXIT) with the reason unless root.
netns_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "$NETNS_NAME: needs root: it creates network namespaces and veth pairs (ip netns add, ip link add);" >&2
        echo "$NETNS_NAME: run it as root, e.g. sudo bash $1" >&2
        exit "${NETNS_NOT_ROOT_EXIT:-2}"
    fi
}

# netns_require_tools TOOL...: exits 2 naming the first missing tool.
netns_require_tools() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "$NETNS_NAME: '$tool' is missing (apt-get install iproute2 coreutils util-linux procps)" >&2
            exit 2
        fi
    done
}

# netns_find_bin DIR EXE...: prints the absolute binary folder (DIR, or .build/release when it
# has every EXE, else .build/debug); exits 2 when a binary is missing.
netns_find_bin() {
    local dir="$1" abs exe; shift
    if [ -z "$dir" ]; then
        dir=.build/release
        for exe in "$@"; do [ -x "$dir/$exe" ] || dir=.build/debug; done
    fi
    abs="$(cd "$dir" 2>/dev/null && pwd)" || { echo "$NETNS_NAME: no binary folder '$dir'" >&2; exit 2; }
    dir="$abs"
    for exe in "$@"; do
        [ -x "$dir/$exe" ] || { echo "$NETNS_NAME: $dir/$exe not found; build first (swift build -c release)" >&2; exit 2; }
    done
    echo "$dir"
}

# netns_delete PREFIX NS...: removes the namespaces (ending the processes still inside them,
# which keep a namespace alive after `ip netns del`; only this script's namespaces are named)
# and any stray PREFIX- interface of a crashed run in the machine's own namespace.
netns_delete() {
    local prefix="$1" ns p l; shift
    for ns in "$@"; do
        if [ -e "/var/run/netns/$ns" ] || [ -e "/run/netns/$ns" ]; then
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    # veth ends are created here before they move into the namespaces; remove strays of a crash.
    for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$prefix-" || true); do
        ip link del "$l" 2>/dev/null || true
    done
}

# netns_setup PREFIX SWITCH_NS HOSTS_ARRAY ADDRS_ARRAY: the switch namespace with its bridge, and
# one namespace per host (names and /24 addresses in the two arrays, passed by name) wired to it
# by a veth pair: PREFIX-hI becomes the host's eth0, PREFIX-sI stays in the switch. Run it as
# (set -e; netns_setup ...) so that any failing step fails it.
netns_setup() {
    local prefix="$1" sw="$2"
    local -n _hosts="$3" _addrs="$4"
    local i ns addr
    ip netns add "$sw"
    in_ns "$sw" ip link add name br0 type bridge
    in_ns "$sw" ip link set br0 up
    in_ns "$sw" ip link set lo up
    for i in "${!_hosts[@]}"; do
        ns=${_hosts[$i]}; addr=${_addrs[$i]}
        ip netns add "$ns"
        # The pair is created in this namespace under PREFIX- names and moved at once: one end
        # into the host's namespace (eth0), the other into the switch's (plugged into the bridge).
        ip link add "$prefix-h$i" type veth peer name "$prefix-s$i"
        ip link set "$prefix-h$i" netns "$ns"
        ip link set "$prefix-s$i" netns "$sw"
        in_ns "$ns" ip link set "$prefix-h$i" name eth0
        in_ns "$ns" ip addr add "$addr/24" dev eth0
        in_ns "$ns" ip link set eth0 up
        in_ns "$ns" ip link set lo up
        in_ns "$sw" ip link set "$prefix-s$i" master br0
        in_ns "$sw" ip link set "$prefix-s$i" up
    done
}

# netns_new_token FILE: 32 random bytes as hex, mode 0600 (the programs refuse looser files).
netns_new_token() {
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1")
    chmod 600 "$1"
}
