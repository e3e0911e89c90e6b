#!/usr/bin/env python3
"""An emulated cluster on one host (issue 24): every worker, and the coordinator, is a small
"machine" with its own network namespace, its own link and its own CPU budget; RingGAN
(gan-coordinator + N gan-workers) and PyTorch DDP/gloo (bench/torch_ddp_gan.py) run on the same
machines, one after the other, and the sweep reports step time, images/s, bytes per worker per
step and the scaling efficiency E(N) = throughput(N) / (N x throughput(1)).

  sudo python3 bench/emucluster.py [--workers 1,2,4,8] [--core F] [--link-equiv 1gbit,10gbit] [--machine-cores 1]
      [--models dcgan32] [--mode weak,strong] [--batch 64] [--steps 25] [--warmup 3]
      [--period-us 2000] [--coord-core 0.2] [--codec shuffle-zstd] [--rounds 1] [--no-ballast]
      [--no-torch] [--json OUT] [--section TITLE] [--no-plots] [--results bench/RESULTS.md] [--bin DIR]
  python3 bench/emucluster.py --cleanup      (removes whatever a killed run left behind)
  python3 bench/emucluster.py --replot A.json [B.json ...] [--plot-suffix=-X]   (plots of earlier sweeps)

A machine:
  - network: a namespace (rgemu-c, rgemu-w0 ...) with eth0, a veth whose other end is a port of
    the bridge br0 in the switch namespace rgemu-sw; `tc tbf` shapes both ends at the machine's
    rate (its eth0 sends at most the rate; the switch port sends it at most the rate). Addresses
    10.202.0.0/24; nothing is added to the host's own network. This kernel has no netem (of the
    queueing disciplines tried, only tbf, pfifo, bfifo, pfifo_fast and htb exist), so NO DELAY IS ADDED: the link is bandwidth-limited
    with the veth's own (microsecond) latency. Under each tbf, pfifo_fast (--queue prio, the
    default; Linux's classic default queueing and this host's net.core.default_qdisc): packets
    of a socket marked latency-sensitive (SO_PRIORITY 6, as RingGAN marks its statistics) leave
    before bulk data queued on the same interface, as on a host with its default queueing;
    --queue fifo: tbf's own single FIFO (the rig up to 2026-12-07).
  - CPU: a cgroup v1 `cpu` group /sys/fs/cgroup/cpu/rgemu/<machine> with cpu.cfs_period_us = the
    period and cpu.cfs_quota_us = fraction x period (cgroup v2 `cpu.max` where v2 is the mounted
    one). The kernel's smallest quota is 1 ms, so a period shorter than 1 ms / fraction is
    raised to it (0.2 core: 5 ms; 0.1 core: 10 ms) and the table says which period ran.
    Every process is moved into its group before it starts work (sh -c 'echo $$ > cgroup.procs;
    exec ...' inside nsenter --net), and pinned to one CPU (taskset; worker k on CPU k mod CPUs,
    the coordinator on the last; --no-pin: any CPU): a 1-core machine's threads share one core,
    and a group's quota is not split between CPUs' run queues (CFS hands each a slice of it).

Time dilation: a worker at 1/k of a core on a link of R/k stands for a 1-core machine on a link of
R (compute and wire both k times slower), so --link-equiv R sets the rate R x core. The
coordinator gets --coord-core of a core and the same link rate as a worker. --machine-cores M
makes each worker stand for an M-core machine instead: its compute per step M times shorter than a
1-core machine's (the issue's assumption: M cores, M times the speed), so the dilation is M / core
and the rate set is R x core / M; e.g. --machine-cores 16 --link-equiv 10gbit at 0.2 core is a
125 Mbit/s link: 16-core machines on 10 Gbit/s.

Modes: weak (every worker takes --batch images: global batch N x b) and strong (global batch
--batch split N ways). RingGAN runs with one engine thread per worker and its default lossless
codec unless --codec says otherwise; DDP with one thread per rank and plain BatchNorm (DDP cannot
synchronise BatchNorm on a CPU; RingGAN synchronises it exactly).

Ballast: below the sweep's largest N, N_max - N busy loops (each in a cgroup with a worker's budget)
keep the host as loaded as at N_max, so a nearly idle host does not change the small-N runs'
compute (--no-ballast turns it off). --rounds R runs every configuration R times, taking turns,
and reports the medians (measured run-to-run spread of one setting: up to 10-30%).

Measured per configuration: the median of the step times after --warmup steps (the time between
the per-step lines the coordinator / DDP's rank 0 prints), images/s (global batch / step), bytes
each worker's interface sent per steady-state step (the switch port's receive counter), and for
RingGAN the workers' own account of the ring (mean over ranks and over the whole run, from the
log line every gan-worker writes at exit): time the training thread was blocked on the ring per
step, and the collective thread's gradient and statistics all-reduce time, and of the gradient
time the codec's: encoding on the ring's sender threads and decoding (with the additions) on its
collective thread (none for the raw codec; gan-worker logs it since 2026-12-07, seventh session).
Compute is what is left of the step: step - blocked.

Everything is removed on exit, on Ctrl-C and on SIGTERM (namespaces and their processes,
interfaces, cgroups); a run that was SIGKILLed is cleaned up by the next start, or by --cleanup
(bench/emucluster.sh does that in its EXIT trap).
"""
import shlex
import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_rig import ns, sh, teardown as teardown_namespaces  # noqa: E402
from results_md import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
P = "rgemu"
SW = f"{P}-sw"
COORD = (f"{P}-c", "10.202.0.1")
MAX_WORKERS = 16
WORKERS = [(f"{P}-w{i}", f"10.202.0.{10 + i}") for i in range(MAX_WORKERS)]
MACHINES = [COORD, *WORKERS]

MODELS = {
    # name: (RingGAN flags, torch_ddp_gan.py flags)
    "mlp": (["--model", "mlp", "--image-size", "28"], ["--model", "mlp", "--image-size", "28"]),
    "dcgan32": (["--model", "dcgan", "--image-size", "32"], ["--model", "dcgan", "--image-size", "32"]),
    "dcgan64": (["--model", "dcgan", "--image-size", "64"], ["--model", "dcgan", "--image-size", "64"]),
    # RingGAN's StyleGAN defaults to 16 feature maps (gan train --help); DDP's twin is given the same.
    "stylegan": (["--model", "stylegan", "--image-size", "32", "--ngf", "16", "--ndf", "16"],
                 ["--model", "stylegan", "--image-size", "32", "--ngf", "16", "--ndf", "16"]),
}




# ---------------------------------------------------------------- CPU budgets (cgroups)

class CGroups:
    """One cpu cgroup per machine under rgemu/, v1 where the cpu controller is mounted there."""

    def __init__(self):
        v1 = "/sys/fs/cgroup/cpu"
        v2 = "/sys/fs/cgroup/cgroup.controllers"
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            self.version, self.root = 1, os.path.join(v1, P)
        elif os.path.exists(v2) and "cpu" in open(v2).read().split():
            self.version, self.root = 2, os.path.join("/sys/fs/cgroup", P)
        else:
            sys.exit("emucluster: no cgroup cpu controller (neither v1 /sys/fs/cgroup/cpu nor v2 cpu.max)")

    def path(self, machine):
        return os.path.join(self.root, machine)

    def procs(self, machine):
        return os.path.join(self.path(machine), "cgroup.procs")

    def setup(self, machines, fraction_of, period_us):
        """fraction_of: machine -> fraction of a core. Returns the period actually used."""
        os.makedirs(self.root, exist_ok=True)
        if self.version == 2:
            for d in (os.path.dirname(self.root), self.root):
                try:
                    with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                        f.write("+cpu")
                except OSError as e:
                    # EBUSY: d holds processes of its own (cgroup v2 lets a cgroup with processes,
                    # other than the root, give no controller to its children), as the root of a
                    # container's cgroup namespace does.
                    sys.exit(f"emucluster: cannot enable the cpu controller for the machines' cgroups in {d} "
                             f"(cgroup v2, writing +cpu to cgroup.subtree_control: {e.strerror}); "
                             f"run on the host, or where {d} holds no processes of its own")
        periods = {}
        for m in machines:
            frac = fraction_of(m)
            period = max(period_us, -(-1000 * 1000 // int(round(frac * 1000)))) if frac < 1 else period_us
            period = min(period, 1_000_000)
            quota = int(round(frac * period))
            os.makedirs(self.path(m), exist_ok=True)
            if self.version == 1:
                # The quota first to -1 so that any period is accepted, then period, then quota.
                self._w(m, "cpu.cfs_quota_us", "-1")
                self._w(m, "cpu.cfs_period_us", str(period))
                self._w(m, "cpu.cfs_quota_us", str(quota))
            else:
                self._w(m, "cpu.max", f"{quota} {period}")
            periods[m] = period
        return periods

    def _w(self, m, name, value):
        with open(os.path.join(self.path(m), name), "w") as f:
            f.write(value)

    def throttled(self, machine):
        """(nr_throttled, throttled seconds) so far."""
        try:
            kv = dict(line.split() for line in open(os.path.join(self.path(machine), "cpu.stat")))
        except OSError:
            return (0, 0.0)
        if self.version == 1:
            return int(kv.get("nr_throttled", 0)), int(kv.get("throttled_time", 0)) / 1e9
        return int(kv.get("nr_throttled", 0)), int(kv.get("throttled_usec", 0)) / 1e6

    def teardown(self):
        if not os.path.isdir(self.root):
            return
        for m in os.listdir(self.root):
            d = os.path.join(self.root, m)
            if not os.path.isdir(d):
                continue
            for _ in range(50):
                try:
                    pids = open(os.path.join(d, "cgroup.procs")).read().split()
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.1)
            try:
                os.rmdir(d)
            except OSError as e:
                print(f"emucluster: could not remove cgroup {d}: {e}", file=sys.stderr)
        try:
            os.rmdir(self.root)
        except OSError as e:
            print(f"emucluster: could not remove cgroup {self.root}: {e}", file=sys.stderr)


# ---------------------------------------------------------------- network (namespaces, bridge, tbf)

def net_teardown():
    teardown_namespaces([name for name, _ in [*MACHINES, (SW, None)]], P)


def tbf(rate_bps):
    burst = max(128 * 1024, int(rate_bps / 8 * 0.005))   # 5 ms at the rate, at least 128 KiB (GSO frames)
    return ["tbf", "rate", f"{int(rate_bps)}bit", "burst", str(burst), "latency", "100ms"]


# The queue behind each link's tbf: pfifo_fast (the default, --queue prio), Linux's classic
# default queueing discipline and this host's net.core.default_qdisc: three bands by the
# socket's priority, so packets a program marks latency-sensitive (SO_PRIORITY 6) leave before
# bulk data queued on the same interface, as on a host with its default queueing (fq_codel,
# Debian's systemd default, also lets a small flow pass a bulk one). --queue fifo keeps tbf's
# own single FIFO (the rig up to 2026-12-07): everything waits behind everything queued.
QUEUE = "prio"


def shape(run_in, dev, rate_bps):
    """tbf at the rate on `dev` (inside namespace `run_in`), with the --queue discipline under it."""
    if QUEUE == "fifo":
        sh(*ns(run_in, "tc", "qdisc", "add", "dev", dev, "root", *tbf(rate_bps)))
        return
    # pfifo_fast holds txqueuelen packets: 100 ms at the rate in full-size frames, as tbf's limit.
    sh(*ns(run_in, "ip", "link", "set", dev, "txqueuelen", str(max(100, int(rate_bps / 8 * 0.1 / 1514)))))
    sh(*ns(run_in, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", *tbf(rate_bps)))
    sh(*ns(run_in, "tc", "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", "pfifo_fast"))


def net_setup(n_workers, rate_bps):
    net_teardown()
    sh("ip", "netns", "add", SW)
    sh(*ns(SW, "ip", "link", "add", "name", "br0", "type", "bridge"))
    sh(*ns(SW, "ip", "link", "set", "br0", "up"))
    for i, (name, addr) in enumerate([COORD, *WORKERS[:n_workers]]):
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", f"{P}-h{i}", "type", "veth", "peer", "name", f"{P}-s{i}")
        sh("ip", "link", "set", f"{P}-h{i}", "netns", name)
        sh("ip", "link", "set", f"{P}-s{i}", "netns", SW)
        sh(*ns(name, "ip", "link", "set", f"{P}-h{i}", "name", "eth0"))
        sh(*ns(name, "ip", "addr", "add", f"{addr}/24", "dev", "eth0"))
        sh(*ns(name, "ip", "link", "set", "eth0", "up"))
        sh(*ns(name, "ip", "link", "set", "lo", "up"))
        shape(name, "eth0", rate_bps)
        sh(*ns(SW, "ip", "link", "set", f"{P}-s{i}", "master", "br0"))
        shape(SW, f"{P}-s{i}", rate_bps)
        sh(*ns(SW, "ip", "link", "set", f"{P}-s{i}", "up"))


def port_rx_bytes():
    """Bytes each machine has sent (its switch port's receive counter), by port index (0 = coordinator)."""
    out = json.loads(sh(*ns(SW, "ip", "-j", "-s", "link", "show")).stdout)
    got = {}
    for link in out:
        m = re.fullmatch(rf"{P}-s(\d+)", link.get("ifname", ""))
        if m:
            got[int(m.group(1))] = link["stats64"]["rx"]["bytes"]
    return got


CLEANUP_DONE = False


def cleanup(cg):
    global CLEANUP_DONE
    if CLEANUP_DONE:
        return
    CLEANUP_DONE = True
    net_teardown()
    if cg is not None:
        cg.teardown()


# ---------------------------------------------------------------- one run

# Each machine's processes on one CPU (--pin, the default): a 1-core machine's threads share
# one core. Unpinned, a worker's threads (training, ring senders) spread over the host's CPUs,
# and CFS bandwidth control hands each CPU's run queue a slice of the group's quota
# (sched_cfs_bandwidth_slice_us, 5 ms here, more than a 1 ms quota): a thread woken on the other
# CPU finds the pool empty and waits for the next period although its machine has budget left.
PIN = True


def cpu_of(group):
    """The CPU of a machine (worker k: k mod CPUs; the coordinator: the last CPU)."""
    ncpu = os.cpu_count() or 1
    if group == COORD[0]:
        return ncpu - 1
    for prefix in (f"{P}-w", f"{P}-b"):
        if group.startswith(prefix) and group[len(prefix):].isdigit():
            return int(group[len(prefix):]) % ncpu
    return 0


def pinned(group, argv):
    return ["taskset", "-c", str(cpu_of(group)), *argv] if PIN else list(argv)


def launch(cg, machine, argv, env, stdout, stderr, group=None):
    """argv started inside `machine`'s namespace and the cgroup `group` (default: the machine's;
    moved there before it execs), on the group's CPU with --pin."""
    wrapper = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs(group or machine), *pinned(group or machine, argv)]
    return subprocess.Popen(ns(machine, *wrapper), env=env, stdout=stdout, stderr=stderr, text=True)


def start_ballast(cg, count, first=0):
    """`count` busy loops, each in a ballast cgroup with a worker's budget: the host stays as loaded
    whatever N is (N + ballast = the sweep's largest N), so an idle host's wake-up and frequency
    effects do not flatter or penalise the small-N runs. Ballast i stands for worker first + i
    (its CPU with --pin)."""
    return [subprocess.Popen(["sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs(f"{P}-b{i}"),
                              *pinned(f"{P}-b{first + i}", ["sh", "-c", "while :; do :; done"])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(count)]


def stop_ballast(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


class Stamps:
    """Reads a process's stdout; stamps every JSON line; snapshots the byte counters at the
    warm-up boundary and at the last line."""

    def __init__(self, proc, warmup, total):
        self.proc, self.warmup, self.total = proc, warmup, total
        self.stamps, self.lines, self.counters = [], [], {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            self.stamps.append(time.monotonic())
            self.lines.append(line)
            k = len(self.stamps)
            if k == self.warmup + 1 or k == self.total:
                try:
                    self.counters[k] = (time.monotonic(), port_rx_bytes())
                except Exception:   # noqa: BLE001 - a missing counter leaves the bytes blank
                    pass


def host_of(r, per_host):
    """The machine (namespace, address) worker r runs on: per_host workers a machine, ranks
    consecutive (the hierarchical all-reduce's layout)."""
    return WORKERS[r // per_host]


def summarise(st, n, global_batch, per_host=1):
    gaps = [b - a for a, b in zip(st.stamps, st.stamps[1:])]
    warm = gaps[st.warmup:] if len(gaps) > st.warmup else []
    step = statistics.median(warm) if warm else float("nan")
    r = {"step_s": step, "images_per_s": global_batch / step if warm else float("nan"),
         "steps_measured": len(warm), "step_p90_s": sorted(warm)[int(0.9 * (len(warm) - 1))] if warm else float("nan")}
    a, b = st.counters.get(st.warmup + 1), st.counters.get(st.total)
    if a and b and st.total > st.warmup + 1:
        steps = st.total - st.warmup - 1
        sent = [(b[1].get(i + 1, 0) - a[1].get(i + 1, 0)) / steps for i in range(max(1, n // per_host))]
        # A machine's link carries its workers' traffic: per worker, the machine's share.
        r["tx_mb_per_worker_step"] = statistics.mean(sent) / per_host / 1e6
        r["coord_tx_mb_per_step"] = (b[1].get(0, 0) - a[1].get(0, 0)) / steps / 1e6
    return r


def ring_account(logs):
    """Means over the ranks of what gan-worker logs at exit about its ring (per step)."""
    keys = {"blocked_ms": r"blocked ([0-9.]+) ms", "gradient_allreduce_ms": r"gradient all-reduce\(s\) ([0-9.]+) ms",
            "statistics_allreduce_ms": r"statistics all-reduce\(s\) ([0-9.]+) ms",
            "statistics_allreduces_per_step": r"([0-9.]+) statistics all-reduce", "ring_mb_sent": r"([0-9.]+) MB sent",
            "codec_ms": r"; codec ([0-9.]+) ms"}
    vals = {k: [] for k in keys}
    places = {"statistics_ms_by_place": [], "compute_ms_before_place": []}
    for path in logs:
        try:
            text = open(path, errors="replace").read()
        except OSError:
            continue
        all_lines = text.splitlines()
        lines = [line for line in all_lines if "ring, per step" in line]
        if not lines:
            continue
        for k, pat in keys.items():
            m = re.search(pat, lines[-1])
            if m:
                vals[k].append(float(m.group(1)))
        # Since 2026-12-08: SyncBatchNorm's collectives by their place in a step (Ring.statisticsByPlace).
        by = [line for line in all_lines if "statistics all-reduces by place" in line]
        m = re.search(r"ms each took: ([0-9. ]+); ms before each, since the one before ended: ([0-9. ]+)", by[-1]) if by else None
        if m:
            places["statistics_ms_by_place"].append([float(x) for x in m.group(1).split()])
            places["compute_ms_before_place"].append([float(x) for x in m.group(2).split()])
    out = {k: statistics.mean(v) for k, v in vals.items() if v}
    for k, lists in places.items():
        # Means over the ranks, place by place (every rank has the same places).
        if lists and all(len(x) == len(lists[0]) for x in lists):
            out[k] = [round(statistics.mean(col), 2) for col in zip(*lists)]
    return out


def run_ringgan(cg, a, model, mode, n, work, port, tag, flags=()):
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(token, 0o600)
    gb = n * a.batch if mode == "weak" else a.batch
    total = a.warmup + a.steps + 1
    logdir = os.path.join(work, "logs", tag)
    os.makedirs(logdir, exist_ok=True)
    env = dict(os.environ, RINGGAN_THREADS="1", OPENBLAS_NUM_THREADS="1")
    coord_log = open(os.path.join(logdir, "coordinator.log"), "w")
    coord = launch(cg, COORD[0], [f"{BIN}/gan-coordinator", "--workers", str(n), "--host", COORD[1], "--port", str(port),
                                  "--token-file", token, "--runs-dir", os.path.join(work, "runs"), "--name", tag,
                                  "--data", a.data, *MODELS[model][0], "--batch", str(gb), "--steps", str(total),
                                  "--codec", a.codec, "--sample-every", "0", "--checkpoint-every", "0", "--json",
                                  "--rendezvous-timeout", "300", "--dead-after", "120", *shlex.split(a.ringgan_flags), *flags],
                   env, subprocess.PIPE, coord_log)
    st = Stamps(coord, a.warmup, total)
    time.sleep(0.3)
    workers, logs = [], []
    for r in range(n):
        name, addr = host_of(r, a.per_host)
        logs.append(os.path.join(logdir, f"rank{r}.log"))
        workers.append(launch(cg, name, [f"{BIN}/gan-worker", "--rank", str(r), "--coordinator", f"{COORD[1]}:{port}",
                                         "--token-file", token, "--advertise", addr, "--connect-timeout", "300",
                                         "--rejoin-timeout", "0"],
                              env, subprocess.DEVNULL, open(logs[-1], "w"), group=WORKERS[r][0]))
    try:
        rc = coord.wait(timeout=a.run_timeout)
        for w in workers:
            w.wait(timeout=120)
    except subprocess.TimeoutExpired:
        for p in [coord, *workers]:
            p.kill()
        raise RuntimeError(f"RingGAN {tag} ran past {a.run_timeout} s (logs in {logdir})")
    st.thread.join(timeout=10)
    if rc != 0:
        raise RuntimeError(f"gan-coordinator {tag} failed ({rc}); logs in {logdir}")
    out = summarise(st, n, gb, a.per_host)
    out.update(ring_account(logs))
    if a.per_host > 1:
        said = open(os.path.join(logdir, "coordinator.log"), errors="replace").read()
        out["by_host"] = "gradients reduced by host" in said
    try:
        js = [json.loads(line) for line in st.lines[a.warmup + 1:]]
        out["compression_ratio"] = statistics.median(j["compression_ratio"] for j in js if "compression_ratio" in j)
    except (ValueError, KeyError, statistics.StatisticsError):
        pass
    return out


def run_torch(cg, a, model, mode, n, work, port, tag):
    total = a.warmup + a.steps + 1
    logdir = os.path.join(work, "logs", tag)
    os.makedirs(logdir, exist_ok=True)
    b = a.batch if mode == "weak" else None
    gb = n * a.batch if mode == "weak" else a.batch
    if mode == "strong" and a.batch % n:
        raise RuntimeError(f"strong scaling: batch {a.batch} does not divide by {n}")
    procs = []
    for r in range(n):
        name, addr = host_of(r, a.per_host)
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(n), MASTER_ADDR=WORKERS[0][1], MASTER_PORT=str(port),
                   GLOO_SOCKET_IFNAME="eth0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        argv = [sys.executable, os.path.join(ROOT, "bench", "torch_ddp_gan.py"), "--steps", str(total), "--threads", "1",
                "--data", a.data, *MODELS[model][1], "--batch", str(gb)]
        if b:
            argv += ["--per-rank-batch", str(b)]
        procs.append(launch(cg, name, argv, env, subprocess.PIPE if r == 0 else subprocess.DEVNULL,
                            open(os.path.join(logdir, f"rank{r}.log"), "w"), group=WORKERS[r][0]))
    st = Stamps(procs[0], a.warmup, total)
    try:
        rcs = [p.wait(timeout=a.run_timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise RuntimeError(f"DDP {tag} ran past {a.run_timeout} s (logs in {logdir})")
    st.thread.join(timeout=10)
    if any(rcs):
        raise RuntimeError(f"torch_ddp_gan.py {tag} failed ({rcs}); logs in {logdir}")
    return summarise(st, n, gb, a.per_host)


# ---------------------------------------------------------------- output

def rate_bps(text):
    m = re.fullmatch(r"([0-9.]+)\s*([kmg]?)(bit|bps)?", text.strip().lower())
    if not m:
        sys.exit(f"emucluster: cannot read the rate '{text}' (e.g. 1gbit, 10gbit, 200mbit)")
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]


def human_rate(bps):
    return f"{bps / 1e9:g} Gbit/s" if bps >= 1e9 else f"{bps / 1e6:g} Mbit/s"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


KEY = ("model", "mode", "link_equiv", "core", "period_us", "workers", "side")
MEDIANS = ("step_s", "step_p90_s", "tx_mb_per_worker_step", "coord_tx_mb_per_step", "blocked_ms", "gradient_allreduce_ms",
           "statistics_allreduce_ms", "codec_ms", "compression_ratio", "worker_throttles_per_s")


def merge_rounds(runs):
    """One row per configuration: the median over its rounds (step_s_rounds keeps every round's)."""
    out = {}
    for r in runs:
        out.setdefault(tuple(r[k] for k in KEY), []).append(r)
    rows = []
    for group in out.values():
        ok = [r for r in group if "step_s" in r]
        m = dict(group[0])
        m.pop("round", None)
        m["rounds"] = len(group)
        if ok:
            m.pop("error", None)
            for k in MEDIANS:
                vals = [r[k] for r in ok if k in r]
                if vals:
                    m[k] = statistics.median(vals)
            m["step_s_rounds"] = [r["step_s"] for r in ok]
            m["images_per_s"] = m["global_batch"] / m["step_s"]
        rows.append(m)
    return rows


def add_efficiency(rows):
    for r in rows:
        base = next((x for x in rows if x["side"] == r["side"] and x["workers"] == 1 and all(
            x[k] == r[k] for k in ("model", "mode", "link_equiv", "core", "period_us"))), None)
        if base and base.get("images_per_s") and r.get("images_per_s"):
            r["efficiency"] = r["images_per_s"] / (r["workers"] * base["images_per_s"])


def fmt(v, spec, blank="-"):
    return blank if v is None or v != v else format(v, spec)


def table(rows):
    head = ["model", "mode", "link (equiv.)", "core", "period", "N", "side", "step ms (rounds' range)", "images/s", "E(N)",
            "MB sent / worker / step", "blocked ms", "all-reduce ms (grad + stats (codec))", "vs DDP"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ddp = next((x for x in rows if x["side"] == "DDP gloo" and all(
            x[k] == r[k] for k in ("model", "mode", "link_equiv", "core", "period_us", "workers"))), None)
        # A failed configuration (no step_s) is a row of dashes with its error, not a crash that loses the sweep.
        vs = f"{r['step_s'] / ddp['step_s']:.2f}x" if ddp and r is not ddp and ddp.get("step_s") and r.get("step_s") else "-"
        ar = (f"{r['gradient_allreduce_ms']:.0f} + {r.get('statistics_allreduce_ms', float('nan')):.0f}"
              + (f" ({r['codec_ms']:.0f})" if "codec_ms" in r else "")
              if "gradient_allreduce_ms" in r else "-")
        lines.append("| " + " | ".join([
            r["model"], r["mode"], f"{human_rate(r['link_equiv_bps'])}"
            + (f", {r['machine_cores']}-core machines" if r.get("machine_cores", 1) > 1 else "")
            + f" ({human_rate(r['rate_bps'])})", f"{r['core']:g}",
            f"{r['period_us'] / 1000:g} ms",
            str(r["workers"]) + (f" ({r['workers'] // r['per_host']} x {r['per_host']})" if r.get("per_host", 1) > 1 else ""),
            r["side"] + (f" (failed: {r['error'][:120]})" if "error" in r and "step_s" not in r else ""),
            fmt(r.get("step_s", float("nan")) * 1000, ".0f")
            + (f" ({min(r['step_s_rounds']) * 1000:.0f}-{max(r['step_s_rounds']) * 1000:.0f})" if len(r.get("step_s_rounds", [])) > 1 else ""),
            fmt(r.get("images_per_s"), ".1f"), fmt(r.get("efficiency"), ".2f"), fmt(r.get("tx_mb_per_worker_step"), ".2f"),
            fmt(r.get("blocked_ms"), ".0f"), ar, vs]) + " |")
    return "\n".join(lines)


def plots(rows, outdir, suffix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    made = []
    combos = sorted({(r["model"], r["mode"], r["link_equiv"], r["core"], r["period_us"]) for r in rows})
    many = len({(c[3], c[4]) for c in combos}) > 1
    for model, mode, link, core, period in combos:
        sel = [r for r in rows if (r["model"], r["mode"], r["link_equiv"], r["core"], r["period_us"]) == (model, mode, link, core, period)]
        if len({r["workers"] for r in sel}) < 2:
            continue
        if not any(r["workers"] == 1 and "step_s" in r for r in sel):
            # E(N) needs the sweep's own N = 1 (a run of larger N alone borrows it in docs/SCALING.md).
            print(f"emucluster: no plot of {model} {mode} {link} at {core:g} core: the sweep has no N = 1", flush=True)
            continue
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for side, style in (("RingGAN", "o-"), ("DDP gloo", "s--")):
            pts = sorted((r["workers"], r) for r in sel if r["side"].startswith(side) and r.get("step_s") == r.get("step_s"))
            if not pts:
                continue
            ns_ = [p[0] for p in pts]
            ax1.plot(ns_, [p[1].get("efficiency", float("nan")) for p in pts], style, label=pts[0][1]["side"])
            ax2.plot(ns_, [p[1]["step_s"] for p in pts], style, label=pts[0][1]["side"])
        ns_all = sorted({r["workers"] for r in sel})
        ax1.axhline(1.0, color="grey", lw=0.8)
        ax1.set(xscale="log", xlabel="workers N", ylabel="E(N) = thr(N) / (N thr(1))", ylim=(0, 1.1), title="scaling efficiency")
        ax2.set(xscale="log", xlabel="workers N", ylabel="median step time (s, dilated)", title="step time")
        ax2.set_ylim(bottom=0)
        for ax in (ax1, ax2):
            ax.set_xticks(ns_all)
            ax.set_xticklabels([str(v) for v in ns_all])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.grid(alpha=0.3)
            ax.legend()
        equiv = human_rate(rate_bps(link))
        mc = sel[0].get("machine_cores", 1)
        fig.suptitle(f"{model}, {mode} scaling, {mc}-core machines on {equiv} (emulated: {core:g} core, "
                     f"{human_rate(sel[0]['rate_bps'])}, cgroup period {period / 1000:g} ms); DDP with plain BN", fontsize=9)
        fig.tight_layout()
        name = (f"emucluster-{model}-{mode}-{link}" + (f"-{mc}core-machines" if mc > 1 else "") + f"-core{core:g}"
                + (f"-p{period // 1000}ms" if many else "") + suffix + ".png")
        path = os.path.join(outdir, name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


# ---------------------------------------------------------------- main

def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,4,8", help="comma-separated N (1..16)")
    ap.add_argument("--core", default=None, help="fraction of a core per worker, or a comma list (default: N_max x core + "
                                                  "--coord-core <= 1.8, rounded down to 0.05: 0.2 up to 8 workers, 0.1 at 16)")
    ap.add_argument("--coord-core", type=float, default=0.2, help="the coordinator machine's fraction of a core")
    ap.add_argument("--link-equiv", default="1gbit", help="comma list of the link each emulated machine stands for; the rate set is this x core / --machine-cores")
    ap.add_argument("--machine-cores", type=int, default=1,
                    help="the cores of the machine each worker stands for (its compute per step that many times shorter "
                         "than one core's): the link's rate is divided by it (default 1)")
    ap.add_argument("--models", default="dcgan32", help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--mode", default="weak", help="weak (per-worker batch fixed), strong (global batch fixed), or both")
    ap.add_argument("--batch", type=int, default=64, help="weak: images per worker; strong: the global batch")
    ap.add_argument("--steps", type=int, default=25, help="steps measured after the warm-up")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="run every configuration this many times, taking turns; report the medians")
    ap.add_argument("--period-us", default="2000", help="cgroup cpu period(s) in microseconds, comma list (raised where the 1 ms minimum quota needs it)")
    ap.add_argument("--codec", default="shuffle-zstd", help="RingGAN's gradient codec (default: the lossless shuffle-zstd)")
    ap.add_argument("--ringgan-flags", default="", help="more training flags for RingGAN's coordinator (e.g. '--exact')")
    ap.add_argument("--per-host", type=int, default=1,
                    help="workers per machine (each with its own CPU budget; the machine's namespace and link shared; ranks "
                         "consecutive): above 1, RingGAN runs twice, gradients by host (--hierarchy auto) and round the flat ring "
                         "(--hierarchy off); every N must divide by it")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--queue", choices=["prio", "fifo"], default="prio",
                    help="the queue under each link's tbf: prio (pfifo_fast: a socket marked latency-sensitive"
                         " goes first, as on a host's default queueing) or fifo (tbf's single FIFO)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="let each machine's threads run on any CPU (default: each machine pinned to one CPU,"
                         " worker k to CPU k mod CPUs, the coordinator to the last)")
    ap.add_argument("--no-ballast", dest="ballast", action="store_false",
                    help="do not fill the budgets of the absent workers (N_max - N) with busy loops")
    ap.add_argument("--no-ringgan", action="store_true")
    ap.add_argument("--json", default=None, help="write every row here")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist-5k"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--section", default=None, help="the RESULTS.md section's title (default: from the sweep)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--images", default=os.path.join(ROOT, "docs", "images"))
    ap.add_argument("--run-timeout", type=float, default=900, help="seconds one configuration may take")
    ap.add_argument("--bin", default=BIN, help="folder of gan-coordinator and gan-worker (default: .build/release)")
    ap.add_argument("--cleanup", action="store_true", help="only remove what a previous run left behind")
    ap.add_argument("--replot", nargs="+", metavar="JSON",
                    help="only draw the plots of earlier sweeps (their --json files) into --images, named with --plot-suffix")
    ap.add_argument("--plot-suffix", default="", help="with --replot: appended to each plot's name")
    a = ap.parse_args()
    if a.replot:
        os.makedirs(a.images, exist_ok=True)
        for path in a.replot:
            for made in plots(json.load(open(path))["rows"], a.images, a.plot_suffix):
                print(made)
        return
    global PIN, QUEUE
    PIN, QUEUE = a.pin, a.queue
    if os.geteuid() != 0:
        sys.exit("emucluster: needs root (network namespaces, tc, cgroups)")
    cg = CGroups()
    if a.cleanup:
        cleanup(cg)
        return
    BIN = os.path.abspath(a.bin)
    ns_list = sorted({int(x) for x in a.workers.split(",")})
    if not ns_list or ns_list[0] < 1 or ns_list[-1] > MAX_WORKERS:
        sys.exit(f"emucluster: --workers must be within 1..{MAX_WORKERS}")
    if a.per_host < 1 or any(n % a.per_host for n in ns_list):
        sys.exit(f"emucluster: every --workers N must be a multiple of --per-host {a.per_host}")
    models = a.models.split(",")
    for m in models:
        if m not in MODELS:
            sys.exit(f"emucluster: unknown model {m} (one of {', '.join(MODELS)})")
    modes = a.mode.split(",")
    if any(m not in ("weak", "strong") for m in modes):
        sys.exit("emucluster: --mode is weak, strong or weak,strong")
    cores = ([float(c) for c in a.core.split(",")] if a.core else
             [min(1.0, int((1.8 - a.coord_core) / ns_list[-1] * 20 + 1e-9) / 20)])
    for c in cores:
        total = c * ns_list[-1] + a.coord_core
        if c <= 0 or c > 1:
            sys.exit("emucluster: --core must be in (0, 1]")
        if total > os.cpu_count() + 1e-9:
            sys.exit(f"emucluster: {ns_list[-1]} x {c} + {a.coord_core} = {total:g} cores is more than this machine's {os.cpu_count()}")
    periods = [int(p) for p in a.period_us.split(",")]
    links = a.link_equiv.split(",")
    for exe in ("gan-coordinator", "gan-worker"):
        if not a.no_ringgan and not os.path.exists(f"{BIN}/{exe}"):
            sys.exit(f"emucluster: {BIN}/{exe} missing: swift build -c release first (bench/emucluster.sh does)")

    def on_signal(sig, _frame):
        cleanup(cg)
        sys.exit(128 + sig)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    work = tempfile.mkdtemp(prefix="ringgan-emu-")
    rows = []
    cpu = cpu_model()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"emucluster: {cpu}, {os.cpu_count()} cores; logs in {work}", flush=True)
    print("emucluster: no link delay is added (this kernel has no netem): bandwidth-limited links, "
          "veth latency", flush=True)
    print("emucluster: DDP uses plain BatchNorm (per-rank statistics; DDP cannot synchronise BatchNorm on a CPU); "
          "RingGAN synchronises it exactly", flush=True)
    port = 29500
    try:
        cleanup_leftovers = True
        for link in links:
            for core in cores:
                rate = rate_bps(link) * core / a.machine_cores
                if cleanup_leftovers:
                    cg.teardown()
                    cleanup_leftovers = False
                net_setup(ns_list[-1] // a.per_host, rate)
                for period in periods:
                    fr = {COORD[0]: a.coord_core, **{w: core for w, _ in WORKERS[:ns_list[-1]]},
                          **{f"{P}-b{i}": core for i in range(ns_list[-1] - 1)}}
                    used = cg.setup(list(fr), fr.get, period)
                    wp, cp = used[WORKERS[0][0]], used[COORD[0]]
                    print(f"\n== link {human_rate(rate_bps(link))} equivalent: each worker {core:g} core (cgroup v{cg.version}, "
                          f"period {wp / 1000:g} ms, quota {core * wp / 1000:g} ms"
                          + (f"; asked {period / 1000:g} ms, the 1 ms minimum quota needs {wp / 1000:g}" if wp != period else "")
                          + f"), link {human_rate(rate)} (tbf both ends); coordinator {a.coord_core:g} core (period {cp / 1000:g} ms), "
                          f"same link", flush=True)
                    mc = a.machine_cores
                    print(f"   time dilation: each worker stands for a {mc}-core machine on {human_rate(rate_bps(link))} "
                          f"(compute and wire {mc / core:g}x slower); e.g. {ns_list[-1]} workers at {core:g} core on "
                          f"{human_rate(rate)} = {ns_list[-1]} {mc}-core machines on {human_rate(rate_bps(link))}", flush=True)
                    for rnd in range(a.rounds):
                        for model in models:
                            for mode in modes:
                                for n in ns_list:
                                    sides = ([] if a.no_ringgan else ["RingGAN"] + (["RingGAN flat"] if a.per_host > 1 else []))\
                                        + ([] if a.no_torch else ["DDP gloo"])
                                    for side in sides:
                                        if mode == "strong" and a.batch % n:
                                            continue
                                        port += 1
                                        tag = f"{side.replace(' ', '-').lower()}-{model}-{mode}-{link}-c{core:g}-p{wp}-n{n}-r{rnd + 1}"
                                        t0 = time.time()
                                        row = {"model": model, "mode": mode, "link_equiv": link, "link_equiv_bps": rate_bps(link),
                                               "rate_bps": rate, "machine_cores": a.machine_cores, "core": core, "period_us": wp, "coord_core": a.coord_core,
                                               "workers": n, "batch_per_worker": a.batch if mode == "weak" else a.batch / n,
                                               "global_batch": n * a.batch if mode == "weak" else a.batch,
                                               "per_host": a.per_host,
                                               "side": (f"RingGAN {a.codec}" + (" by host" if a.per_host > 1 else "")) if side == "RingGAN"
                                               else f"RingGAN {a.codec} flat" if side == "RingGAN flat" else side, "round": rnd + 1}
                                        try:
                                            thr0 = [cg.throttled(m) for m in [COORD[0], *(w for w, _ in WORKERS[:n])]]
                                            ballast = start_ballast(cg, ns_list[-1] - n if a.ballast else 0, first=n)
                                            try:
                                                if side == "DDP gloo":
                                                    r = run_torch(cg, a, model, mode, n, work, port, tag)
                                                else:
                                                    r = run_ringgan(cg, a, model, mode, n, work, port, tag,
                                                                    ["--hierarchy", "off"] if side == "RingGAN flat" else [])
                                            finally:
                                                stop_ballast(ballast)
                                            row["ballast"] = len(ballast)
                                            thr1 = [cg.throttled(m) for m in [COORD[0], *(w for w, _ in WORKERS[:n])]]
                                            r["worker_throttles_per_s"] = statistics.mean(
                                                (y[0] - x[0]) for x, y in zip(thr0[1:], thr1[1:])) / max(1e-9, time.time() - t0)
                                            row.update(r)
                                        except RuntimeError as e:
                                            row["error"] = str(e)
                                            print(f"   {side} N={n}: FAILED: {e}", flush=True)
                                        row["wall_s"] = time.time() - t0
                                        rows.append(row)
                                        if "step_s" in row:
                                            print(f"   {'round ' + str(rnd + 1) + ': ' if a.rounds > 1 else ''}{model} {mode} N={n:2d} {row['side']:24s} step {row['step_s'] * 1000:7.0f} ms  "
                                                  f"{row['images_per_s']:7.1f} img/s  sent {fmt(row.get('tx_mb_per_worker_step'), '.2f')} MB/worker/step"
                                                  + (f"  blocked {row['blocked_ms']:.0f} ms" if "blocked_ms" in row else "")
                                                  + f"  ({row['wall_s']:.0f} s)", flush=True)
                                            if "statistics_ms_by_place" in row:
                                                print("      statistics all-reduces by place in a step, ms each took (mean over ranks): "
                                                      + " ".join(f"{x:.0f}" for x in row["statistics_ms_by_place"])
                                                      + "; ms of compute before each: "
                                                      + " ".join(f"{x:.0f}" for x in row["compute_ms_before_place"]), flush=True)
                net_teardown()
    finally:
        cleanup(cg)
    runs = rows
    rows = merge_rounds(runs)
    add_efficiency(rows)
    tab = table(rows)
    print("\n" + tab)
    title = a.section or (f"{', '.join(models)}, {' and '.join(modes)} scaling, "
                          + (f"{a.per_host} workers a machine, " if a.per_host > 1 else "") + 
                          f"{' and '.join(human_rate(rate_bps(x)) for x in links)} equivalent"
                          + (f", {a.machine_cores}-core machines" if a.machine_cores > 1 else ""))
    notes = (f"{started}, {cpu} ({os.cpu_count()} cores), `bash bench/emucluster.sh {' '.join(sys.argv[1:])}`. "
             f"Every worker and the coordinator is a machine: its own network namespace, a veth to a bridge, tc tbf at the rate "
             f"on both ends (no delay added: this kernel has no netem) over "
             + ("pfifo_fast (sockets marked latency-sensitive first)" if QUEUE == "prio" else "a single FIFO")
             + f", and its own cgroup CPU budget (cgroup v{cg.version}; the coordinator {a.coord_core:g} core)"
             + ("; each machine pinned to one CPU. " if PIN else "; machines not pinned to a CPU. ")
             + (f"{a.per_host} workers a machine: each worker its own CPU budget, the machine's namespace and link shared by its "
                f"workers (ranks consecutive); RingGAN ran with gradients by host (--hierarchy auto: summed on the machine, one ring "
                f"between machines) and round the flat ring (--hierarchy off); MB sent is the machine's link's bytes over its "
                f"workers. " if a.per_host > 1 else "") + (f"Time dilation: a worker at c core on a link of "
             f"R x c stands for a 1-core machine on R (the link column: the equivalent, and in brackets the rate set). "
             if a.machine_cores == 1 else f"Time dilation: a worker at c core on a link of R x c / {a.machine_cores} stands "
             f"for a {a.machine_cores}-core machine (compute per step {a.machine_cores}x shorter than one core's) on R (the link "
             f"column: the equivalent, and in brackets the rate set). ")
             + f"Weak scaling: {a.batch} images per worker; strong: global batch {a.batch} split N ways. Median step after "
             f"{a.warmup} warm-up steps of {a.warmup + a.steps + 1}" + (f", then the median of {a.rounds} rounds taking turns (the "
             f"rounds' medians in the JSON)" if a.rounds > 1 else "") + f"; E(N) = images/s(N) / (N x images/s(1)); MB sent: each worker's "
             f"transmitted bytes per steady-state step. " + (f"Below the largest N, N_max - N ballast busy loops, each at a worker's budget in a cgroup of its own, keep the host "
             f"equally loaded (--no-ballast: none). " if a.ballast else "Without ballast (--no-ballast): the host is less loaded at small N. ")
             + f"RingGAN: one engine thread per worker, codec {a.codec}; \"blocked\": time the "
             f"training thread waited on the ring per step and \"all-reduce\": the collective thread's gradient and statistics "
             f"all-reduce time per step (means over ranks and the whole run, warm-up included, from each gan-worker's log; "
             f"in brackets the codec's encoding and decoding inside the gradient time, where the build reports it; compute is step - "
             f"blocked). DDP: torch_ddp_gan.py, gloo, one thread "
             f"per rank, plain BatchNorm (per-rank statistics: DDP cannot synchronise BatchNorm on a CPU)."
             + (f" RingGAN binaries from {BIN}." if BIN != os.path.join(ROOT, ".build", "release") else ""))
    section = f"## Emulated cluster: {title}\n\n{notes}\n\n{tab}\n"
    images = []
    if not a.no_plots and rows:
        try:
            os.makedirs(a.images, exist_ok=True)
            # A codec other than the default names its plots, so an earlier sweep's are kept.
            images = plots(rows, a.images, ("" if a.codec == "shuffle-zstd" else f"-{a.codec}")
                           + (f"-{a.per_host}-per-host" if a.per_host > 1 else ""))
        except ImportError:
            print("emucluster: matplotlib missing: no plots", file=sys.stderr)
    if images:
        section += "\n" + "\n".join(f"![]({os.path.relpath(p, os.path.dirname(os.path.abspath(a.results)))})" for p in images) + "\n"
    replace_section(a.results, f"## Emulated cluster: {title}\n", section)
    print(f"\nwrote the section \"Emulated cluster: {title}\" of {a.results}" + (f"; plots: {', '.join(images)}" if images else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": started, "cpu": cpu, "argv": sys.argv[1:], "rows": rows, "runs": runs}, f, indent=1)
        print(f"wrote {a.json}")
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
