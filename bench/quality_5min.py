#!/usr/bin/env python3
"""Best digits in five minutes: RingGAN's `gan train --preset fast` against the tutorial's PyTorch
models trained with the tutorial's loop for the same wall-clock time on the same machine, all
scored by `gan evaluate` (the same digit classifier, the same class-stratified reference of real
digits, the same real-vs-real floor).

  python3 bench/quality_5min.py [--seconds 300] [--threads 2] [--runs mlp,dcgan,ringgan,cluster]
                                [--lock] [--out runs/quality-5min]

Each run is one whole process counted from its start (Python's import of torch included, as
RingGAN's start-up is): bench/torch_train.py --time-limit for PyTorch (the MLP GAN of the MNIST
example at 28x28, and DCGAN at 32x32: the tutorial's DCGAN one stage shorter, as RingGAN's
default; BCE, Adam(2e-4, 0.5, 0.999), batch 64), and `gan train --preset fast` (the preset's own
5-minute limit, or --seconds) for RingGAN. After the time is up each writes 2,000 samples:
PyTorch's as .npy in eval mode and in train mode (BatchNorm's running or batch statistics; the
better of the two is PyTorch's figure), RingGAN's from its final checkpoint. `gan evaluate`
scores them all against the same reference. With --lock every timed run holds this machine's
two locks (/tmp/ringgan-swift.lock, /tmp/ringgan-cpu.lock), taken before the process starts, so
the clock runs on an idle machine. Writes <out>/results.json, <out>/<run>.png (8x8 grids) and
prints a Markdown table.
"""
import argparse
import datetime
import json
import os
import struct
import subprocess
import sys
import time
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_md import replace_section  # noqa: E402
GAN = os.path.join(ROOT, ".build", "release", "gan")
COORDINATOR = os.path.join(ROOT, ".build", "release", "gan-coordinator")
LOCKS = ["flock", "/tmp/ringgan-swift.lock", "flock", "/tmp/ringgan-cpu.lock"]


def write_png(path, pixels, width, height):
    """8-bit grayscale PNG from a list of rows of ints."""
    raw = b"".join(b"\x00" + bytes(r) for r in pixels)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def grid_png(npy_path, png_path, nrow=8, pad=2):
    """An 8x8 grid of the first 64 images, laid out as RingGAN's sample grids (2-pixel padding)."""
    import numpy as np
    a = np.load(npy_path)[:nrow * nrow, 0]
    s = a.shape[-1]
    side = nrow * (s + pad) + pad
    g = np.zeros((side, side), dtype=np.uint8)
    for i, img in enumerate(a):
        r, c = divmod(i, nrow)
        y, x = pad + r * (s + pad), pad + c * (s + pad)
        g[y:y + s, x:x + s] = np.clip((img + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    write_png(png_path, g.tolist(), side, side)


def run(cmd, lock, log):
    full = (LOCKS if lock else []) + cmd
    print("+", " ".join(full), flush=True)
    with open(log, "w") as f:
        p = subprocess.run(full, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    text = open(log).read()
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    return text


def evaluate(args):
    out = subprocess.run([GAN, "evaluate", "--json"] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gan evaluate {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default="mlp,dcgan,ringgan,cluster")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--lock", action="store_true", help="hold the machine's two locks during each timed run")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "quality-5min"))
    ap.add_argument("--no-publish", action="store_true", help="do not write bench/RESULTS.md and docs/images/five-min-*.png")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results_path = os.path.join(a.out, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}
    for name in [n for n in a.runs.split(",") if n]:   # --runs "" re-publishes the saved results
        log = os.path.join(a.out, f"{name}.log")
        if name in ("mlp", "dcgan"):
            eval_npy, train_npy = os.path.join(a.out, f"{name}-eval.npy"), os.path.join(a.out, f"{name}-train.npy")
            text = run([sys.executable, os.path.join(ROOT, "bench", "torch_train.py"), "--model", name, "--steps", "100000000",
                        "--time-limit", str(a.seconds), "--threads", str(a.threads), "--samples", "2000",
                        "--samples-npy", eval_npy, "--train-mode-npy", train_npy], a.lock, log)
            info = json.loads(text.strip().splitlines()[-1])
            scores = {mode: evaluate(["--npy", path]) for mode, path in (("eval", eval_npy), ("train", train_npy))}
            best = min(scores, key=lambda m: scores[m]["fid"])
            grid_png(eval_npy if best == "eval" else train_npy, os.path.join(a.out, f"{name}.png"))
            results[name] = {"system": "PyTorch " + __import__("torch").__version__, "steps": info["steps"],
                             "train_seconds": info["train_seconds"], "images": info["images"],
                             "fid": scores[best]["fid"], "fid_mode": best,
                             "fid_eval_mode": scores["eval"]["fid"], "fid_train_mode": scores["train"]["fid"],
                             "classifier_score": scores[best]["classifier_score"], "mode_entropy": scores[best]["mode_entropy"],
                             "floor": scores[best]["real_floor_fid"]}
        elif name in ("ringgan", "cluster"):
            run_name = f"quality-5min-{name}"
            run_dir = os.path.join(ROOT, "runs", run_name)
            subprocess.run(["rm", "-rf", run_dir])
            t0 = time.time()
            if name == "ringgan":
                run([GAN, "train", "--preset", a.preset, "--time-limit", str(a.seconds), "--threads", str(a.threads),
                     "--name", run_name, "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "50"], a.lock, log)
            else:   # the same preset on the local cluster: 4 workers of one engine thread on these cores
                run([COORDINATOR, "--workers", "4", "--spawn", "--worker-threads", "1", "--preset", a.preset,
                     "--time-limit", str(a.seconds), "--name", run_name, "--sample-every", "0", "--checkpoint-every", "0",
                     "--log-every", "50", "--port", "29561"], a.lock, log)
            wall = time.time() - t0
            ckpts = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
            step = int(ckpts[-1].split("_")[1].split(".")[0])
            score = evaluate(["--checkpoint", os.path.join(run_dir, "checkpoints", ckpts[-1])])
            grids = sorted(os.listdir(os.path.join(run_dir, "samples")))
            subprocess.run(["cp", os.path.join(run_dir, "samples", grids[-1]), os.path.join(a.out, f"{name}.png")], check=True)
            config = json.load(open(os.path.join(run_dir, "config.json")))
            results[name] = {"system": f"RingGAN --preset {a.preset}" + (" (4 workers)" if name == "cluster" else ""), "steps": step, "train_seconds": wall,
                             "images": step * config.get("batchSize", 64) * config.get("nCritic", 1), "fid": score["fid"],
                             "classifier_score": score["classifier_score"], "mode_entropy": score["mode_entropy"],
                             "floor": score["real_floor_fid"], "config": config}
        else:
            sys.exit(f"unknown run '{name}'")
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1)
    lines = ["| run | steps in the time | seconds (process start to last step) | FID | classifier score | mode entropy |",
             "|---|---|---|---|---|---|"]
    for name in ("mlp", "dcgan", "ringgan", "cluster"):
        if name in results:
            r = results[name]
            extra = f" ({r['fid_mode']} mode; eval {r['fid_eval_mode']:.2f}, train {r['fid_train_mode']:.2f})" if "fid_mode" in r else ""
            label = {"mlp": "PyTorch, tutorial MLP GAN (28x28)", "dcgan": "PyTorch, tutorial DCGAN (32x32)",
                     "ringgan": f"RingGAN `--preset {a.preset}`",
                     "cluster": f"RingGAN `gan-coordinator --workers 4 --spawn --preset {a.preset}`"}[name]
            lines.append(f"| {label} | {r['steps']} | {r['train_seconds']:.1f} | **{r['fid']:.2f}**{extra} | "
                         f"{r['classifier_score']:.3f} | {r['mode_entropy']:.3f} |")
    table = "\n".join(lines)
    print("\n" + table)
    verdict = ""
    if "ringgan" in results and ("mlp" in results or "dcgan" in results):
        best = min((results[n] for n in ("mlp", "dcgan") if n in results), key=lambda r: r["fid"])
        ratio = results["ringgan"]["fid"] / best["fid"]
        verdict = (f"RingGAN's FID is {ratio:.3f}x the better PyTorch model's (goal: at most 0.5x: "
                   f"{'met' if ratio <= 0.5 else 'not met'}); real-vs-real floor {results['ringgan']['floor']:.2f}.")
        if "cluster" in results:
            verdict += (f" The same preset on the local cluster (4 workers of one thread on the same cores): FID "
                        f"{results['cluster']['fid']:.2f}, {results['cluster']['fid'] / best['fid']:.3f}x.")
        print(verdict)
    if a.no_publish:
        return
    for name in ("mlp", "dcgan", "ringgan", "cluster"):
        if os.path.exists(os.path.join(a.out, f"{name}.png")):
            subprocess.run(["cp", os.path.join(a.out, f"{name}.png"), os.path.join(ROOT, "docs", "images", f"five-min-{name}.png")], check=True)
    cfg = results.get("ringgan", {}).get("config", {})
    recipe = ", ".join(f"{k} {cfg[k]}" for k in ("model", "imageSize", "ngf", "ndf", "batchSize", "lrG", "lrD", "beta1", "beta2", "gEMA") if k in cfg)
    section = (f"## Best digits in five minutes (`bash bench/quality_5min.sh`)\n\n"
               f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {a.threads} threads each "
               f"(`torch.set_num_threads({a.threads})`, `gan train --threads {a.threads}`), {a.seconds:g} s per run counted "
               f"from the process's start{', each run alone on the machine (both locks held)' if a.lock else ''}. "
               f"Every FID by `gan evaluate` on our digit classifier's features: 2,000 samples against the 2,000-digit "
               f"class-stratified reference (200 per digit, seed 20240601); PyTorch's samples as .npy (`gan evaluate --npy`), "
               f"in eval and train mode, the better one counted. RingGAN's recipe: {recipe}.\n\n"
               f"{table}\n\n{verdict}\n")
    replace_section(os.path.join(ROOT, "bench", "RESULTS.md"), "## Best digits in five minutes", section)

if __name__ == "__main__":
    main()
