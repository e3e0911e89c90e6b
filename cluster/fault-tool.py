#!/usr/bin/env python3
"""Helpers of cluster/fault-matrix.sh (Python 3 standard library only).

  fault-tool.py watch-kill DIR PID ...      SIGKILL PID while it writes a checkpoint into DIR
                                            (its temporary file .step_*.rgan.tmp-PID is there)
  fault-tool.py hostile HOST:PORT ...       idle connections, garbage, HTTP and a slow drip to
                                            the given ports for a while
  fault-tool.py wire NS:TAP=NS:TAP ...      a userspace stand-in for `tc netem` (kernels without
                                            sch_netem): TAP pairs joined by this process, each
                                            host's egress delayed, thinned and rate-limited

Checkpoints are judged by `gan verify` and `gan compare` (the one reader of the format).
"""
import argparse
import ctypes
import errno
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

def cmd_watch_kill(a):
    """Polls DIR every 0.5 ms for the temporary file PID writes a checkpoint into
    (AtomicFile: .step_XXXXXXXX.rgan.tmp-PID), skips the first --skip of them, and SIGKILLs PID
    while the next one is there. Prints what it saw; exit 0 when the kill landed with the
    temporary file still present afterwards (the rename had not happened), 1 otherwise."""
    suffix = f".tmp-{a.pid}"
    seen = set()
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        try:
            names = os.listdir(a.dir)
        except FileNotFoundError:
            names = []
        tmps = [n for n in names if n.startswith(".step_") and n.endswith(suffix)]
        fresh = [n for n in tmps if n not in seen]
        if fresh:
            name = fresh[0]
            if len(seen) < a.skip:
                seen.add(name)
            else:
                path = os.path.join(a.dir, name)
                try:
                    before = os.stat(path).st_size
                except FileNotFoundError:
                    before = -1
                try:
                    os.kill(a.pid, signal.SIGKILL)
                except ProcessLookupError:
                    print(f"watch-kill: pid {a.pid} had already exited")
                    return 1
                time.sleep(0.2)
                try:
                    after = os.stat(path).st_size
                    present = True
                except FileNotFoundError:
                    after, present = -1, False
                target = name[1:name.rindex(".tmp-")]
                renamed = os.path.exists(os.path.join(a.dir, target))
                print(f"watch-kill: killed pid {a.pid} while {name} existed ({before} bytes when seen, "
                      f"{after} after the kill); {target} {'exists' if renamed else 'was never written'}; "
                      f"temporary file {'left behind' if present else 'gone'}")
                print(f"watch-kill-target: {target}")
                return 0 if present and not renamed else 1
        if not os.path.exists(f"/proc/{a.pid}"):
            print(f"watch-kill: pid {a.pid} exited before a checkpoint write was caught")
            return 1
        time.sleep(0.0005)
    print(f"watch-kill: no checkpoint write of pid {a.pid} seen within {a.timeout} s")
    return 1


def cmd_hostile(a):
    """For --seconds (or until SIGTERM): keeps --idle connections open and silent on every
    target (reopening those the peer closes), and every --every seconds sends each target one
    connection of random bytes and one HTTP request, and opens a connection that then drips a
    random byte every 0.25 s. Prints, per target, what was done and how the peer answered."""
    targets = []
    for t in a.targets:
        host, port = t.rsplit(":", 1)
        targets.append((host, int(port)))
    rng = random.Random(a.seed)
    keys = ("opened", "refused", "closed by peer", "garbage", "http", "drip bytes", "bytes from peer")
    stats = {t: dict.fromkeys(keys, 0) for t in targets}
    idle = {t: [] for t in targets}
    drips = {t: [] for t in targets}
    end = time.monotonic() + a.seconds

    def connect(t):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(t)
            s.setblocking(False)
            stats[t]["opened"] += 1
            return s
        except OSError:
            stats[t]["refused"] += 1
            s.close()
            return None

    def alive(t, s):
        try:
            d = s.recv(4096)
            if d == b"":
                stats[t]["closed by peer"] += 1
                return False
            stats[t]["bytes from peer"] += len(d)   # a handshake challenge: still open
            return True
        except BlockingIOError:
            return True
        except OSError:
            stats[t]["closed by peer"] += 1
            return False

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    next_burst = 0.0
    while time.monotonic() < end and not stop:
        for t in targets:
            idle[t] = [s for s in idle[t] if alive(t, s) or s.close()]
            while len(idle[t]) < a.idle and not stop:
                s = connect(t)
                if s is None:
                    break
                idle[t].append(s)
        now = time.monotonic()
        if now >= next_burst:
            next_burst = now + a.every
            for t in targets:
                for payload, key in ((bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))), "garbage"),
                                     (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http")):
                    s = connect(t)
                    if s is None:
                        continue
                    try:
                        s.setblocking(True)
                        s.settimeout(1)
                        s.sendall(payload)
                        stats[t][key] += 1
                    except OSError:
                        pass
                    s.close()
                s = connect(t)
                if s is not None:
                    drips[t].append(s)
        for t in targets:
            kept = []
            for s in drips[t]:
                try:
                    s.send(bytes([rng.getrandbits(8)]))
                    stats[t]["drip bytes"] += 1
                    kept.append(s)
                except OSError:
                    stats[t]["closed by peer"] += 1
                    s.close()
            drips[t] = kept
        time.sleep(0.25)
    for t in targets:
        for s in idle[t] + drips[t]:
            s.close()
    took = a.seconds - max(0.0, end - time.monotonic())
    parts = []
    for t in targets:
        parts.append(f"{t[0]}:{t[1]}: " + ", ".join(f"{k} {v}" for k, v in stats[t].items() if v))
    print(f"hostile: in {took:.0f} s: " + "; ".join(parts))
    return 0


# --- the userspace netem stand-in --------------------------------------------------------------

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(ns, name):
    """A TAP device `name` created in network namespace `ns` (/run/netns/NS); it lives as long as
    the returned descriptor (this process)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(target)
    return fd


def cmd_wire(a):
    """Each pair HOSTNS:TAP=SWITCHNS:TAP becomes two TAP devices joined by this process. Frames the
    host sends (its egress) are dropped with probability --loss, serialized at --rate bit/s and
    delivered --delay ms later, like `tc qdisc add dev eth0 root netem delay D loss L rate R` on
    the host; frames towards the host pass unchanged. Writes --ready FILE when the devices exist,
    runs until SIGTERM, then prints the counts."""
    rng = random.Random(a.seed)
    links = []   # (host_fd, switch_fd)
    for p in a.pairs:
        left, right = p.split("=")
        hns, htap = left.split(":")
        sns, stap = right.split(":")
        links.append((open_tap(hns, htap), open_tap(sns, stap)))
    peer = {}
    shaped = set()
    next_free = {}
    for h, s in links:
        peer[h], peer[s] = s, h
        shaped.add(h)
        next_free[h] = 0.0
    counts = {"frames": 0, "dropped": 0, "bytes": 0, "late_ms_max": 0.0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    if a.ready:
        with open(a.ready, "w") as f:
            f.write(f"{os.getpid()}\n")
    heap = []
    seq = 0
    delay = a.delay / 1000.0
    fds = list(peer)
    while not stop:
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            due, _, out, frame = heapq.heappop(heap)
            counts["late_ms_max"] = max(counts["late_ms_max"], (now - due) * 1000)
            try:
                os.write(out, frame)
            except OSError:
                pass
        timeout = max(0.0, heap[0][0] - now) if heap else 0.5
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            for _ in range(64):
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EIO):
                        break
                    raise
                if fd not in shaped:
                    try:
                        os.write(peer[fd], frame)
                    except OSError:
                        pass
                    continue
                counts["frames"] += 1
                if rng.random() < a.loss:
                    counts["dropped"] += 1
                    continue
                counts["bytes"] += len(frame)
                depart = max(now, next_free[fd]) + len(frame) * 8 / a.rate
                next_free[fd] = depart
                seq += 1
                heapq.heappush(heap, (depart + delay, seq, peer[fd], frame))
    print(f"wire: {counts['frames']} frames from the hosts, {counts['dropped']} dropped "
          f"({100.0 * counts['dropped'] / max(1, counts['frames']):.2f}%), {counts['bytes']} bytes delivered, "
          f"delivery at most {counts['late_ms_max']:.1f} ms after its due time")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("watch-kill")
    p.add_argument("dir"); p.add_argument("pid", type=int)
    p.add_argument("--skip", type=int, default=0, help="checkpoint writes to let pass first")
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(f=cmd_watch_kill)
    p = sub.add_parser("hostile")
    p.add_argument("targets", nargs="+")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--idle", type=int, default=20, help="idle connections kept open per target")
    p.add_argument("--every", type=float, default=1.0, help="seconds between garbage/HTTP/drip bursts")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(f=cmd_hostile)
    p = sub.add_parser("wire")
    p.add_argument("pairs", nargs="+", help="HOSTNS:TAP=SWITCHNS:TAP")
    p.add_argument("--delay", type=float, default=50, help="ms")
    p.add_argument("--loss", type=float, default=0.02, help="probability")
    p.add_argument("--rate", type=float, default=100e6, help="bit/s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ready")
    p.set_defaults(f=cmd_wire)
    a = ap.parse_args()
    sys.exit(a.f(a))


if __name__ == "__main__":
    main()
