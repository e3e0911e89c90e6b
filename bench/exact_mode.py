#!/usr/bin/env python3
"""Exact mode (issue 28), measured with the release binaries.

  python3 bench/exact_mode.py matrix [--steps 50] [--workers 2,4,8]
      every recipe below trained by `gan train --exact` (2 engine threads) and by
      `gan-coordinator --exact --spawn --workers N` (1 thread per worker); the checkpoints of
      each step saved are compared byte for byte (cmp) with the single process's.
  python3 bench/exact_mode.py cost [--steps 40] [--workers 1,2,4] [--rounds 2]
      the default mode against --exact at N spawned workers on this machine: median step
      seconds (metrics.jsonl, steps after the first 10) and MB sent per worker per step (the
      worker's ring summary), for the mlp and the README's dcgan.
  python3 bench/exact_mode.py kernels
      the same exact-mode run on each x86 OpenBLAS kernel this CPU can run
      (OPENBLAS_CORETYPE): do the kernels agree bit for bit?

Results go to stdout as a markdown table and to bench/exact-<what>.json.
"""
import argparse, hashlib, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("RINGGAN_BIN", os.path.join(ROOT, ".build", "release"))
DATA = os.path.join(ROOT, "data", "mnist-5k")

RECIPES = {
    "mlp (bce)": ["--model", "mlp"],
    "dcgan 32 (bce)": ["--model", "dcgan", "--ngf", "32", "--ndf", "32"],
    "dcgan 32 (wgan-gp)": ["--model", "dcgan", "--ngf", "32", "--ndf", "32", "--loss", "wgan-gp"],
    "stylegan 32 (bce)": ["--model", "stylegan", "--ngf", "32", "--ndf", "32"],
    "progressive dcgan 32": ["--model", "dcgan", "--ngf", "32", "--ndf", "32", "--progressive"],
}


def run(cmd, cwd, env=None, timeout=3600):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(cmd, cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}")
    return p.stdout


def common(name, steps, extra):
    return extra + ["--steps", str(steps), "--batch", "64", "--data", DATA, "--runs-dir", "runs", "--name", name,
                    "--seed", "5", "--sample-every", "0", "--checkpoint-every", "25", "--keep", "100"]


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def matrix(a):
    work = tempfile.mkdtemp(prefix="ringgan-exact-")
    rows = []
    for label, flags in RECIPES.items():
        t0 = time.time()
        run([f"{BIN}/gan", "train", "--threads", "2", "--exact"] + common("single", a.steps, flags), work)
        ref_dir = os.path.join(work, "runs", "single", "checkpoints")
        ckpts = sorted(os.listdir(ref_dir))
        ref = {c: digest(os.path.join(ref_dir, c)) for c in ckpts}
        row = {"recipe": label, "checkpoints": ckpts, "sha256": ref[ckpts[-1]][:16], "single_s": round(time.time() - t0, 1), "workers": {}}
        for n in a.workers:
            t0 = time.time()
            name = f"w{n}"
            run([f"{BIN}/gan-coordinator", "--workers", str(n), "--spawn", "--exact"] + common(name, a.steps, flags), work)
            d = os.path.join(work, "runs", name, "checkpoints")
            same = all(os.path.exists(os.path.join(d, c)) and digest(os.path.join(d, c)) == ref[c] for c in ckpts)
            row["workers"][n] = {"identical": same, "seconds": round(time.time() - t0, 1)}
            shutil.rmtree(os.path.join(work, "runs", name))
        shutil.rmtree(os.path.join(work, "runs", "single"))
        rows.append(row)
        print(json.dumps(row), flush=True)
    shutil.rmtree(work)
    print(f"\n| recipe ({a.steps} steps, batch 64, 8 micro-batches) | checkpoints compared | final sha256 | " +
          " | ".join(f"{n} workers" for n in a.workers) + " |")
    print("|---|---|---|" + "---|" * len(a.workers))
    for r in rows:
        print(f"| {r['recipe']} | {', '.join(c.replace('.rgan', '') for c in r['checkpoints'])} | `{r['sha256']}` | " +
              " | ".join("identical" if r["workers"][n]["identical"] else "**DIFFERENT**" for n in a.workers) + " |")
    with open(os.path.join(ROOT, "bench", "exact-matrix.json"), "w") as f:
        json.dump({"steps": a.steps, "rows": rows}, f, indent=1)
    return all(w["identical"] for r in rows for w in r["workers"].values())


def measure(work, name, n, flags, steps):
    run([f"{BIN}/gan-coordinator", "--workers", str(n), "--spawn"] + flags + common(name, steps, []), work)
    lines = [json.loads(l) for l in open(os.path.join(work, "runs", name, "metrics.jsonl"))]
    secs = [l["step_seconds"] for l in lines if l["step"] > 10]
    mb = 0.0
    if n > 1:
        log = open(os.path.join(work, "runs", name, "logs", "rank-0.log")).read()
        m = re.findall(r"ring, per step over \d+ step\(s\): .*?; ([0-9.]+) MB sent", log)
        mb = float(m[-1]) if m else float("nan")
    shutil.rmtree(os.path.join(work, "runs", name))
    return statistics.median(secs), mb


def cost(a):
    work = tempfile.mkdtemp(prefix="ringgan-exact-cost-")
    configs = {"mlp": ["--model", "mlp"], "dcgan 32 (README)": ["--model", "dcgan"]}
    out = []
    for label, flags in configs.items():
        for n in a.workers:
            res = {"default": [], "exact": []}
            for r in range(a.rounds):
                for mode in ("default", "exact"):
                    extra = flags + (["--exact"] if mode == "exact" else []) + ["--codec", a.codec]
                    res[mode].append(measure(work, f"{mode}{n}r{r}", n, extra, a.steps))
            d = statistics.median(s for s, _ in res["default"]); e = statistics.median(s for s, _ in res["exact"])
            dm = statistics.median(m for _, m in res["default"]); em = statistics.median(m for _, m in res["exact"])
            row = {"config": label, "workers": n, "default_s": d, "exact_s": e, "ratio": e / d, "default_mb": dm, "exact_mb": em}
            out.append(row)
            print(json.dumps(row), flush=True)
    shutil.rmtree(work)
    print(f"\n| config | workers | default step | --exact step | exact / default | MB sent per step: default | --exact |")
    print("|---|---|---|---|---|---|---|")
    for r in out:
        mb = lambda x: "-" if r["workers"] == 1 else f"{x:.2f}"
        print(f"| {r['config']} | {r['workers']} | {r['default_s'] * 1000:.0f} ms | {r['exact_s'] * 1000:.0f} ms | {r['ratio']:.2f}x | {mb(r['default_mb'])} | {mb(r['exact_mb'])} |")
    with open(os.path.join(ROOT, "bench", "exact-cost.json"), "w") as f:
        json.dump({"steps": a.steps, "rounds": a.rounds, "codec": a.codec, "rows": out}, f, indent=1)
    return True


def kernels(a):
    work = tempfile.mkdtemp(prefix="ringgan-exact-kernels-")
    found = {}
    for core in a.cores:
        env = {"OPENBLAS_CORETYPE": core}
        info = run([f"{BIN}/gan", "info"], work, env)
        m = re.search(r"openblas core:\s+(\S+)", info)
        actual = m.group(1) if m else "?"
        run([f"{BIN}/gan", "train", "--threads", "2", "--exact"] + common(core, a.steps, ["--model", "dcgan", "--ngf", "32", "--ndf", "32"]), work, env)
        d = os.path.join(work, "runs", core, "checkpoints")
        found[core] = (actual, digest(os.path.join(d, sorted(os.listdir(d))[-1])))
        print(core, found[core], flush=True)
    shutil.rmtree(work)
    print("\n| OPENBLAS_CORETYPE | kernels loaded | final checkpoint sha256 |\n|---|---|---|")
    for core, (actual, h) in found.items():
        print(f"| {core} | {actual} | `{h[:16]}` |")
    with open(os.path.join(ROOT, "bench", "exact-kernels.json"), "w") as f:
        json.dump({"steps": a.steps, "kernels": found}, f, indent=1)
    return True


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["matrix", "cost", "kernels"])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--workers", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--codec", default="shuffle-zstd")
    ap.add_argument("--cores", default="Zen,Haswell,Sandybridge,Nehalem,Prescott")
    a = ap.parse_args()
    a.cores = a.cores.split(",")
    if a.what == "matrix":
        a.steps = a.steps or 50; a.workers = [int(x) for x in (a.workers or "2,4,8").split(",")]
        sys.exit(0 if matrix(a) else 1)
    if a.what == "cost":
        a.steps = a.steps or 40; a.workers = [int(x) for x in (a.workers or "1,2,4").split(",")]
        sys.exit(0 if cost(a) else 1)
    a.steps = a.steps or 20
    sys.exit(0 if kernels(a) else 1)
