#!/usr/bin/env python3
"""The recipe matrix (issue 27): every training line the README and docs/TRAINING.md show, run as
written (at its own step count and time limit), scored by `gan evaluate` (FID against the
class-stratified reference with its real-vs-real floor, classifier score, mode entropy), with the
spread of its last grid across latents (`samples/latent_spread`), whether `gan train` warned of
collapse, and the last grid copied to docs/images/matrix-<name>.png to be looked at.

  python3 bench/recipe_matrix.py [--scale 1.0] [--only NAME,...] [--bin .build/release]
                                 [--results bench/RESULTS.md] [--no-write]

--scale S multiplies every step count and time limit (0.05 checks the script in a few minutes;
the matrix itself is --scale 1, about 75 minutes on 2 cores). The lines are read from the files,
so a recipe added to the docs is a row here; the cluster's line is README's quick start one.
Lines with a time limit run first (their quality depends on having the machine to themselves;
the others' only on their step count). Each finished row is kept in bench/recipe-matrix.json
(at --scale 1), so `--only` re-runs some rows and the table is written from all of them: into
bench/RESULTS.md and into docs/TRAINING.md ("The recipe matrix").
"""
import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["README.md", "docs/TRAINING.md"]
# Lines that show a behaviour, not a recipe (the Ctrl-C line is the dcgan 2,000-step line again).
SKIP = ("Ctrl-C",)
CACHE = os.path.join(ROOT, "bench", "recipe-matrix.json")
DOC = os.path.join(ROOT, "docs", "TRAINING.md")


def recipes():
    """(name, executable, args) for every `gan train` / `gan-coordinator ... --spawn` line of the
    first sh block of each source."""
    out, seen = [], set()
    for src in SOURCES:
        text = open(os.path.join(ROOT, src)).read()
        for line in text.splitlines():
            if not re.match(r"^gan(-coordinator)? ", line) or any(s in line for s in SKIP):
                continue
            cmd = line.split("#")[0].strip()
            words = shlex.split(cmd)
            if words[0] == "gan" and words[1] != "train":
                continue
            if words[0] == "gan-coordinator" and "--spawn" not in words:
                continue
            key = " ".join(words)
            if key in seen:
                continue
            seen.add(key)
            args = words[1:] if words[0] == "gan-coordinator" else words[2:]
            label = ("cluster " if words[0] == "gan-coordinator" else "") + " ".join(
                w for w in args if not w.startswith("--") or w == "--progressive")
            name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
            out.append((f"{len(out) + 1:02d}-{name}"[:48], words[0], args, key))
    return out


def scaled(args, scale):
    """--steps and --time-limit multiplied by scale (a preset's own budget: --time-limit given)."""
    a = list(args)
    def dur(v):
        m = re.fullmatch(r"(\d+)([smh]?)", v)
        secs = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        return f"{max(1, int(secs * scale))}s"
    if "--steps" in a:
        i = a.index("--steps") + 1
        a[i] = str(max(2, int(int(a[i]) * scale)))
    if "--time-limit" in a:
        i = a.index("--time-limit") + 1
        a[i] = dur(a[i])
    elif "--preset" in a and scale != 1:
        a += ["--time-limit", dur("300")]
    if "--steps" not in a and "--preset" not in a:
        a += ["--steps", str(max(2, int(1000 * scale)))]
    return a


def grid_spread(path, n=8, pad=2):
    """The spread across latents read back from an 8x8 grid PNG (tiles S x S, `pad` pixels
    apart, values 0-255 for [-1, 1]): for a cluster run, whose rank 0 logs it only at debug level.
    Within 0.004 of the logged value (8-bit rounding)."""
    import numpy as np
    from PIL import Image
    g = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0 * 2 - 1
    size = (g.shape[0] - pad) // n - pad
    tiles = np.stack([g[pad + r * (size + pad):pad + r * (size + pad) + size, pad + c * (size + pad):pad + c * (size + pad) + size]
                      for r in range(n) for c in range(n)])
    return float(tiles.std(axis=0).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    a = ap.parse_args()
    rows = []
    only = [o for o in a.only.split(",") if o]
    images = os.path.join(ROOT, "docs", "images")
    cached = json.load(open(CACHE)) if os.path.exists(CACHE) and a.scale == 1 else {}
    timed = lambda r: 0 if ("--time-limit" in r[2] or "--preset" in r[2]) else 1
    order = [r[0] for r in recipes()]
    with tempfile.TemporaryDirectory() as runs:
        for name, exe, args, shown in sorted(recipes(), key=timed):
            if only and not any(o in name for o in only):
                continue
            run_args = scaled(args, a.scale)
            cmd = [os.path.join(a.bin, exe)] + ([] if exe == "gan-coordinator" else ["train"]) + run_args + [
                "--runs-dir", runs, "--name", name, "--log-level", "debug"]
            if exe == "gan-coordinator":
                cmd += ["--port", "0"]
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            secs = time.time() - t0
            out = p.stdout + p.stderr
            if p.returncode != 0:
                print(out[-3000:], file=sys.stderr)
                sys.exit(f"recipe_matrix: {shown} exited {p.returncode}")
            run = os.path.join(runs, name)
            rank0 = os.path.join(run, "logs", "rank-0.log")   # a cluster run: rank 0 writes the grids
            if os.path.exists(rank0):
                out += open(rank0).read()
            spreads = re.findall(r"latent_spread=([0-9.]+)", out)
            warned = bool(re.search(r"mode collapse\?", out))
            ckpts = sorted(os.listdir(os.path.join(run, "checkpoints")))
            grids = sorted(os.listdir(os.path.join(run, "samples")))
            ev = subprocess.run([os.path.join(a.bin, "gan"), "evaluate", "--checkpoint", os.path.join(run, "checkpoints", ckpts[-1]),
                                 "--json"], capture_output=True, text=True, cwd=ROOT)
            if ev.returncode != 0:
                sys.exit(f"recipe_matrix: evaluate of {shown}: {ev.stderr[-2000:]}")
            score = json.loads(ev.stdout.strip().splitlines()[-1])
            step = int(re.search(r"step_(\d+)", ckpts[-1]).group(1))
            image = f"matrix-{name}.png"
            if not a.no_write:
                shutil.copy(os.path.join(run, "samples", grids[-1]), os.path.join(images, image))
            if not spreads:
                spreads = [str(grid_spread(os.path.join(run, "samples", grids[-1])))]
            row = dict(name=name, shown=shown, ran=" ".join(run_args), steps=step, seconds=secs, fid=score["fid"],
                       floor=score["real_floor_fid"], cls=score["classifier_score"], entropy=score["mode_entropy"],
                       spread=float(spreads[-1]) if spreads else float("nan"), warned=warned, image=image)
            row["when"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            rows.append(row)
            print(json.dumps(row), flush=True)
            if a.scale == 1 and not a.no_write:
                cached[shown] = row
                # Rows of lines the docs no longer show go (their images too).
                current = {r[3] for r in recipes()}
                for gone in [k for k in cached if k not in current]:
                    old = os.path.join(images, cached.pop(gone)["image"])
                    if os.path.exists(old):
                        os.remove(old)
                with open(CACHE, "w") as f:
                    json.dump(cached, f, indent=1)
    if a.scale == 1 and not a.no_write:
        # The table from every row of the current lines (this run's and the kept ones').
        by_shown = {r["shown"]: r for r in rows}
        rows = [by_shown.get(shown) or cached[shown] for _, _, _, shown in recipes() if shown in by_shown or shown in cached]
    else:
        rows.sort(key=lambda r: order.index(r["name"]))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    days = sorted({r.get("when", now)[:10] for r in rows})
    md = [f"{', '.join(days) if a.scale == 1 else now}, `python3 bench/recipe_matrix.py --scale {a.scale:g}` (release build, 2 cores): every training line of the "
          "README and docs/TRAINING.md as written" + ("" if a.scale == 1 else f", its steps and time limits times {a.scale:g}")
          + "; FID, classifier score and mode entropy by `gan evaluate` (2,000 samples against the stratified reference; "
          "floor: real against real), the last grid's spread across its 64 latents, and the collapse warning.\n",
          "| line | steps | s | FID (floor) | classifier score | mode entropy | spread | collapse warning | last grid |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| `{r['shown']}` | {r['steps']} | {r['seconds']:.0f} | {r['fid']:.2f} ({r['floor']:.2f}) | {r['cls']:.3f} | "
                  f"{r['entropy']:.3f} | {'-' if r['spread'] != r['spread'] else format(r['spread'], '.3f')} | {'warned' if r['warned'] else 'no'} | ![](../docs/images/{r['image']}) |")
    text = "\n".join(md) + "\n"
    print(text)
    if not a.no_write:
        heading = "## The recipe matrix (`python3 bench/recipe_matrix.py`)"
        replace_section(a.results, heading, heading + "\n\n" + text)
        if a.scale == 1:
            # docs/TRAINING.md's copy (its images are beside it: images/..., not ../docs/images/...).
            start = "<!-- recipe-matrix:start -->"
            end = "<!-- recipe-matrix:end -->"
            doc = open(DOC).read()
            if start in doc and end in doc:
                body = text.replace("../docs/images/", "images/")
                doc = doc[:doc.index(start) + len(start)] + "\n" + body + doc[doc.index(end):]
                with open(DOC, "w") as f:
                    f.write(doc)


if __name__ == "__main__":
    main()
