#!/usr/bin/env python3
"""Helpers of cluster/fault-matrix.sh (Python 3 standard library only).

  fault-tool.py self-test                   verify and compare on made-up checkpoints
  fault-tool.py verify CKPT                 the checkpoint reads back whole: magic, version,
                                            CRC-32 of everything before it, header, entries
  fault-tool.py compare A B                 A and B hold the same step, config, sampler and
                                            tensors, byte for byte (exit 0), or name what differs
                                            (exit 1); exit 2 if either does not read back
  fault-tool.py watch-kill DIR PID ...      SIGKILL PID while it writes a checkpoint into DIR
                                            (its temporary file .step_*.rgan.tmp-PID is there)
  fault-tool.py hostile HOST:PORT ...       idle connections, garbage, HTTP and a slow drip to
                                            the given ports for a while
  fault-tool.py wire NS:TAP=NS:TAP ...      a userspace stand-in for `tc netem` (kernels without
                                            sch_netem): TAP pairs joined by this process, each
                                            host's egress delayed, thinned and rate-limited

The checkpoint layout is the one Sources/GAN/Checkpoint.swift documents:

  "RINGGAN\\0" | u32 version | u64 header length | header JSON | float32 data | u32 CRC-32

all little-endian; the CRC (zlib's CRC-32) covers everything before it.
"""
import argparse
import ctypes
import errno
import fcntl
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import zlib

MAGIC = b"RINGGAN\0"
VERSION = 1


class Bad(Exception):
    pass


def read_checkpoint(path):
    """(header dict, {name: (shape, bytes)}) of a checkpoint that reads back whole, else Bad."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Bad(f"{path}: cannot read: {e.strerror}")
    if len(data) < 24 or data[:8] != MAGIC:
        raise Bad(f"{path}: not a RingGAN checkpoint (no RINGGAN magic)")
    (version,) = struct.unpack_from("<I", data, 8)
    if version != VERSION:
        raise Bad(f"{path}: format version {version}; this reader knows {VERSION}")
    (stored,) = struct.unpack_from("<I", data, len(data) - 4)
    computed = zlib.crc32(memoryview(data)[:-4]) & 0xFFFFFFFF
    if stored != computed:
        raise Bad(f"{path}: checksum mismatch (stored {stored:08x}, computed {computed:08x}): truncated or damaged")
    (hlen,) = struct.unpack_from("<Q", data, 12)
    if 20 + hlen + 4 > len(data):
        raise Bad(f"{path}: header length {hlen} does not fit the file")
    try:
        header = json.loads(data[20:20 + hlen])
    except ValueError as e:
        raise Bad(f"{path}: unreadable header: {e}")
    body = 20 + hlen
    floats = (len(data) - 4 - body) // 4
    tensors = {}
    for e in header.get("tensors", []):
        n = 1
        for d in e["shape"]:
            if d < 0:
                raise Bad(f"{path}: tensor {e['name']} has a negative dimension")
            n *= d
        if e["offset"] < 0 or e["offset"] + n > floats:
            raise Bad(f"{path}: tensor {e['name']} lies outside the data section")
        start = body + 4 * e["offset"]
        tensors[e["name"]] = (tuple(e["shape"]), data[start:start + 4 * n])
    return header, tensors


def cmd_verify(a):
    try:
        h, t = read_checkpoint(a.checkpoint)
    except Bad as e:
        print(f"verify: {e}")
        return 1
    values = sum(len(b) // 4 for _, b in t.values())
    print(f"verify: {a.checkpoint}: step {h['step']}, {len(t)} tensors, {values} values, CRC ok")
    return 0


def cmd_compare(a):
    try:
        ha, ta = read_checkpoint(a.a)
        hb, tb = read_checkpoint(a.b)
    except Bad as e:
        print(f"compare: {e}")
        return 2
    problems = []
    if ha["step"] != hb["step"]:
        problems.append(f"step {ha['step']} vs {hb['step']}")
    if ha["config"] != hb["config"]:
        keys = sorted(k for k in set(ha["config"]) | set(hb["config"]) if ha["config"].get(k) != hb["config"].get(k))
        problems.append(f"config differs in {keys}")
    if ha["sampler"] != hb["sampler"]:
        problems.append("data sampler state differs")
    if set(ta) != set(tb):
        problems.append(f"tensor names differ: only in A {sorted(set(ta) - set(tb))[:5]}, only in B {sorted(set(tb) - set(ta))[:5]}")
    differ = []
    for name in sorted(set(ta) & set(tb)):
        (sa, ba), (sb, bb) = ta[name], tb[name]
        if sa != sb:
            differ.append(f"{name} shape {list(sa)} vs {list(sb)}")
        elif ba != bb:
            va = struct.unpack(f"<{len(ba) // 4}f", ba)
            vb = struct.unpack(f"<{len(bb) // 4}f", bb)
            n = sum(1 for x, y in zip(va, vb) if x != y or (x != x) != (y != y))
            worst = max(abs(x - y) for x, y in zip(va, vb))
            differ.append(f"{name} ({n} of {len(va)} values, max |diff| {worst:.3g})")
    if differ:
        problems.append(f"{len(differ)} of {len(ta)} tensors differ: " + "; ".join(differ[:4]) + (" ..." if len(differ) > 4 else ""))
    values = sum(len(b) // 4 for _, b in ta.values())
    if problems:
        print("compare: DIFFERENT: " + "; ".join(problems))
        return 1
    print(f"compare: identical: step {ha['step']}, {len(ta)} tensors ({values} values) byte for byte, same config and sampler")
    return 0


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


def cmd_self_test(a):
    """Checks verify and compare on checkpoints made here in the documented layout: equal files
    compare identical, one changed value or a changed step is found, a damaged CRC is refused."""
    import tempfile

    def make(path, values, step=3, crc_delta=0):
        header = json.dumps({"format": "ringgan-checkpoint", "config": {"model": "mlp"}, "step": step,
                             "sampler": {"epoch": 0}, "tensors": [{"name": "G.w", "shape": [2, 2], "offset": 0},
                                                                 {"name": "D.b", "shape": [3], "offset": 4}]}).encode()
        body = MAGIC + struct.pack("<IQ", VERSION, len(header)) + header + struct.pack(f"<{len(values)}f", *values)
        with open(path, "wb") as f:
            f.write(body + struct.pack("<I", (zlib.crc32(body) + crc_delta) & 0xFFFFFFFF))

    vals = [0.5, -1.0, 2.0, 3.25, 0.0, 1e-3, -7.5]
    changed = list(vals)   # D.b[1] one float32 ulp up
    changed[5] = struct.unpack("<f", struct.pack("<I", struct.unpack("<I", struct.pack("<f", vals[5]))[0] + 1))[0]
    failures = []
    with tempfile.TemporaryDirectory() as d:
        p = {k: os.path.join(d, k) for k in ("a", "b", "c", "d", "e")}
        make(p["a"], vals); make(p["b"], vals); make(p["c"], changed); make(p["d"], vals, step=4)
        make(p["e"], vals, crc_delta=1)
        quiet = argparse.Namespace
        import contextlib, io
        def run(f, **kw):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                rc = f(quiet(**kw))
            return rc, out.getvalue()
        for (x, y, want, what) in (("a", "b", 0, "equal files"), ("a", "c", 1, "one value changed"),
                                   ("a", "d", 1, "another step"), ("a", "e", 2, "a damaged CRC")):
            rc, out = run(cmd_compare, a=p[x], b=p[y])
            if rc != want:
                failures.append(f"compare, {what}: exit {rc}, expected {want} ({out.strip()})")
        rc, out = run(cmd_verify, checkpoint=p["e"])
        if rc != 1 or "checksum mismatch" not in out:
            failures.append(f"verify of a damaged CRC: exit {rc} ({out.strip()})")
        rc, out = run(cmd_compare, a=p["a"], b=p["c"])
        if "D.b (1 of 3 values" not in out:
            failures.append(f"compare does not name the changed tensor: {out.strip()}")
    for f in failures:
        print(f"self-test: FAIL {f}")
    print(f"self-test: {'ok' if not failures else 'FAILED'} (compare: equal, a changed value, another step, a damaged CRC; verify: a damaged CRC)")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("self-test"); p.set_defaults(f=cmd_self_test)
    p = sub.add_parser("verify"); p.add_argument("checkpoint"); p.set_defaults(f=cmd_verify)
    p = sub.add_parser("compare"); p.add_argument("a"); p.add_argument("b"); p.set_defaults(f=cmd_compare)
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
