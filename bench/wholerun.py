#!/usr/bin/env python3
"""Whole training runs, RingGAN's `gan train` against the tutorial's PyTorch loop
(bench/torch_train.py), as whole processes on the same machine, alternating, several rounds.

  python3 bench/wholerun.py [--rounds 3] [--threads 1,2] [--runs mlp-bce,dcgan32-bce,...]
                            [--scale 1.0] [--out bench/wholerun.json] [--results bench/RESULTS.md]

For every run and thread count it prints the median wall seconds of each side (process start to
exit), images through D per second, the ratio (PyTorch seconds / RingGAN seconds: above 1 means
RingGAN is faster), the peak RSS of each (and their ratio), start-up to the first training step
of each, and the fraction of the sgemm ceiling RingGAN's run reached (its GEMM work, counted by
the engine, over seconds x the raw cblas_sgemm ceiling at that thread count from
`gan-bench --ceiling`). It also times one RingGAN process of 2 threads against two of 1 thread
(`gan-coordinator --spawn`, 2 workers) where asked (--dp). The table replaces the "Whole runs"
section of bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(ROOT, ".build", "release", "gan")
BENCH = os.path.join(ROOT, ".build", "release", "gan-bench")
COORD = os.path.join(ROOT, ".build", "release", "gan-coordinator")
TORCH = os.path.join(ROOT, "bench", "torch_train.py")

# name: (gan train flags, torch_train flags, steps at scale 1)
RUNS = {
    "mlp-bce": (["--model", "mlp", "--loss", "bce"], ["--model", "mlp", "--loss", "bce"], 2000),
    "dcgan32-bce": (["--model", "dcgan", "--image-size", "32", "--loss", "bce"],
                    ["--model", "dcgan", "--image-size", "32", "--loss", "bce"], 150),
    "dcgan64-bce": (["--model", "dcgan", "--image-size", "64", "--loss", "bce"],
                    ["--model", "dcgan", "--image-size", "64", "--loss", "bce"], 40),
    "mlp-wgangp": (["--model", "mlp", "--loss", "wgan-gp"], ["--model", "mlp", "--loss", "wgan-gp"], 300),
    "dcgan32-wgangp": (["--model", "dcgan", "--image-size", "32", "--loss", "wgan-gp"],
                       ["--model", "dcgan", "--image-size", "32", "--loss", "wgan-gp"], 20),
}


def run_process(cmd, env):
    """Runs cmd; returns (seconds, seconds to the first stdout line, peak RSS in MB, stdout, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, bufsize=1)
    first = None
    out_lines = []
    for line in p.stdout:
        if first is None:
            first = time.monotonic() - t0
        out_lines.append(line)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"wholerun: {' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    return seconds, first, usage.ru_maxrss / 1024, "".join(out_lines), err


def rss_trace(cmd, env, every=0.25):
    """Runs cmd, sampling its resident memory (VmRSS) every `every` seconds; returns [(seconds, MB)]."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    t0, trace = time.monotonic(), []
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        trace.append((time.monotonic() - t0, int(line.split()[1]) / 1024))
        except OSError:
            pass
        time.sleep(every)
    err = p.stderr.read()
    if p.returncode != 0:
        sys.exit(f"wholerun: {' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    return trace


def flat_rss(trace):
    """RSS at 25%, 50%, 75% and 90% of the run's samples (the last tenth is the final grid and
    checkpoint, not training), and the growth from 25% to 90%."""
    pick = lambda q: trace[min(len(trace) - 1, int(q * (len(trace) - 1)))][1]
    qs = [pick(q) for q in (0.25, 0.5, 0.75, 0.9)]
    return qs, qs[-1] - qs[0]


def ceiling(threads):
    out = subprocess.run([BENCH, "--ceiling", "--json", "--threads", str(threads), "--repeats", "5"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["sgemm_ceiling_gflops"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every run's steps (e.g. 0.25 for a quick look)")
    ap.add_argument("--dp", default="mlp-bce,dcgan32-bce",
                    help="runs also timed as one process of 2 threads against 2 spawned workers of 1 thread ('' for none)")
    ap.add_argument("--flat", default="mlp-bce:2000,dcgan32-bce:300",
                    help="RUN:STEPS runs (2 threads) whose resident memory is traced over the whole run ('' for none)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "wholerun.json"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    names = a.runs.split(",")
    for n in names:
        if n not in RUNS:
            sys.exit(f"wholerun: unknown run '{n}' (known: {', '.join(RUNS)})")
    for path in (GAN, BENCH):
        if not os.path.exists(path):
            sys.exit(f"wholerun: {path} is missing: swift build -c release first (bench/wholerun.sh does)")
    # Not imported here: a forked child's peak RSS counts the parent's pages until it execs.
    torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    ceilings = {t: ceiling(t) for t in threads}
    print(f"sgemm ceilings (raw cblas_sgemm, GFLOPS): " + ", ".join(f"{t} thread(s) {c:.1f}" for t, c in ceilings.items()))
    work = tempfile.mkdtemp(prefix="ringgan-wholerun-")
    env = dict(os.environ)
    results = []
    for name in names:
        gflags, tflags, steps = RUNS[name]
        steps = max(1, int(round(steps * a.scale)))
        for t in threads:
            ours, theirs = [], []
            for r in range(a.rounds):
                # Alternate which side goes first, so drift in the machine's speed hits both.
                order = ["ours", "torch"] if r % 2 == 0 else ["torch", "ours"]
                for side in order:
                    if side == "ours":
                        cmd = [GAN, "train", *gflags, "--steps", str(steps), "--threads", str(t), "--runs-dir", work,
                               "--name", f"{name}-{t}-{r}", "--sample-every", "0", "--checkpoint-every", "0", "--json"]
                        s, first, rss, _, err = run_process(cmd, env)
                        m = re.search(r"gemm_gflop=([0-9.]+)", err)
                        ours.append((s, first, rss, float(m.group(1)) if m else float("nan")))
                    else:
                        cmd = [sys.executable, TORCH, *tflags, "--steps", str(steps), "--threads", str(t)]
                        s, first, rss, out, _ = run_process(cmd, env)
                        theirs.append((s, first, rss, json.loads(out.strip().splitlines()[-1])["images"]))
            # Start-up: the same command with --steps 0 (process start, data, models, exit: it trains
            # and writes nothing), median of three; the target is <= 0.3 s.
            startups = []
            for r in range(3):
                cmd = [GAN, "train", *gflags, "--steps", "0", "--threads", str(t), "--runs-dir", work,
                       "--name", f"{name}-{t}-startup{r}", "--sample-every", "0", "--checkpoint-every", "0", "--json"]
                startups.append(run_process(cmd, env)[0])
            n_critic = 5 if "wgangp" in name else 1
            images = steps * n_critic * 64
            med = lambda xs, i: statistics.median(x[i] for x in xs)
            row = {
                "run": name, "steps": steps, "threads": t,
                "ringgan_s": med(ours, 0), "torch_s": med(theirs, 0),
                "ringgan_img_s": images / med(ours, 0), "torch_img_s": images / med(theirs, 0),
                "speed_ratio": statistics.median(th[0] / o[0] for o, th in zip(ours, theirs)),
                "ringgan_rss_mb": max(x[2] for x in ours), "torch_rss_mb": max(x[2] for x in theirs),
                "ringgan_first_step_s": med(ours, 1), "torch_first_step_s": med(theirs, 1),
                "gemm_gflop": ours[0][3], "ringgan_startup_s": statistics.median(startups),
                "all_ringgan_s": [x[0] for x in ours], "all_torch_s": [x[0] for x in theirs],
            }
            row["rss_ratio"] = row["ringgan_rss_mb"] / row["torch_rss_mb"]
            row["ceiling_fraction"] = row["gemm_gflop"] / (row["ringgan_s"] * ceilings[t])
            results.append(row)
            print(f"{name:15s} {t}T  RingGAN {row['ringgan_s']:7.2f} s  PyTorch {row['torch_s']:7.2f} s  "
                  f"speed {row['speed_ratio']:.2f}x  RSS {row['ringgan_rss_mb']:.0f}/{row['torch_rss_mb']:.0f} MB "
                  f"({row['rss_ratio']:.2f}x)  first step {row['ringgan_first_step_s']:.2f}/{row['torch_first_step_s']:.2f} s  "
                  f"ceiling {100 * row['ceiling_fraction']:.0f}%  start-up {row['ringgan_startup_s']:.2f} s", flush=True)
    dp_results = []
    for name in [n for n in a.dp.split(",") if n]:
        gflags, _, steps = RUNS[name]
        steps = max(1, int(round(steps * a.scale)))
        one, two = [], []
        for r in range(a.rounds):
            for side in (["one", "two"] if r % 2 == 0 else ["two", "one"]):
                common = [*gflags, "--steps", str(steps), "--runs-dir", work, "--sample-every", "0", "--checkpoint-every", "0"]
                if side == "one":
                    s, _, _, _, _ = run_process([GAN, "train", *common, "--threads", "2", "--name", f"dp1-{name}-{r}", "--json"], env)
                    one.append(s)
                else:
                    s, _, _, _, _ = run_process([COORD, "--workers", "2", "--spawn", "--worker-threads", "1", "--port", "0",
                                                 *common, "--name", f"dp2-{name}-{r}", "--json"], env)
                    two.append(s)
        row = {"run": name, "steps": steps, "one_process_2_threads_s": statistics.median(one),
               "two_workers_1_thread_s": statistics.median(two)}
        row["ratio"] = row["two_workers_1_thread_s"] / row["one_process_2_threads_s"]
        dp_results.append(row)
        print(f"{name:15s} 1 process x 2 threads {row['one_process_2_threads_s']:.2f} s, 2 workers x 1 thread "
              f"{row['two_workers_1_thread_s']:.2f} s: the single process is {row['ratio']:.2f}x as fast", flush=True)
    flat_results = []
    for spec in [x for x in a.flat.split(",") if x]:
        name, steps = spec.split(":")
        gflags, _, _ = RUNS[name]
        trace = rss_trace([GAN, "train", *gflags, "--steps", steps, "--threads", "2", "--runs-dir", work,
                           "--name", f"flat-{name}", "--sample-every", "0", "--checkpoint-every", "0", "--json"], env)
        qs, growth = flat_rss(trace)
        flat_results.append({"run": name, "steps": int(steps), "rss_quartiles_mb": qs, "growth_25_to_90_mb": growth,
                             "samples": len(trace)})
        print(f"{name:15s} {steps} steps: RSS at 25/50/75/90% of the run " + " / ".join(f"{q:.0f}" for q in qs) +
              f" MB; growth from 25% to 90% {growth:.1f} MB", flush=True)
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    core = subprocess.run([GAN, "info"], capture_output=True, text=True).stdout
    kernels = re.search(r"openblas core:\s*(\S+)", core)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "openblas_kernels": kernels.group(1) if kernels else "see gan info",
            "torch": torch_version, "rounds": a.rounds, "ceilings_gflops": ceilings}
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "results": results, "data_parallel": dp_results, "flat_rss": flat_results}, f, indent=1)
    write_results(a.results, meta, results, dp_results, flat_results)
    print(f"wrote {a.out} and the whole-run section of {a.results}")


def write_results(path, meta, results, dp_results, flat_results=()):
    lines = ["## Whole runs against PyTorch (`bash bench/wholerun.sh`)", "",
             f"{meta['date']}, {meta['cpu']} ({meta['cores']} cores), OpenBLAS kernels {meta['openblas_kernels']}, "
             f"PyTorch {meta['torch']}; medians of {meta['rounds']} alternating rounds, whole processes (start to exit); "
             f"sgemm ceilings " + ", ".join(f"{t}T {c:.1f} GFLOPS" for t, c in meta["ceilings_gflops"].items()) + ".",
             "Speed is PyTorch's seconds over RingGAN's (above 1: RingGAN faster); RSS is peak resident memory.", "",
             "\"start-up\" is `gan train ... --steps 0` start to exit (data, models, final grid and checkpoint); "
             "\"first step\" is start to the end of the first training step.", "",
             "| run | steps | threads | RingGAN s | PyTorch s | RingGAN img/s | PyTorch img/s | speed | RSS MB (ours/torch) | RSS ratio | start-up s | first step s (ours/torch) | of sgemm ceiling |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['run']} | {r['steps']} | {r['threads']} | {r['ringgan_s']:.2f} | {r['torch_s']:.2f} | "
                     f"{r['ringgan_img_s']:.0f} | {r['torch_img_s']:.0f} | **{r['speed_ratio']:.2f}x** | "
                     f"{r['ringgan_rss_mb']:.0f} / {r['torch_rss_mb']:.0f} | {r['rss_ratio']:.2f} | {r.get('ringgan_startup_s', float('nan')):.2f} | "
                     f"{r['ringgan_first_step_s']:.2f} / {r['torch_first_step_s']:.2f} | {100 * r['ceiling_fraction']:.0f}% |")
    if dp_results:
        lines += ["", "One process of 2 threads against 2 workers of 1 thread (`gan-coordinator --workers 2 --spawn`) on the same 2 cores:", "",
                  "| run | steps | 1 process x 2 threads s | 2 workers x 1 thread s | single process speed |", "|---|---|---|---|---|"]
        for r in dp_results:
            lines.append(f"| {r['run']} | {r['steps']} | {r['one_process_2_threads_s']:.2f} | {r['two_workers_1_thread_s']:.2f} | "
                         f"**{r['ratio']:.2f}x** |")
    if flat_results:
        lines += ["", "Resident memory over a long run (`gan train --threads 2`, sampled every 0.25 s):", "",
                  "| run | steps | RSS MB at 25% / 50% / 75% / 90% of the run | growth 25% to 90% MB |", "|---|---|---|---|"]
        for r in flat_results:
            lines.append(f"| {r['run']} | {r['steps']} | " + " / ".join(f"{q:.0f}" for q in r["rss_quartiles_mb"]) +
                         f" | {r['growth_25_to_90_mb']:.1f} |")
    section = "\n".join(lines) + "\n"
    replace_section(path, "## Whole runs against PyTorch", section)


if __name__ == "__main__":
    main()
