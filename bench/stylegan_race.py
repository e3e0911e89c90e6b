#!/usr/bin/env python3
"""StyleGAN against DCGAN at the same wall clock: a real race. Both `gan train` runs start
together, each pinned to its own core (taskset) with one engine thread and the same
--time-limit, so they get the same seconds of the same kind of core; then `gan evaluate` scores
the final checkpoint of each (2,000 samples, the class-stratified reference, the real-vs-real
floor) and the ratio of the FIDs is printed.

  python3 bench/stylegan_race.py [--seconds 300] [--ngf 16] [--batch 32] [--g-ema 0.999]
                                 [--style "--mapping-layers 2 ..."] [--dcgan "--lr 4e-4"] [--lock] [--no-publish]

--style adds flags to the StyleGAN run only (its recipe), --dcgan to the DCGAN run; everything else (width,
batch, loss, EMA, data, seed) is shared. Needs 2 cores; with --lock the race holds the machine's
two locks (/tmp/ringgan-swift.lock, /tmp/ringgan-cpu.lock). Writes runs/stylegan-race/
results.json, the two final grids, and the "StyleGAN against DCGAN at the same wall clock"
section of bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402
GAN = os.path.join(ROOT, ".build", "release", "gan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--g-ema", default="0.999")
    ap.add_argument("--style", default="", help="extra flags for the StyleGAN run only")
    ap.add_argument("--dcgan", default="", help="extra flags for the DCGAN run only")
    ap.add_argument("--lock", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "stylegan-race"))
    ap.add_argument("--no-publish", action="store_true")
    a = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("stylegan_race: needs 2 cores (one per run)")
    os.makedirs(a.out, exist_ok=True)
    common = ["--ngf", str(a.ngf), "--ndf", str(a.ngf), "--batch", str(a.batch), "--g-ema", a.g_ema,
              "--threads", "1", "--time-limit", f"{a.seconds:g}", "--steps", "100000000",
              "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "50", "--runs-dir", a.out]
    runs = {"dcgan": ["--model", "dcgan"] + shlex.split(a.dcgan), "stylegan": ["--model", "stylegan"] + shlex.split(a.style)}
    lock = ["flock", "/tmp/ringgan-swift.lock", "flock", "/tmp/ringgan-cpu.lock"] if a.lock else []
    # Both runs under one lock holder, so neither starts before the machine is free.
    script = " & ".join(
        f"taskset -c {core} {shlex.join([GAN, 'train'] + common + runs[name] + ['--name', name])} > {shlex.quote(os.path.join(a.out, name + '.log'))} 2>&1"
        for core, name in enumerate(runs)) + " & wait"
    for name in runs:
        subprocess.run(["rm", "-rf", os.path.join(a.out, name)])
    print("+", script, flush=True)
    t0 = time.time()
    p = subprocess.run(lock + ["bash", "-c", script], cwd=ROOT)
    wall = time.time() - t0
    results = {"date": f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC", "seconds": a.seconds, "wall": wall,
               "shared": " ".join(common[:8]), "style": a.style, "dcgan_flags": a.dcgan}
    for name in runs:
        ck_dir = os.path.join(a.out, name, "checkpoints")
        if p.returncode != 0 or not os.path.isdir(ck_dir) or not os.listdir(ck_dir):
            sys.exit(f"stylegan_race: the {name} run failed; see {os.path.join(a.out, name + '.log')}")
        ck = sorted(os.listdir(ck_dir))[-1]
        out = subprocess.run([GAN, "evaluate", "--json", "--checkpoint", os.path.join(ck_dir, ck)],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"gan evaluate failed for {name}:\n{out.stderr[-2000:]}")
        e = json.loads(out.stdout.strip().splitlines()[-1])
        grids = sorted(os.listdir(os.path.join(a.out, name, "samples")))
        subprocess.run(["cp", os.path.join(a.out, name, "samples", grids[-1]), os.path.join(a.out, f"{name}.png")], check=True)
        results[name] = {"steps": e["step"], "fid": e["fid"], "classifier_score": e["classifier_score"],
                         "mode_entropy": e["mode_entropy"], "floor": e["real_floor_fid"]}
    json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    ratio = results["stylegan"]["fid"] / results["dcgan"]["fid"]
    lines = ["| model | steps in the time | FID | classifier score | mode entropy |", "|---|---|---|---|---|"]
    for name in runs:
        r = results[name]
        lines.append(f"| `{name}` | {r['steps']:,} | **{r['fid']:.2f}** | {r['classifier_score']:.3f} | {r['mode_entropy']:.3f} |")
    table = "\n".join(lines)
    verdict = (f"StyleGAN's FID is {ratio:.2f}x DCGAN's (goal: within 1.5x: {'met' if ratio <= 1.5 else 'not met'}); "
               f"real-vs-real floor {results['dcgan']['floor']:.2f}.")
    print("\n" + table + "\n\n" + verdict)
    if a.no_publish:
        return
    for name in runs:
        subprocess.run(["cp", os.path.join(a.out, f"{name}.png"), os.path.join(ROOT, "docs", "images", f"race-{name}.png")], check=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    section = (f"## StyleGAN against DCGAN at the same wall clock (`python3 bench/stylegan_race.py`)\n\n"
               f"{results['date']}, {cpu}: both runs started together, each pinned to its own core with one "
               f"engine thread and `--time-limit {a.seconds:g}` (counted from each process's start)"
               f"{', the machine otherwise idle (both locks held)' if a.lock else ''}. Shared flags: "
               f"`--ngf {a.ngf} --ndf {a.ngf} --batch {a.batch} --g-ema {a.g_ema}`, BCE, Adam(2e-4, 0.5, 0.999) "
               f"unless a model's own flags say otherwise; DCGAN's own flags: `{a.dcgan or '(none)'}`; StyleGAN's: `{a.style or '(none)'}`. Scored by "
               f"`gan evaluate` (2,000 samples against the 2,000-digit class-stratified reference).\n\n"
               f"{table}\n\n{verdict}\n\n"
               f"| `dcgan` | `stylegan` |\n|---|---|\n| ![](../docs/images/race-dcgan.png) | ![](../docs/images/race-stylegan.png) |\n\n")
    replace_section(os.path.join(ROOT, "bench", "RESULTS.md"), "## StyleGAN against DCGAN at the same wall clock", section)


if __name__ == "__main__":
    main()
