#!/usr/bin/env python3
"""The collapse warning against real runs: trains README recipes for a few hundred steps with a
grid every 100 steps, and reports each grid's spread across its latents (the TensorBoard scalar
samples/latent_spread: per-pixel standard deviation across the grid's 64 latents) and whether
`gan train` warned "samples barely depend on the latent".

  python3 bench/collapse_check.py [--steps 600] [--recipes stylegan-tutorial,stylegan,dcgan,style-fast]
                                  [--bin .build/release] [--results bench/RESULTS.md]

Exits 1 unless the warning fires on the tutorial's StyleGAN settings (the collapsed recipe the
default was before issue 27, kept as the test case) and on none of the other recipes.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tutorial's StyleGAN settings, the default before issue 27: it collapses to one shape and is
# kept here as the case the warning must fire on (EXPECT_WARNING); every other recipe must not warn.
TUTORIAL_STYLEGAN = ["--model", "stylegan", "--mapping-layers", "8", "--style-mixing-prob", "0.5", "--ngf", "64", "--ndf", "64",
                     "--batch", "64", "--lr", "2e-4", "--g-ema", "0"]
EXPECT_WARNING = {"stylegan-tutorial"}
RECIPES = {
    "stylegan": ["--model", "stylegan"],
    "stylegan-tutorial": TUTORIAL_STYLEGAN,
    "dcgan": ["--model", "dcgan", "--loss", "bce"],
    "mlp-wgan-gp": ["--model", "mlp", "--loss", "wgan-gp"],
    "sndcgan-hinge": ["--model", "sndcgan", "--loss", "hinge", "--lr-d", "4e-4", "--lr-g", "1e-4", "--beta1", "0", "--beta2", "0.9"],
    "dcgan-progressive": ["--model", "dcgan", "--progressive"],
    "style-fast": ["--preset", "style-fast"],
}


def run(name, args, steps, bin_dir, runs):
    cmd = [os.path.join(bin_dir, "gan"), "train", *args, "--steps", str(steps), "--sample-every", "100",
           "--checkpoint-every", "0", "--runs-dir", runs, "--name", name, "--log-level", "debug"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    out = p.stdout + p.stderr
    spreads = [(int(s), float(v)) for s, v in _pairs(out)]
    warned = [int(m) for m in re.findall(r"mode collapse\? .*? at step (\d+)", out)]
    return p.returncode, spreads, warned, " ".join(cmd[1:]), out


def _pairs(out):
    pairs = []
    for line in out.splitlines():
        if "sample grid written" not in line:
            continue
        s = re.search(r"step=(\d+)", line)
        v = re.search(r"latent_spread=([0-9.]+)", line)
        if s and v:
            pairs.append((s.group(1), v.group(1)))
    return pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--recipes", default="stylegan-tutorial,stylegan,dcgan,style-fast")
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for name in a.recipes.split(","):
            rc, spreads, warned, cmd, out = run(name, RECIPES[name], a.steps, a.bin, runs)
            if rc != 0:
                print(out[-2000:], file=sys.stderr)
                sys.exit(f"collapse_check: {name} exited {rc}")
            rows.append((name, cmd, spreads, warned))
            print(name, spreads, "warned at", warned, flush=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    steps = sorted({s for _, _, sp, _ in rows for s, _ in sp})
    md = [f"{now}, `python3 bench/collapse_check.py --steps {a.steps} --recipes {a.recipes}` (release build, 2 cores)."
          " Each grid's spread across its 64 latents (per-pixel standard deviation; the TensorBoard scalar"
          " `samples/latent_spread`), and the step at which `gan train` warned (three grids in a row under 0.05).\n",
          "| recipe (`gan train ...`) | " + " | ".join(f"step {s}" for s in steps) + " | warned at |",
          "|---|" + "---|" * (len(steps) + 1)]
    for name, cmd, sp, warned in rows:
        d = dict(sp)
        md.append(f"| `{' '.join(RECIPES[name])}` | " + " | ".join(f"{d[s]:.3f}" if s in d else "-" for s in steps)
                  + f" | {', '.join(map(str, warned)) or 'no warning'} |")
    text = "\n".join(md) + "\n"
    print(text)
    heading = "## The collapse warning (`python3 bench/collapse_check.py`)"
    replace_section(a.results, heading, heading + "\n\n" + text)
    # The check itself: the collapsed recipe warns, the working ones do not.
    wrong = [f"{name}: {'no warning' if not warned else 'warned at ' + str(warned)}" for name, _, _, warned in rows
             if bool(warned) != (name in EXPECT_WARNING)]
    if wrong:
        sys.exit("collapse_check: FAILED: " + "; ".join(wrong))
    print("collapse_check: the warning fired on " + (", ".join(n for n, *_ in rows if n in EXPECT_WARNING) or "nothing expected")
          + " and on none of the others")


if __name__ == "__main__":
    main()
