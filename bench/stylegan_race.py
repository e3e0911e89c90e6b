#!/usr/bin/env python3
"""StyleGAN against DCGAN at the same wall clock: a real race. Both `gan train` runs start
together, each pinned to its own core (taskset) with one engine thread and the same
--time-limit, so they get the same seconds of the same kind of core; then `gan evaluate` scores
the final checkpoint of each (2,000 samples, the class-stratified reference, the real-vs-real
floor). With --rounds N the race runs N times and the median ratio is the result (one race's
FIDs move by up to 2x between runs).

  python3 bench/stylegan_race.py [--rounds 3] [--seconds 300] [--ngf 16] [--batch 16] [--g-ema 0.999]
                                 [--style "--preset style-fast"] [--dcgan "--preset fast"] [--lock] [--no-publish]

--style adds flags to the StyleGAN run only (its recipe; default: --preset style-fast), --dcgan
to the DCGAN run (default: --preset fast); everything else (width, batch, loss, EMA, data, seed)
is shared and overrides the presets' values (a model's own flags come last and win over it). Needs 2 cores;
with --lock each race holds the machine's
two locks (/tmp/ringgan-swift.lock, /tmp/ringgan-cpu.lock). Writes runs/stylegan-race/
results.json, the last race's two final grids, and the "StyleGAN against DCGAN at the same wall
clock" section of bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402
GAN = os.path.join(ROOT, ".build", "release", "gan")
NAMES = ("dcgan", "stylegan")


def race(a, out):
    """One race into `out`: {name: {steps, fid, ...}}."""
    os.makedirs(out, exist_ok=True)
    common = ["--ngf", str(a.ngf), "--ndf", str(a.ngf), "--batch", str(a.batch), "--g-ema", a.g_ema,
              "--threads", "1", "--time-limit", f"{a.seconds:g}", "--steps", "100000000",
              "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "50", "--runs-dir", out]
    runs = {"dcgan": ["--model", "dcgan"] + shlex.split(a.dcgan), "stylegan": ["--model", "stylegan"] + shlex.split(a.style)}
    lock = ["flock", "/tmp/ringgan-swift.lock", "flock", "/tmp/ringgan-cpu.lock"] if a.lock else []
    # Both runs under one lock holder, so neither starts before the machine is free.
    script = " & ".join(
        f"taskset -c {core} {shlex.join([GAN, 'train'] + common + runs[name] + ['--name', name])} > {shlex.quote(os.path.join(out, name + '.log'))} 2>&1"
        for core, name in enumerate(NAMES)) + " & wait"
    for name in NAMES:
        subprocess.run(["rm", "-rf", os.path.join(out, name)])
    print("+", script, flush=True)
    p = subprocess.run(lock + ["bash", "-c", script], cwd=ROOT)
    results = {"date": f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC"}
    for name in NAMES:
        ck_dir = os.path.join(out, name, "checkpoints")
        if p.returncode != 0 or not os.path.isdir(ck_dir) or not os.listdir(ck_dir):
            sys.exit(f"stylegan_race: the {name} run failed; see {os.path.join(out, name + '.log')}")
        ck = sorted(os.listdir(ck_dir))[-1]
        ev = subprocess.run([GAN, "evaluate", "--json", "--checkpoint", os.path.join(ck_dir, ck)],
                            cwd=ROOT, capture_output=True, text=True)
        if ev.returncode != 0:
            sys.exit(f"gan evaluate failed for {name}:\n{ev.stderr[-2000:]}")
        e = json.loads(ev.stdout.strip().splitlines()[-1])
        grids = sorted(os.listdir(os.path.join(out, name, "samples")))
        subprocess.run(["cp", os.path.join(out, name, "samples", grids[-1]), os.path.join(out, f"{name}.png")], check=True)
        results[name] = {"steps": e["step"], "fid": e["fid"], "classifier_score": e["classifier_score"],
                         "mode_entropy": e["mode_entropy"], "floor": e["real_floor_fid"]}
    results["ratio"] = results["stylegan"]["fid"] / results["dcgan"]["fid"]
    print(f"race: dcgan {results['dcgan']['steps']:,} steps FID {results['dcgan']['fid']:.2f}, "
          f"stylegan {results['stylegan']['steps']:,} steps FID {results['stylegan']['fid']:.2f}, "
          f"ratio {results['ratio']:.2f}x", flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--g-ema", default="0.999")
    ap.add_argument("--style", default="--preset style-fast", help="extra flags for the StyleGAN run only")
    ap.add_argument("--dcgan", default="--preset fast", help="extra flags for the DCGAN run only")
    ap.add_argument("--lock", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "stylegan-race"))
    ap.add_argument("--no-publish", action="store_true")
    a = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("stylegan_race: needs 2 cores (one per run)")
    if a.rounds < 1:
        sys.exit("stylegan_race: --rounds must be at least 1")
    t0 = time.time()
    races = [race(a, os.path.join(a.out, f"race{i + 1}")) for i in range(a.rounds)]
    med_fid = {n: statistics.median(r[n]["fid"] for r in races) for n in NAMES}
    med_steps = {n: statistics.median(r[n]["steps"] for r in races) for n in NAMES}
    ratio = statistics.median(r["ratio"] for r in races)
    floor = races[-1]["dcgan"]["floor"]
    json.dump({"seconds": a.seconds, "wall": time.time() - t0, "shared": f"--ngf {a.ngf} --ndf {a.ngf} --batch {a.batch} --g-ema {a.g_ema}",
               "style": a.style, "dcgan_flags": a.dcgan, "races": races, "median_ratio": ratio},
              open(os.path.join(a.out, "results.json"), "w"), indent=1)
    lines = ["| race | `dcgan` steps | `dcgan` FID | `stylegan` steps | `stylegan` FID | ratio |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(races):
        lines.append(f"| {i + 1} | {r['dcgan']['steps']:,} | {r['dcgan']['fid']:.2f} | {r['stylegan']['steps']:,} | "
                     f"{r['stylegan']['fid']:.2f} | {r['ratio']:.2f}x |")
    if len(races) > 1:
        lines.append(f"| median | {med_steps['dcgan']:,.0f} | {med_fid['dcgan']:.2f} | {med_steps['stylegan']:,.0f} | "
                     f"{med_fid['stylegan']:.2f} | **{ratio:.2f}x** |")
    table = "\n".join(lines)
    met = sum(r["ratio"] <= 1.5 for r in races)
    verdict = (f"StyleGAN's FID is {ratio:.2f}x DCGAN's{' (median of the races)' if len(races) > 1 else ''}: the goal of "
               f"within 1.5x is {'met' if ratio <= 1.5 else 'not met'} ({met} of {len(races)} races within 1.5x); "
               f"real-vs-real floor {floor:.2f}.")
    print("\n" + table + "\n\n" + verdict)
    if a.no_publish:
        return
    last = os.path.join(a.out, f"race{len(races)}")
    for name in NAMES:
        subprocess.run(["cp", os.path.join(last, f"{name}.png"), os.path.join(ROOT, "docs", "images", f"race-{name}.png")], check=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    section = (f"## StyleGAN against DCGAN at the same wall clock (`python3 bench/stylegan_race.py`)\n\n"
               f"{races[0]['date']} to {races[-1]['date']}, {cpu}: {len(races)} race(s). In each, both runs started "
               f"together, each pinned to its own core with one engine thread and `--time-limit {a.seconds:g}` (counted "
               f"from each process's start){', the machine otherwise idle (both locks held)' if a.lock else ''}. Shared "
               f"flags (they override the presets): `--ngf {a.ngf} --ndf {a.ngf} --batch {a.batch} --g-ema {a.g_ema}`; "
               f"DCGAN's own flags: `{a.dcgan or '(none)'}`; StyleGAN's: `{a.style or '(none)'}`. Scored by "
               f"`gan evaluate` (2,000 samples against the 2,000-digit class-stratified reference).\n\n"
               f"{table}\n\n{verdict}\n\nThe last race's grids:\n\n"
               f"| `dcgan` | `stylegan` |\n|---|---|\n| ![](../docs/images/race-dcgan.png) | ![](../docs/images/race-stylegan.png) |\n\n")
    replace_section(os.path.join(ROOT, "bench", "RESULTS.md"), "## StyleGAN against DCGAN at the same wall clock", section)


if __name__ == "__main__":
    main()
