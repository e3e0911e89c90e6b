#!/usr/bin/env python3
"""PyTorch (CPU) reference figures for the RingGAN engine benchmark.

What it measures (float32, inputs from torch.randn, on `--threads` intra-op
threads via torch.set_num_threads):

  matmul       square n x n @ n x n for n in 256, 512, 1024, 2048;
               GFLOPS with 2*n^3 useful flops.
  conv         conv2d / conv_transpose2d at the DCGAN layer shapes (batch 64,
               MNIST at 64x64 so nc=1, ngf=ndf=64, kernel 4, bias=False):
               D1..D5 are the discriminator's conv2d layers, G1..G5 the
               generator's conv_transpose2d layers. Each layer is timed
               forward only (under torch.no_grad) and forward+backward (x and w
               both require grad, y.backward(g) with a fixed random g, grads
               set to None between iterations, outside the timed region).
               Useful flops are counted in "conv orientation":
                 fwd = 2 * prod(w.shape) * N * P
               where P is the number of positions on the smaller side: the
               output H*W for conv2d, the input H*W for conv_transpose2d.
               Forward+backward counts 3 * fwd (forward, input-grad,
               weight-grad). Reported as GFLOPS and milliseconds.
  elementwise  16M-element tensors, GB/s of useful traffic: add / mul
               (a+b, a*b; 3*4*n bytes), relu / tanh / leaky_relu(0.2)
               (2*4*n bytes) and copy (y.copy_(x); 2*4*n bytes). These
               out-of-place ops allocate a fresh 64 MiB result every call, as
               eager PyTorch does and as our engine does (TensorStorage is a
               posix_memalign per tensor), so page faults on the new block are
               part of the figure (they dominate it: ~5 GB/s for add against
               ~30 GB/s into a preallocated output). "elementwise_out" also
               gives the kernel-only figures: the same ops written into a
               preallocated y with the aten out= overloads (copy is the same
               in both).

Every item runs 2 untimed warm-up iterations, then `--repeats` timed ones
(time.perf_counter around each), and the MEDIAN is reported. Every item gets
the full `--repeats`: no item needed its repeats cut, since --threads 1
--repeats 7 takes ~20 s on the 2-core dev machine (torch 2.13.0+cpu; the
biggest single iterations, matmul n=2048 and the ~4.3 GFLOP conv layers'
forward+backward, take ~0.12-0.19 s each), well inside the ~60 s budget.

How the Swift bench uses it: `gan-bench` (bench/EngineBench) runs

    python3 bench/torch_engine_bench.py --threads T --repeats R --json

as a subprocess with the same thread count T it uses itself, parses the single
JSON object this prints on stdout (everything else goes to stderr), and prints
each PyTorch figure next to the engine's own figure for the same item,
together with the ratio ours / PyTorch. JSON layout:

    {"torch_version": str, "threads": int, "mkldnn": bool, "repeats": int,
     "matmul": {"256": gflops, "512": .., "1024": .., "2048": ..},
     "conv": {"D1": {"fwd_gflops": .., "fwdbwd_gflops": .., "fwd_ms": ..,
                     "fwdbwd_ms": ..}, ..., "G5": {...}},
     "elementwise": {"add": gbps, "mul": .., "relu": .., "tanh": ..,
                     "leaky_relu": .., "copy": ..},
     "elementwise_out": {same keys, into a preallocated output}}

Without --json it prints a readable table instead.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

WARMUP = 2

MATMUL_SIZES = [256, 512, 1024, 2048]
ELEMENTWISE_N = 16 * 1024 * 1024

# name: (op, x shape, w shape, stride, padding)
CONV_LAYERS = [
    ("D1", "conv2d", (64, 1, 64, 64), (64, 1, 4, 4), 2, 1),
    ("D2", "conv2d", (64, 64, 32, 32), (128, 64, 4, 4), 2, 1),
    ("D3", "conv2d", (64, 128, 16, 16), (256, 128, 4, 4), 2, 1),
    ("D4", "conv2d", (64, 256, 8, 8), (512, 256, 4, 4), 2, 1),
    ("D5", "conv2d", (64, 512, 4, 4), (1, 512, 4, 4), 1, 0),
    ("G1", "conv_transpose2d", (64, 100, 1, 1), (100, 512, 4, 4), 1, 0),
    ("G2", "conv_transpose2d", (64, 512, 4, 4), (512, 256, 4, 4), 2, 1),
    ("G3", "conv_transpose2d", (64, 256, 8, 8), (256, 128, 4, 4), 2, 1),
    ("G4", "conv_transpose2d", (64, 128, 16, 16), (128, 64, 4, 4), 2, 1),
    ("G5", "conv_transpose2d", (64, 64, 32, 32), (64, 1, 4, 4), 2, 1),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def time_median(fn, repeats, setup=None):
    """Median seconds of `repeats` timed calls of fn() after WARMUP untimed
    ones; setup() (if given) runs before each call, outside the timing."""
    for _ in range(WARMUP):
        if setup is not None:
            setup()
        fn()
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_matmul(repeats):
    out = {}
    for n in MATMUL_SIZES:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        flops = 2.0 * n ** 3
        # Allocating a @ b; out= into a preallocated c measured within ~4%.
        t = time_median(lambda: a @ b, repeats)
        out[str(n)] = flops / t / 1e9
        log("matmul %5d: %8.2f GFLOPS" % (n, out[str(n)]))
    return out


def bench_conv(repeats):
    out = {}
    for name, op, xs, ws, stride, pad in CONV_LAYERS:
        fn = F.conv2d if op == "conv2d" else F.conv_transpose2d
        x = torch.randn(xs)
        w = torch.randn(ws)
        with torch.no_grad():
            y0 = fn(x, w, stride=stride, padding=pad)
        g = torch.randn(y0.shape)
        if op == "conv2d":
            positions = y0.shape[2] * y0.shape[3]
        else:
            positions = xs[2] * xs[3]
        flops_fwd = 2.0 * w.numel() * xs[0] * positions
        flops_fb = 3.0 * flops_fwd

        def fwd():
            with torch.no_grad():
                fn(x, w, stride=stride, padding=pad)

        xg = x.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)

        def clear():
            xg.grad = None
            wg.grad = None

        def fwdbwd():
            y = fn(xg, wg, stride=stride, padding=pad)
            y.backward(g)

        t_f = time_median(fwd, repeats)
        t_fb = time_median(fwdbwd, repeats, setup=clear)
        out[name] = {
            "fwd_gflops": flops_fwd / t_f / 1e9,
            "fwdbwd_gflops": flops_fb / t_fb / 1e9,
            "fwd_ms": t_f * 1e3,
            "fwdbwd_ms": t_fb * 1e3,
        }
        log("conv %s: fwd %8.2f GFLOPS %9.3f ms | fwd+bwd %8.2f GFLOPS %9.3f ms"
            % (name, out[name]["fwd_gflops"], out[name]["fwd_ms"],
               out[name]["fwdbwd_gflops"], out[name]["fwdbwd_ms"]))
    return out


def bench_elementwise(repeats):
    """Returns (allocating figures, preallocated-output figures)."""
    n = ELEMENTWISE_N
    a = torch.randn(n)
    b = torch.randn(n)
    y = torch.empty(n)
    aten = torch.ops.aten
    # (name, allocating form, out= form, float32 words moved per element)
    items = [
        ("add", lambda: a + b, lambda: aten.add.out(a, b, out=y), 3),
        ("mul", lambda: a * b, lambda: aten.mul.out(a, b, out=y), 3),
        ("relu", lambda: torch.relu(a), lambda: aten.relu.out(a, out=y), 2),
        ("tanh", lambda: torch.tanh(a), lambda: aten.tanh.out(a, out=y), 2),
        ("leaky_relu", lambda: F.leaky_relu(a, 0.2),
         lambda: aten.leaky_relu.out(a, 0.2, out=y), 2),
        ("copy", lambda: y.copy_(a), lambda: y.copy_(a), 2),
    ]
    alloc, prealloc = {}, {}
    for name, fn, fn_out, words in items:
        nbytes = words * 4.0 * n
        alloc[name] = nbytes / time_median(fn, repeats) / 1e9
        prealloc[name] = nbytes / time_median(fn_out, repeats) / 1e9
        log("elementwise %-10s: %8.2f GB/s (out=: %8.2f GB/s)"
            % (name, alloc[name], prealloc[name]))
    return alloc, prealloc


def print_table(res):
    print("PyTorch %s, %d thread(s), mkldnn=%s, median of %d timed iterations"
          % (res["torch_version"], res["threads"], res["mkldnn"],
             res["repeats"]))
    print()
    print("matmul (n x n @ n x n)")
    print("  %6s  %10s" % ("n", "GFLOPS"))
    for n, v in res["matmul"].items():
        print("  %6s  %10.2f" % (n, v))
    print()
    print("conv, batch 64 (GFLOPS in conv orientation; fwd+bwd = 3x fwd flops)")
    print("  %-4s %-17s %10s %10s %12s %12s"
          % ("layer", "op", "fwd GF/s", "fwd ms", "fwd+bwd GF/s", "fwd+bwd ms"))
    ops = {name: op for name, op, *_ in CONV_LAYERS}
    for name, v in res["conv"].items():
        print("  %-5s %-16s %10.2f %10.3f %12.2f %12.3f"
              % (name, ops[name], v["fwd_gflops"], v["fwd_ms"],
                 v["fwdbwd_gflops"], v["fwdbwd_ms"]))
    print()
    print("elementwise, %d elements (GB/s of useful traffic)" % ELEMENTWISE_N)
    print("  %-10s  %12s  %14s" % ("op", "new result", "out= prealloc"))
    for name, v in res["elementwise"].items():
        print("  %-10s  %12.2f  %14.2f" % (name, v, res["elementwise_out"][name]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (notes go to stderr)")
    args = p.parse_args()
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    res = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "repeats": args.repeats,
    }
    res["matmul"] = bench_matmul(args.repeats)
    res["conv"] = bench_conv(args.repeats)
    res["elementwise"], res["elementwise_out"] = bench_elementwise(args.repeats)
    log("total %.1f s" % (time.perf_counter() - t0))

    if args.json:
        sys.stdout.write(json.dumps(res) + "\n")
    else:
        print_table(res)


if __name__ == "__main__":
    main()
