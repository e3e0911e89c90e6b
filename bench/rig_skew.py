#!/usr/bin/env python3
"""What the emulated cluster itself makes a blocking exchange cost (issue 24): the rig's skew.

  python3 bench/rig_skew.py [--workers 2,4,8] [--core 0.2] [--work-ms 0,2,8,33,130]
      [--link-equiv 1gbit] [--json OUT] [--results bench/RESULTS.md]     (as root)

  --work conv: the same number of convolutions on every rank instead of the same CPU time.

On bench/emucluster.py's machines (a network namespace, a veth to a bridge, tc tbf, a cgroup CPU
budget each, pinned as the sweeps pin them, with the same ballast up to the largest N), every rank
runs `gan-dist-bench --peer --skew`: it burns exactly W ms of its own CPU time (a spin on the
thread's CPU clock: the same work on every rank), then joins SyncBatchNorm's statistics gather
(a 64-channel layer's slot, as training sends it), and times the gather. With identical work on
every rank, any wait beyond the W = 0 exchange is the machines drifting apart by their budgets'
throttling alone: the floor under every statistics all-reduce the sweeps measure, which a real
1-core machine (never throttled) would not pay.

The table gives per N and W: the wait per exchange (mean over ranks; the rank that waited most),
the wall time W took (mean; standard deviation over the repetitions), and both in a 1-core
machine's time (times the core fraction: the dilation). A dcgan 32 step at 0.2 core has 18
exchanges with about 33 ms of CPU between them on average (600 ms of CPU a step).
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emucluster as emu  # noqa: E402
from mpi_compare import run_ring  # noqa: E402
from results_md import replace_section  # noqa: E402


def run(cg, n, work_ms, kind, work, port, timeout):
    skew = ",".join(str(int(round(w * 1000))) for w in work_ms)
    return run_ring(cg, n, work, port, timeout, extra=("--skew", skew, "--skew-work", kind))


def table(rows):
    head = ["N", "core", "ballast", "work", "W (CPU ms)", "CPU ms taken (sd; spread of the ranks' means)", "W's wall ms (sd)",
            "wait per exchange ms (most-waiting rank)", "wait in a 1-core machine's ms", "wait beyond W = 0, 1-core ms"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=lambda r: (r["ranks"], r["core"], r["work"], r["work_us"])):
        base = next((x for x in rows if x["ranks"] == r["ranks"] and x["core"] == r["core"] and x["work_us"] == 0
                     and x.get("work") == r.get("work")), None)
        beyond = f"{(r['wait_mean_s'] - base['wait_mean_s']) * r['core'] * 1000:.2f}" if base else "-"
        cpu = (f"{r['work_cpu_mean_s'] * 1000:.1f} ({r['work_cpu_sd_s'] * 1000:.1f}; {r['work_cpu_rank_spread_s'] * 1000:.1f})"
               if "work_cpu_mean_s" in r else "-")
        out.append(f"| {r['ranks']} | {r['core']:g} | {r.get('ballast', 0)} | {r.get('work', 'spin')} | {r['work_us'] / 1000:g} | {cpu} | "
                   f"{r['work_wall_mean_s'] * 1000:.1f} ({r['work_wall_sd_s'] * 1000:.1f}) | {r['wait_mean_s'] * 1000:.2f} "
                   f"({r['wait_max_rank_s'] * 1000:.2f}) | {r['wait_mean_s'] * r['core'] * 1000:.2f} | {beyond} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="2,4,8")
    ap.add_argument("--core", type=float, default=0.2, help="each machine's fraction of a core")
    ap.add_argument("--coord-core", type=float, default=0.2, help="the coordinator machine's budget (idle here; kept so "
                    "the host's load matches the sweeps')")
    ap.add_argument("--work-ms", default="0,2,8,33,130", help="CPU milliseconds burnt between exchanges")
    ap.add_argument("--work", default="spin",
                    help="spin: exactly W ms of CPU time on every rank; conv: the same number of convolutions on every "
                         "rank (about W ms of CPU), whose CPU time may differ between ranks; spin,conv: both")
    ap.add_argument("--link-equiv", default="1gbit")
    ap.add_argument("--period-us", type=int, default=2000)
    ap.add_argument("--no-ballast", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--results", default=os.path.join(emu.ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--section", default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--bin", default=emu.BIN)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("rig_skew: needs root (network namespaces, tc, cgroups)")
    emu.BIN = os.path.abspath(a.bin)
    if not os.path.exists(os.path.join(emu.BIN, "gan-dist-bench")):
        sys.exit(f"rig_skew: {emu.BIN}/gan-dist-bench missing: swift build -c release first")
    ns = sorted(int(x) for x in a.workers.split(","))
    work_ms = [float(x) for x in a.work_ms.split(",")]
    if ns[0] < 2 or ns[-1] > emu.MAX_WORKERS or ns[-1] * a.core + a.coord_core > os.cpu_count() + 1e-9:
        sys.exit("rig_skew: --workers within 2..16, and N x core + the coordinator's within this machine's cores")
    if any(w < 0 for w in work_ms):
        sys.exit("rig_skew: --work-ms must be >= 0")
    works = a.work.split(",")
    if not works or any(w not in ("spin", "conv") for w in works):
        sys.exit(f"rig_skew: --work takes spin, conv or both (spin,conv), not {a.work}")
    cg = emu.CGroups()
    work = tempfile.mkdtemp(prefix="ringgan-skew-")
    rate = emu.rate_bps(a.link_equiv) * a.core
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = emu.cpu_model()
    print(f"rig_skew: {cpu}, {os.cpu_count()} cores; each machine {a.core:g} core on {emu.human_rate(rate)}", flush=True)
    rows = []
    port = 29750
    try:
        cg.teardown()
        emu.net_setup(ns[-1], rate)
        ballast_groups = [f"{emu.P}-b{i}" for i in range(ns[-1])]
        fr = {emu.COORD[0]: a.coord_core, **{w: a.core for w, _ in emu.WORKERS[:ns[-1]]}, **{b: a.core for b in ballast_groups}}
        used = cg.setup(list(fr), fr.get, a.period_us)
        period = used[emu.WORKERS[0][0]]
        for n in ns:
            ballast = [] if a.no_ballast else emu.start_ballast(cg, ns[-1] - n, first=n)
            got = []
            try:
                t0 = time.time()
                for kind in works:
                    port += 1
                    got += run(cg, n, work_ms, kind, work, port, a.timeout)
            finally:
                emu.stop_ballast(ballast)
            for r in got:
                r.update(core=a.core, period_us=period, rate_bps=rate, link_equiv=a.link_equiv,
                         ballast=0 if a.no_ballast else ns[-1] - n)
                print(f"  N={n:2d} W={r['work_us'] / 1000:g} ms: wait {r['wait_mean_s'] * 1000:.2f} ms per exchange "
                      f"(most-waiting rank {r['wait_max_rank_s'] * 1000:.2f}), W's wall {r['work_wall_mean_s'] * 1000:.1f} ms "
                      f"(sd {r['work_wall_sd_s'] * 1000:.1f})", flush=True)
            rows += got
            print(f"  N={n} took {time.time() - t0:.0f} s", flush=True)
    finally:
        emu.cleanup(cg)
    tab = table(rows)
    print("\n" + tab)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started, "cpu": cpu, "argv": sys.argv[1:], "rows": rows}, f, indent=1)
    title = a.section or f"Emulated cluster: the rig's own skew, {a.core:g} core, {' and '.join(works)} work"
    notes = (f"{started}, {cpu} ({os.cpu_count()} cores), `python3 bench/rig_skew.py {' '.join(sys.argv[1:])}`. "
             f"Each rank a machine at {a.core:g} core (cgroup period {period / 1000:g} ms, pinned as the sweeps pin), "
             f"{emu.human_rate(rate)} links; " + ("" if a.no_ballast else "below the largest N, ballast loops keep the host as loaded. ")
             + " and ".join({"spin": "every rank burns exactly W ms of its own CPU time (spin)",
                             "conv": "every rank runs the same number of convolutions, W ms of CPU on rank 0 (conv)"}[w]
                            for w in works).capitalize()
             + ", then joins SyncBatchNorm's statistics gather (a 64-channel slot), timed; "
             f"means over the repetitions (10-60 by W) and the ranks.")
    if a.results:
        replace_section(a.results, f"## {title}\n", f"## {title}\n\n{notes}\n\n{tab}\n")
        print(f"\nwrote the section \"{title}\" of {a.results}")


if __name__ == "__main__":
    main()
