"""Shared pieces of the benchmarks that build hosts out of network namespaces (bench/link.py,
bench/emucluster.py): running a command, running it inside a namespace, and tearing down a
rig's namespaces and interfaces."""
import os
import subprocess


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


def ns(name, *cmd):
    """`cmd` in namespace `name`'s network only (nsenter --net; `ip netns exec` would remount /sys)."""
    return ["nsenter", f"--net=/run/netns/{name}", *cmd]


def teardown(names, prefix):
    """Removes the namespaces `names` (killing what still runs inside, which would keep one alive)
    and any interface whose name starts with `prefix`- left in the host's own namespace."""
    for name in names:
        if os.path.exists(f"/run/netns/{name}"):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                sh("kill", "-KILL", pid, check=False)
            sh("ip", "netns", "del", name, check=False)
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        dev = line.split(": ")[1].split("@")[0] if ": " in line else ""
        if dev.startswith(prefix + "-"):
            sh("ip", "link", "del", dev, check=False)
