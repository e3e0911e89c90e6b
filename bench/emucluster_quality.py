#!/usr/bin/env python3
"""Time to quality on the emulated cluster (issue 24): does the N-worker cluster reach the single
emulated worker's 5-minute FID in a quarter of the time?

  python3 bench/emucluster_quality.py [--workers 8] [--core 0.2] [--link-equiv 1gbit] [--preset fast]
      [--seconds 300] [--cluster-seconds 75,150] [--lr-rule none|sqrt|linear] [--json OUT]
      [--results bench/RESULTS.md]                     (as root: namespaces, tc, cgroups)

The machines are bench/emucluster.py's (namespace, tbf-shaped link, cgroup CPU budget each). One
worker trains `--preset P` for --seconds under gan-coordinator --time-limit (the preset's batch,
learning rates and everything else); then N workers train the same preset for each of
--cluster-seconds, each worker taking the preset's batch (weak scaling: global batch N x b, so each
step sees N times the images; --lr-rule scales both learning rates by sqrt(N) or N, or leaves them,
the default). Every run's final checkpoint is scored by `gan evaluate` (the same digit classifier,
class-stratified reference and samples), outside the rig, so the scoring costs the runs nothing.
"""
import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emucluster as emu  # noqa: E402
from results_md import replace_section  # noqa: E402

ROOT = emu.ROOT


def preset_config(preset):
    """The preset's batch and learning rates, as `gan train --preset P --dry-run` resolves them."""
    work = tempfile.mkdtemp(prefix="ringgan-q-")
    out = subprocess.run([os.path.join(emu.BIN, "gan"), "train", "--preset", preset, "--steps", "1", "--runs-dir", work,
                          "--name", "probe", "--sample-every", "0", "--checkpoint-every", "0"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"emucluster_quality: gan train --preset {preset} --steps 1 failed: {out.stderr[-2000:]}")
    return json.load(open(os.path.join(work, "probe", "config.json")))


def run(cg, a, n, seconds, cfg, work, port, lr_scale):
    token = os.path.join(work, "token")
    with open(token, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(token, 0o600)
    name = f"q-n{n}-{seconds}s"
    logdir = os.path.join(work, "logs", name)
    os.makedirs(logdir, exist_ok=True)
    env = dict(os.environ, RINGGAN_THREADS="1", OPENBLAS_NUM_THREADS="1")
    flags = ["--preset", a.preset, "--batch", str(n * cfg["batchSize"]), "--time-limit", str(seconds)]
    if lr_scale != 1:
        flags += ["--lr-g", f"{cfg['lrG'] * lr_scale:.6g}", "--lr-d", f"{cfg['lrD'] * lr_scale:.6g}"]
    coord = emu.launch(cg, emu.COORD[0], [f"{emu.BIN}/gan-coordinator", "--workers", str(n), "--host", emu.COORD[1],
                                          "--port", str(port), "--token-file", token, "--runs-dir", os.path.join(work, "runs"),
                                          "--name", name, "--data", a.data, *flags, "--sample-every", "0",
                                          "--checkpoint-every", "0", "--json", "--rendezvous-timeout", "300"],
                       env, subprocess.DEVNULL, open(os.path.join(logdir, "coordinator.log"), "w"))
    t0 = time.time()
    time.sleep(0.3)
    workers = [emu.launch(cg, emu.WORKERS[r][0], [f"{emu.BIN}/gan-worker", "--rank", str(r), "--coordinator",
                                                  f"{emu.COORD[1]}:{port}", "--token-file", token, "--advertise",
                                                  emu.WORKERS[r][1], "--connect-timeout", "300", "--rejoin-timeout", "0"],
                          env, subprocess.DEVNULL, open(os.path.join(logdir, f"rank{r}.log"), "w")) for r in range(n)]
    rc = coord.wait(timeout=seconds + 600)
    for w in workers:
        w.wait(timeout=120)
    wall = time.time() - t0
    if rc != 0:
        raise RuntimeError(f"gan-coordinator {name} failed ({rc}); logs in {logdir}")
    ck_dir = os.path.join(work, "runs", name, "checkpoints")
    last = sorted(x for x in os.listdir(ck_dir) if x.endswith(".rgan"))[-1]
    ev = subprocess.run([os.path.join(emu.BIN, "gan"), "evaluate", "--json", "--checkpoint", os.path.join(ck_dir, last)],
                        cwd=ROOT, capture_output=True, text=True)
    if ev.returncode != 0:
        raise RuntimeError(f"gan evaluate {name}: {ev.stderr[-1500:]}")
    score = json.loads(ev.stdout.strip().splitlines()[-1])
    step = int(last.split("_")[1].split(".")[0])
    return {"workers": n, "seconds": seconds, "wall_s": wall, "steps": step, "global_batch": n * cfg["batchSize"],
            "images": step * n * cfg["batchSize"], "lr_scale": lr_scale, "fid": score["fid"], "checkpoint": last}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--core", type=float, default=0.2)
    ap.add_argument("--coord-core", type=float, default=0.2)
    ap.add_argument("--link-equiv", default="1gbit")
    ap.add_argument("--period-us", type=int, default=2000)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--seconds", type=int, default=300, help="the single worker's run")
    ap.add_argument("--cluster-seconds", default="75,150", help="the N-worker runs' time limits, comma list")
    ap.add_argument("--no-single", action="store_true", help="only the N-worker runs (compare with an earlier single run's JSON)")
    ap.add_argument("--lr-rule", default="none", choices=["none", "sqrt", "linear"])
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist-5k"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("emucluster_quality: needs root (network namespaces, tc, cgroups)")
    if a.workers * a.core + a.coord_core > os.cpu_count() + 1e-9:
        sys.exit("emucluster_quality: N x core + the coordinator's is more than this machine's cores")
    cfg = preset_config(a.preset)
    scale = {"none": 1, "sqrt": a.workers ** 0.5, "linear": a.workers}[a.lr_rule]
    cg = emu.CGroups()
    work = tempfile.mkdtemp(prefix="ringgan-emuq-")
    rate = emu.rate_bps(a.link_equiv) * a.core
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = emu.cpu_model()
    rows = []
    try:
        cg.teardown()
        emu.net_setup(a.workers, rate)
        fr = {emu.COORD[0]: a.coord_core, **{w: a.core for w, _ in emu.WORKERS[:a.workers]}}
        used = cg.setup(list(fr), fr.get, a.period_us)
        port = 29700
        plan = ([] if a.no_single else [(1, a.seconds, 1)]) + [(a.workers, int(s), scale) for s in a.cluster_seconds.split(",")]
        for n, s, lr in plan:
            port += 1
            r = run(cg, a, n, s, cfg, work, port, lr)
            rows.append(r)
            print(f"  {n} worker(s), {s} s: {r['steps']} steps of {r['global_batch']}, FID {r['fid']:.2f}", flush=True)
    finally:
        emu.cleanup(cg)
    base = rows[0] if not a.no_single else None
    head = "| workers | time limit s | steps | global batch | images seen | lr x | FID | reaches 1 worker's FID |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['seconds']} | {r['steps']} | {r['global_batch']} | {r['images']} | {r['lr_scale']:.3g} |"
                     f" {r['fid']:.2f} | {'-' if base is None or r is base else ('yes' if r['fid'] <= base['fid'] else 'no')} |")
    tab = "\n".join(lines)
    print("\n" + tab)
    if a.json:
        json.dump({"started": started, "cpu": cpu, "preset": a.preset, "config": {k: cfg.get(k) for k in ("model", "batchSize", "lrG", "lrD")},
                   "period_us": used[emu.WORKERS[0][0]], "rate_bps": rate, "lr_rule": a.lr_rule, "rows": rows},
                  open(a.json, "w"), indent=1)
    title = f"Emulated cluster: time to quality, --preset {a.preset}, 1 against {a.workers} workers"
    notes = (f"{started}, {cpu} ({os.cpu_count()} cores), `python3 bench/emucluster_quality.py {' '.join(sys.argv[1:])}`. "
             f"Each worker a machine at {a.core:g} core on {emu.human_rate(rate)} (a 1-core machine on "
             f"{emu.human_rate(emu.rate_bps(a.link_equiv))}); gan-coordinator --preset {a.preset} --time-limit T, each worker "
             f"taking the preset's batch of {cfg['batchSize']} (global batch N x {cfg['batchSize']}); learning rates "
             + ("as the preset's (no rule)" if a.lr_rule == "none" else f"x {scale:.3g} ({a.lr_rule}(N) rule)")
             + ". FID of each run's final checkpoint by `gan evaluate` (2,000 samples, the class-stratified reference).")
    replace_section(a.results, f"## {title}\n", f"## {title}\n\n{notes}\n\n{tab}\n")


if __name__ == "__main__":
    main()
