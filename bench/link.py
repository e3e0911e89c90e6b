#!/usr/bin/env python3
"""Distributed training on a real (shaped) link: a coordinator and 4 workers, each in its own
network namespace, joined by a bridge; every host's interface sends at most `--rate` (tc tbf,
default 1 Gbit/s, like a 1 GbE NIC). Side by side on the same namespaces and link:

  - RingGAN: gan-coordinator + 4 gan-workers (one thread each), DCGAN 32x32, global batch 64
    (16 per rank), once per gradient codec;
  - PyTorch: the tutorial's DCGAN loop under DDP with gloo (bench/torch_ddp_gan.py), 4 ranks in
    the workers' namespaces, same per-rank batch.

For each: the median step time after warm-up (from the time between the per-step lines the
coordinator / rank 0 prints), global images/s, and the bytes each worker sent per step (its
interface's transmit counter, so both sides are counted the same way; RingGAN's coordinator
traffic to the workers is not in it, nor gloo's rendezvous). Needs root (namespaces, tc).

  sudo python3 bench/link.py [--steps 30] [--rate 1gbit] [--codecs none,shuffle-zstd,bf16-shuffle-zstd]
                             [--buckets 4,0] [--rounds 1] [--workers 4] [--no-torch] [--results bench/RESULTS.md]
                             [--baseline DIR]

--buckets: the gradient bucket sizes in MB to run RingGAN with (RINGGAN_BUCKET_MB: a bucket's
all-reduce starts during backward as soon as its gradients are complete; 0 = one all-reduce
after backward). --rounds: every configuration runs this many times, taking turns; the medians
are reported. --workers: ranks (default 4; the global batch stays 64). --baseline DIR: every
RingGAN configuration also runs with another build's binaries (DIR holding gan-coordinator and
gan-worker), next to this build's in each round, to compare two builds side by side.

Everything lives in namespaces this script creates (prefix rglink-, addresses 10.201.0.0/24) and
removes on exit; nothing is added to the machine's own network.
"""
import argparse
import re
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns_rig import ns, sh, teardown as teardown_namespaces  # noqa: E402
from results_md import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build", "release")
P = "rglink"
SW = f"{P}-sw"
COORD = (f"{P}-c", "10.201.0.1")
ALL_WORKERS = [(f"{P}-w{i}", f"10.201.0.{10 + i}") for i in range(4)]
WORKERS = list(ALL_WORKERS)




def teardown():
    teardown_namespaces([name for name, _ in [COORD, *ALL_WORKERS, (SW, None)]], P)


def setup(rate):
    teardown()
    sh("ip", "netns", "add", SW)
    sh(*ns(SW, "ip", "link", "add", "name", "br0", "type", "bridge"))
    sh(*ns(SW, "ip", "link", "set", "br0", "up"))
    for i, (name, addr) in enumerate([COORD, *WORKERS]):
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", f"{P}-h{i}", "type", "veth", "peer", "name", f"{P}-s{i}")
        sh("ip", "link", "set", f"{P}-h{i}", "netns", name)
        sh("ip", "link", "set", f"{P}-s{i}", "netns", SW)
        sh(*ns(name, "ip", "link", "set", f"{P}-h{i}", "name", "eth0"))
        sh(*ns(name, "ip", "addr", "add", f"{addr}/24", "dev", "eth0"))
        sh(*ns(name, "ip", "link", "set", "eth0", "up"))
        sh(*ns(name, "ip", "link", "set", "lo", "up"))
        # Each host sends at most `rate` (a NIC's line rate); the bridge side is not shaped.
        sh(*ns(name, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "512kb", "latency", "100ms"))
        sh(*ns(SW, "ip", "link", "set", f"{P}-s{i}", "master", "br0"))
        sh(*ns(SW, "ip", "link", "set", f"{P}-s{i}", "up"))


def tx_bytes(name):
    out = sh(*ns(name, "ip", "-j", "-s", "link", "show", "eth0")).stdout
    return json.loads(out)[0]["stats64"]["tx"]["bytes"]


def timed_lines(proc):
    """Timestamps of the lines a process prints (one per step)."""
    stamps = []
    for line in proc.stdout:
        if line.startswith("{"):
            stamps.append(time.monotonic())
    return stamps


def summarise(stamps, steps, sent, label):
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    warm = gaps[min(3, len(gaps) - 1):] if gaps else []
    step = statistics.median(warm) if warm else float("nan")
    per_rank = [s / steps for s in sent]
    return {"side": label, "steps": steps, "step_s": step, "images_per_s": 64 / step,
            "tx_mb_per_rank_step": statistics.mean(per_rank) / 1e6}


def run_ringgan(codec, steps, work, data, bucket_mb, bin_dir=BIN, baseline=False):
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(token, 0o600)
    before = [tx_bytes(n) for n, _ in WORKERS]
    coord = subprocess.Popen(ns(COORD[0], f"{bin_dir}/gan-coordinator", "--workers", str(len(WORKERS)), "--host", COORD[1], "--port", "29500",
                                "--token-file", token, "--runs-dir", os.path.join(work, "runs"), "--name", f"link-{codec}",
                                "--data", data, "--model", "dcgan", "--image-size", "32", "--batch", "64",
                                "--steps", str(steps), "--codec", codec, "--sample-every", "0", "--checkpoint-every", "0",
                                "--json"),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.3)
    workers = []
    rank0_log = os.path.join(work, f"worker0-{codec}-{bucket_mb:g}.log")
    for r, (name, addr) in enumerate(WORKERS):
        env = dict(os.environ, RINGGAN_THREADS="1", OPENBLAS_NUM_THREADS="1", RINGGAN_BUCKET_MB=str(bucket_mb))
        workers.append(subprocess.Popen(ns(name, f"{bin_dir}/gan-worker", "--rank", str(r), "--coordinator", f"{COORD[1]}:29500",
                                           "--token-file", token, "--advertise", addr),
                                        stdout=subprocess.DEVNULL, stderr=open(rank0_log, "w") if r == 0 else subprocess.DEVNULL,
                                        env=env))
    stamps = timed_lines(coord)
    rc = coord.wait(timeout=600)
    for w in workers:
        w.wait(timeout=60)
    if rc != 0:
        sys.exit(f"link: gan-coordinator with codec {codec} failed ({rc})")
    sent = [tx_bytes(n) - b for (n, _), b in zip(WORKERS, before)]
    label = f"RingGAN {codec}, " + (f"{bucket_mb:g} MB buckets during backward" if bucket_mb > 0 else "one all-reduce after backward")
    if baseline:
        label += f" [baseline build {bin_dir}]"
    out = summarise(stamps, steps, sent, label)
    # Rank 0's account of the ring (gan-worker logs it at the end): how long the training thread
    # waited on the wire per step, and the TCP state of its link.
    with open(rank0_log) as f:
        ring = [line.split("ring, per step", 1)[1] for line in f if "ring, per step" in line]
    out["ring"] = "ring, per step" + ring[-1].rstrip() if ring else ""
    m = re.search(r"blocked ([0-9.]+) ms", out["ring"])
    out["blocked_ms"] = float(m.group(1)) if m else float("nan")
    return out


def run_torch(steps, data):
    before = [tx_bytes(n) for n, _ in WORKERS]
    procs = []
    for r, (name, addr) in enumerate(WORKERS):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(len(WORKERS)), MASTER_ADDR=WORKERS[0][1], MASTER_PORT="29600",
                   GLOO_SOCKET_IFNAME="eth0", OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(ns(name, sys.executable, os.path.join(ROOT, "bench", "torch_ddp_gan.py"),
                                         "--steps", str(steps), "--batch", "64", "--threads", "1", "--data", data),
                                      stdout=subprocess.PIPE if r == 0 else subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      text=True, env=env))
    stamps = timed_lines(procs[0])
    for p in procs:
        if p.wait(timeout=600) != 0:
            sys.exit("link: torch_ddp_gan.py failed")
    sent = [tx_bytes(n) - b for (n, _), b in zip(WORKERS, before)]
    return summarise(stamps, steps, sent, "PyTorch DDP gloo")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rate", default="1gbit")
    ap.add_argument("--codecs", default="none,shuffle-zstd,bf16-shuffle-zstd")
    ap.add_argument("--buckets", default="4,0")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, choices=range(2, 5))
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist-5k"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--baseline", metavar="DIR",
                    help="also run every RingGAN configuration with the gan-coordinator and gan-worker in DIR "
                         "(another build), taking turns with this build's in each round")
    a = ap.parse_args()
    del WORKERS[a.workers:]
    if os.geteuid() != 0:
        sys.exit("link: needs root (network namespaces, tc)")
    for exe in ("gan-coordinator", "gan-worker"):
        if not os.path.exists(f"{BIN}/{exe}"):
            sys.exit(f"link: {BIN}/{exe} missing: swift build -c release first (bench/link.sh does)")
        if a.baseline and not os.path.exists(f"{a.baseline}/{exe}"):
            sys.exit(f"link: --baseline {a.baseline}: no {exe} there")
    work = tempfile.mkdtemp(prefix="ringgan-link-")
    rows = []
    try:
        setup(a.rate)
        runs = [(codec, float(b), False) for codec in a.codecs.split(",") for b in a.buckets.split(",")]
        if a.baseline:
            runs = [run for codec, b, _ in runs for run in ((codec, b, False), (codec, b, True))]
        if not a.no_torch:
            runs.append(("torch", None, False))
        results = {}
        for rnd in range(a.rounds):
            for codec, b, base in runs:
                r = (run_torch(a.steps, a.data) if codec == "torch" else
                     run_ringgan(codec, a.steps, work, a.data, b, a.baseline if base else BIN, base))
                results.setdefault((codec, b, base), []).append(r)
                print(f"round {rnd + 1}: {r['side']:58s} step {r['step_s'] * 1000:7.1f} ms  {r['images_per_s']:6.1f} img/s  "
                      f"sent {r['tx_mb_per_rank_step']:.2f} MB per rank per step", flush=True)
                if r.get("ring"):
                    print(f"    rank 0: {r['ring']}", flush=True)
            if not a.no_torch:
                ddp_step = results[("torch", None, False)][-1]["step_s"]
                print(f"round {rnd + 1}: step time vs DDP in this round: "
                      + ", ".join(f"{k[0]}{' b' + format(k[1], 'g') if k[1] else ''}{' [baseline]' if k[2] else ''} "
                                  f"{v[-1]['step_s'] / ddp_step:.3f}" for k, v in results.items() if k[0] != "torch"), flush=True)
        for key in runs:
            rs = results[key]
            m = dict(rs[0])
            for k in ("step_s", "tx_mb_per_rank_step", "blocked_ms"):
                if k in m:
                    m[k] = statistics.median(r[k] for r in rs)
            m["images_per_s"] = 64 / m["step_s"]
            rows.append(m)
    finally:
        teardown()
    ddp = next((r for r in rows if r["side"].startswith("PyTorch")), None)
    lines = ["## Distributed on a shaped link (`sudo bash bench/link.sh`)", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: coordinator and {len(WORKERS)} workers in network namespaces joined by a "
             f"bridge, every host sending at most {a.rate} (tc tbf); DCGAN 32x32, global batch 64 ({64 // len(WORKERS)} per rank), one thread per "
             f"rank on this machine's cores; median step time after 3 warm-up steps of {a.steps}"
             + (f", then the median of {a.rounds} rounds taking turns" if a.rounds > 1 else "")
             + "; bytes are each worker's transmitted bytes per step; \"blocked\" is the time rank 0's training thread "
             "waited on the ring per step (mean over the run, from the worker's log)"
             + ".", "",
             "| side | step ms | images/s | MB sent per rank per step | blocked ms per step | step time vs DDP |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['step_s'] / ddp['step_s']:.2f}x" if ddp and r is not ddp else "-"
        blocked = f"{r['blocked_ms']:.1f}" if "blocked_ms" in r else "-"
        lines.append(f"| {r['side']} | {r['step_s'] * 1000:.1f} | {r['images_per_s']:.1f} | {r['tx_mb_per_rank_step']:.2f} | {blocked} | {vs} |")
    section = "\n".join(lines) + "\n"
    replace_section(a.results, "## Distributed on a shaped link", section)
    print(f"wrote the link section of {a.results}")


if __name__ == "__main__":
    main()
