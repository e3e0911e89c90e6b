#!/usr/bin/env python3
"""The tutorial's DCGAN loop under torch.distributed DDP (gloo), one process per rank, for the
link benchmark (bench/link.sh) and the emulated cluster (bench/emucluster.sh): the same model
(default DCGAN 32x32, ngf = ndf = 64), loss (BCE), Adam and per-rank batch as RingGAN's workers.
Environment as torchrun sets it: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (GLOO_SOCKET_IFNAME
picks the interface).

  python3 bench/torch_ddp_gan.py --steps N --batch 64 [--threads 1]
      [--model dcgan|mlp|stylegan] [--image-size 32|64|28] [--ngf 64 --ndf 64] [--per-rank-batch B]

--model: dcgan (the tutorial's DCGAN: 3 stages at 32x32 as RingGAN's default, the tutorial's 5 at
64x64), mlp (the tutorial's MLP GAN at 28x28) or stylegan (tools/ringgan_models.py's twins of
RingGAN's StyleGAN generator and discriminator, with fresh per-block noise and no style mixing).
--per-rank-batch B: every rank takes B images (weak scaling; overrides --batch's split).
BatchNorm is plain (per-rank statistics): DDP cannot synchronise BatchNorm on a CPU
(SyncBatchNorm needs CUDA), whereas RingGAN's workers synchronise it exactly.

D and G are each wrapped in DistributedDataParallel. The discriminator step scores real and fake
images in one forward (DDP allows one forward per backward), as DDP GAN code usually does; the
generator step's backward runs through D, so DDP all-reduces D's gradients a second time (the
optimizer does not use them). Rank 0 prints one JSON line per step, flushed, and a summary.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import DCGAN3Discriminator, DCGAN3Generator, read_idx_images  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def build(model, size, ngf, ndf):
    """(G, D, data transform, whether G takes per-block noise)."""
    if model == "mlp":
        import tutorial_models as tm
        return tm.Generator(100, (1, 28, 28)), tm.Discriminator((1, 28, 28)), (lambda x: x), False
    if model == "stylegan":
        import ringgan_models as rm
        pad = (lambda x: F.pad(x, (2, 2, 2, 2), value=-1.0)) if size == 32 else \
            (lambda x: F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False))
        return rm.StyleGenerator(100, 128, 8, ngf, 1, size), rm.StyleDiscriminator(1, ndf, size), pad, True
    if size == 32:
        return DCGAN3Generator(ngf=ngf), DCGAN3Discriminator(ndf=ndf), (lambda x: F.pad(x, (2, 2, 2, 2), value=-1.0)), False
    import tutorial_models as tm
    return (tm.DCGANGenerator(100, ngf, 1), tm.DCGANDiscriminator(1, ndf),
            (lambda x: F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)), False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over the ranks)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", choices=["dcgan", "mlp", "stylegan"], default="dcgan")
    ap.add_argument("--image-size", type=int, default=None, help="28 for mlp; 32 (default) or 64 for dcgan / stylegan")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--per-rank-batch", type=int, default=None, help="images per rank (weak scaling); default --batch / ranks")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist-5k"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(rank)
    size = a.image_size or (28 if a.model == "mlp" else 32)
    torch.manual_seed(0)
    g, d, prep, noisy = build(a.model, size, a.ngf, a.ndf)
    x = prep(read_idx_images(os.path.join(a.data, "train-images-idx3-ubyte.gz")).float() / 127.5 - 1)
    b = a.per_rank_batch or a.batch // world
    G, D = DDP(g), DDP(d)
    res = [4 << i for i in range(len(g.synthesis.blocks))] if noisy else []
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    gen = torch.Generator().manual_seed(1000 + rank)
    t_prev = time.time()
    for step in range(a.steps):
        real = x[torch.randint(0, x.shape[0], (b,), generator=gen)]
        z = torch.randn(b, 100, generator=gen)
        fake = G(z, [torch.randn(b, 1, r, r, generator=gen) for r in res]) if noisy else G(z)
        opt_d.zero_grad()
        out = D(torch.cat([real, fake.detach()]))
        d_loss = bce(out[:b], torch.ones(b, 1)) + bce(out[b:], torch.zeros(b, 1))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(D(fake), torch.ones(b, 1))
        g_loss.backward()
        opt_g.step()
        now = time.time()
        if rank == 0:
            print(json.dumps({"step": step + 1, "seconds": now - t_prev, "d_loss": d_loss.item()}), flush=True)
        t_prev = now
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
