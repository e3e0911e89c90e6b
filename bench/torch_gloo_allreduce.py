#!/usr/bin/env python3
"""torch.distributed gloo all_reduce on loopback: the reference for gan-dist-bench.

    python3 bench/torch_gloo_allreduce.py --world 2 --sizes 65536,1048576 --repeats 7 --json

Spawns `--world` processes (one torch thread each) joined by gloo over 127.0.0.1, all-reduces
float32 tensors of each size in bytes (SUM), and prints the median seconds per size and the bus
bandwidth 2 (N - 1) / N * bytes / seconds (the convention NCCL's tests use), as one JSON object.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, world, sizes, repeats, port, queue):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    out = {}
    for size in sizes:
        t = torch.randn(size // 4)
        for _ in range(2):
            dist.all_reduce(t)
        times = []
        for _ in range(repeats):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        times.sort()
        out[size] = times[len(times) // 2]
    if rank == 0:
        queue.put(out)
    dist.barrier()
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--sizes", default="65536,1048576,16777216,67108864")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--port", type=int, default=29731)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, a.world, sizes, a.repeats, a.port, q)) for r in range(a.world)]
    for p in procs:
        p.start()
    res = q.get(timeout=600)
    for p in procs:
        p.join(timeout=60)
    n = a.world
    report = {"torch": torch.__version__, "world": n,
              "sizes": {str(s): {"seconds": res[s], "busbw_gbps": 2 * (n - 1) / n * s / res[s] / 1e9} for s in sizes}}
    if a.json:
        print(json.dumps(report))
    else:
        for s in sizes:
            print(f"{s:>10} B  {res[s] * 1e3:8.2f} ms  bus {report['sizes'][str(s)]['busbw_gbps']:.2f} GB/s")


if __name__ == "__main__":
    sys.exit(main())
