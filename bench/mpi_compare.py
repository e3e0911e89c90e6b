#!/usr/bin/env python3
"""RingGAN's ring against OpenMPI's MPI_Allreduce on the emulated cluster (issue 24).

  python3 bench/mpi_compare.py [--workers 4,8,16] [--core 0.1] [--link-equiv 1gbit] [--json OUT]
      [--results bench/RESULTS.md]          (as root: namespaces, tc, cgroups)

The machines are bench/emucluster.py's (a network namespace, a veth to a bridge, tc tbf at the
rate on both ends, a cgroup CPU budget each; time dilation: a machine at c core on a link of
R x c stands for a 1-core machine on R). On each, one rank of
  - OpenMPI 4.1 (Debian's openmpi-bin, libopenmpi-dev): bench/mpi/allreduce.c, started by mpirun
    on the coordinator machine through bench/mpi/netns-agent (ssh's place: the orted runs in the
    machine's namespace and budget), BTL tcp over eth0; the library's own choice of algorithm;
  - RingGAN: gan-dist-bench --peer (bench/DistBench/Peer.swift), the ring formed with its far
    links, codec none (MPI moves raw floats);
the same sizes and repetitions, each timed on rank 0 after a barrier; medians. Gradient sizes
(64 KB - 64 MB): MPI_Allreduce against Ring.allReduce (what gradient buckets use); statistics
sizes (64 B - 4 KB): against allReduceSum (SyncBatchNorm's: the log2-round all-gather).
"""
import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emucluster as emu  # noqa: E402
from results_md import replace_section  # noqa: E402

ROOT = emu.ROOT


def build_mpi(work):
    exe = os.path.join(work, "mpi_allreduce")
    subprocess.run(["mpicc", "-O2", "-o", exe, os.path.join(ROOT, "bench", "mpi", "allreduce.c")], check=True)
    return exe


def lines_of(proc, timeout):
    out, _ = proc.communicate(timeout=timeout)
    rows = []
    for line in out.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def run_mpi(cg, exe, n, timeout):
    hosts = ",".join(f"{addr}:1" for _, addr in emu.WORKERS[:n])
    env = dict(os.environ, RGEMU_CGROUP_ROOT=cg.root, OMPI_MCA_plm_rsh_agent=os.path.join(ROOT, "bench", "mpi", "netns-agent"))
    argv = ["mpirun", "--allow-run-as-root", "-np", str(n), "--host", hosts, "--map-by", "node",
            "--mca", "plm_rsh_no_tree_spawn", "1", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0", exe]
    p = emu.launch(cg, emu.COORD[0], argv, env, subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise RuntimeError(f"mpirun -np {n} ran past {timeout} s")
    if p.returncode != 0:
        raise RuntimeError(f"mpirun -np {n} failed ({p.returncode}): {err[-2000:]}")
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def run_ring(cg, n, work, port, timeout, extra=()):
    """gan-dist-bench --peer on the first n workers (with `extra` arguments); rank 0's JSON lines."""
    what = " ".join(["gan-dist-bench --peer", *extra[:1]])
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(token, 0o600)
    hosts = ",".join(addr for _, addr in emu.WORKERS[:n])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", RINGGAN_THREADS="1")
    procs = []
    for r in range(n):
        name, _ = emu.WORKERS[r]
        argv = [os.path.join(emu.BIN, "gan-dist-bench"), "--peer", "--rank", str(r), "--hosts", hosts, "--port", str(port),
                "--token-file", token, *extra]
        procs.append(emu.launch(cg, name, argv, env, subprocess.PIPE if r == 0 else subprocess.DEVNULL, subprocess.PIPE))
    try:
        out, err0 = procs[0].communicate(timeout=timeout)
        rcs = [p.wait(timeout=60) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise RuntimeError(f"{what} x {n} ran past {timeout} s")
    if any(rcs):
        errs = [p.stderr.read() for p in procs[1:] if p.stderr]
        raise RuntimeError(f"{what} x {n} failed {rcs}: {err0[-1000:]} {' '.join(e[-300:] for e in errs)}")
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def human_bytes(b):
    return f"{b // (1 << 20)} MB" if b >= 1 << 20 else f"{b // 1024} KB" if b >= 1024 else f"{b} B"


def table(rows, ns):
    head = ["N", "kind", "bytes", "OpenMPI ms", "RingGAN ms", "RingGAN / OpenMPI time", "OpenMPI bus GB/s", "RingGAN bus GB/s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in ns:
        for kind in ("statistics", "allreduce"):
            sizes = sorted({r["bytes"] for r in rows if r["ranks"] == n and r["kind"] == kind})
            for b in sizes:
                m = next((r for r in rows if r["ranks"] == n and r["kind"] == kind and r["bytes"] == b and r["impl"] == "openmpi"), None)
                g = next((r for r in rows if r["ranks"] == n and r["kind"] == kind and r["bytes"] == b and r["impl"] == "ringgan"), None)

                def ms(r):
                    return f"{r['median_s'] * 1000:.2f}" if r else "-"

                def bus(r):
                    return f"{2 * (n - 1) / n * b / r['median_s'] / 1e9:.4f}" if r and kind == "allreduce" else "-"
                ratio = f"{g['median_s'] / m['median_s']:.2f}" if m and g else "-"
                out.append(f"| {n} | {'statistics (allReduceSum)' if kind == 'statistics' else 'gradients (allReduce)'} | "
                           f"{human_bytes(b)} | {ms(m)} | {ms(g)} | {ratio} | {bus(m)} | {bus(g)} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="4,8,16")
    ap.add_argument("--core", type=float, default=0.1, help="each machine's fraction of a core (16 x 0.1 + 0.2 fits 2 cores)")
    ap.add_argument("--coord-core", type=float, default=0.2)
    ap.add_argument("--link-equiv", default="1gbit")
    ap.add_argument("--period-us", type=int, default=2000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--bin", default=emu.BIN)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("mpi_compare: needs root (network namespaces, tc, cgroups)")
    for tool in ("mpirun", "mpicc"):
        if not shutil.which(tool):
            sys.exit(f"mpi_compare: {tool} missing: apt-get install openmpi-bin libopenmpi-dev (bench/emucluster.sh --mpi does)")
    emu.BIN = os.path.abspath(a.bin)
    if not os.path.exists(os.path.join(emu.BIN, "gan-dist-bench")):
        sys.exit(f"mpi_compare: {emu.BIN}/gan-dist-bench missing: swift build -c release first")
    ns = sorted(int(x) for x in a.workers.split(","))
    if ns[0] < 2 or ns[-1] > emu.MAX_WORKERS or ns[-1] * a.core + a.coord_core > os.cpu_count() + 1e-9:
        sys.exit("mpi_compare: --workers within 2..16, and N x core + the coordinator's within this machine's cores")
    cg = emu.CGroups()
    work = tempfile.mkdtemp(prefix="ringgan-mpi-")
    exe = build_mpi(work)
    rate = emu.rate_bps(a.link_equiv) * a.core
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = emu.cpu_model()
    print(f"mpi_compare: {cpu}, {os.cpu_count()} cores; each machine {a.core:g} core on {emu.human_rate(rate)} "
          f"= a 1-core machine on {emu.human_rate(emu.rate_bps(a.link_equiv))}", flush=True)
    rows = []
    port = 29650
    try:
        cg.teardown()
        emu.net_setup(ns[-1], rate)
        fr = {emu.COORD[0]: a.coord_core, **{w: a.core for w, _ in emu.WORKERS[:ns[-1]]}}
        used = cg.setup(list(fr), fr.get, a.period_us)
        period = used[emu.WORKERS[0][0]]
        for n in ns:
            for impl in ("openmpi", "ringgan"):
                t0 = time.time()
                port += 1
                thr0 = [cg.throttled(w)[1] for w, _ in emu.WORKERS[:n]]
                got = run_mpi(cg, exe, n, a.timeout) if impl == "openmpi" else run_ring(cg, n, work, port, a.timeout)
                # The share of the wall time the machines spent throttled (their budget used up):
                # a rank that polls while it waits spends its budget waiting.
                wall = time.time() - t0
                throttled = statistics.mean(cg.throttled(w)[1] - x for (w, _), x in zip(emu.WORKERS[:n], thr0)) / wall
                for r in got:
                    r.update(core=a.core, period_us=period, rate_bps=rate, link_equiv=a.link_equiv, throttled_share=throttled)
                rows += got
                print(f"  N={n:2d} {impl:8s} " + "  ".join(f"{human_bytes(r['bytes'])}: {r['median_s'] * 1000:.2f} ms" for r in got)
                      + f"  ({time.time() - t0:.0f} s, throttled {throttled:.0%} of it)", flush=True)
    finally:
        emu.cleanup(cg)
    tab = table(rows, ns)
    print("\n" + tab)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started, "cpu": cpu, "rows": rows}, f, indent=1)
    title = f"Emulated cluster: ring all-reduce against OpenMPI, {emu.human_rate(emu.rate_bps(a.link_equiv))} equivalent"
    notes = (f"{started}, {cpu} ({os.cpu_count()} cores), `python3 bench/mpi_compare.py {' '.join(sys.argv[1:])}`. "
             f"One rank a machine, each {a.core:g} core (cgroup period {period / 1000:g} ms) on {emu.human_rate(rate)} "
             f"(tbf both ends; a 1-core machine on {emu.human_rate(emu.rate_bps(a.link_equiv))}). OpenMPI {mpi_version()}: "
             f"bench/mpi/allreduce.c under mpirun (orted started in each machine by bench/mpi/netns-agent), BTL tcp, the "
             f"library's own algorithm choice. RingGAN: gan-dist-bench --peer, codec none, far links formed. Each figure: "
             f"rank 0's median time after a barrier (2-20 repetitions by size, 50 for the statistics' sizes). Bus GB/s = "
             f"2(N-1)/N x bytes / time. Ratio below 1: RingGAN faster.")
    replace_section(a.results, f"## {title}\n", f"## {title}\n\n{notes}\n\n{tab}\n")
    print(f"\nwrote the section \"{title}\" of {a.results}")


def mpi_version():
    try:
        out = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].split()[-1]
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    main()
