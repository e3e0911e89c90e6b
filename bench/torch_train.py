#!/usr/bin/env python3
"""The tutorial's PyTorch training loop, as a whole process, for the whole-run benchmark
(bench/wholerun.py times it against `gan train` with the same model, loss, batch and steps).

  python3 bench/torch_train.py --model mlp|dcgan --image-size 28|32|64 --loss bce|wgan-gp \
      --steps N --batch 64 --threads T [--data data/mnist-5k] [--seed 0]

Models are the tutorial's classes (tools/tutorial_models.py): the MLP GAN of the MNIST example and
DCGAN (ngf = ndf = 64, one channel; 3 stages at 32x32 as RingGAN's default, the tutorial's 5 at
64x64). Data: the same 4,500 training digits, scaled to [-1, 1], padded to 32 or resized
bilinearly to 64 as RingGAN does, shuffled every epoch. Losses: BCE with Adam(2e-4, 0.5, 0.999);
WGAN-GP with Adam(1e-4, 0, 0.9), lambda 10, 5 critic steps per generator step, the critic being
the discriminator without its final Sigmoid. The generator step reuses the last critic
iteration's fake images, as the tutorial's loop does. At the end it saves G's state_dict (as a
run would) and prints one JSON line: seconds from process start, steps, images through D.

For the five-minute quality comparison (bench/quality_5min.py): --time-limit SECONDS ends the loop
after the step that reaches that many seconds from the process's start (as `gan train
--time-limit` does; --steps is then an upper bound), and --samples-npy FILE writes --samples
images of G (float32 [N, 1, S, S] in [-1, 1], latents from torch.manual_seed(--sample-seed)) for
`gan evaluate --npy`, with G in eval mode (BatchNorm's running statistics, as RingGAN samples) and,
with --train-mode-npy FILE, also in train mode (batch statistics over batches of 250).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

START = time.time()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import tutorial_models as tm  # noqa: E402


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 2051, f"{path}: not an IDX image file"
        data = f.read(n * h * w)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(n, 1, h, w)


class DCGAN3Generator(nn.Module):
    """The tutorial's DCGAN generator with 3 up-sampling stages (32x32 output)."""

    def __init__(self, latent_dim=100, ngf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
        init_dcgan(self)

    def forward(self, z):
        return self.main(z.view(z.size(0), z.size(1), 1, 1))


class DCGAN3Discriminator(nn.Module):
    def __init__(self, nc=1, ndf=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
        init_dcgan(self)

    def forward(self, img):
        return self.main(img).view(-1, 1)


def init_dcgan(model):
    """The tutorial's DCGAN initialisation (its generator's `_init_weights`: conv and transposed
    conv N(0, 0.02), BatchNorm weight N(1, 0.02), bias 0)."""
    tm.DCGANGenerator._init_weights(model)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "dcgan"], required=True)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--loss", choices=["bce", "wgan-gp"], default="bce")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist-5k"))
    ap.add_argument("--out", default=None, help="where to save G's state_dict (default: a temporary file)")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after the step that reaches this many seconds from start")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--sample-seed", type=int, default=4)
    ap.add_argument("--samples-npy", default=None, help="write --samples eval-mode images of G here (.npy)")
    ap.add_argument("--train-mode-npy", default=None, help="also write them with G in train mode (.npy)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    x = read_idx_images(os.path.join(a.data, "train-images-idx3-ubyte.gz")).float() / 127.5 - 1
    size = a.image_size or (28 if a.model == "mlp" else 32)
    if a.model == "mlp":
        G, D = tm.Generator(100, (1, 28, 28)), tm.Discriminator((1, 28, 28))
    elif size == 32:
        x = F.pad(x, (2, 2, 2, 2), value=-1.0)
        G, D = DCGAN3Generator(), DCGAN3Discriminator()
    elif size == 64:
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        G, D = tm.DCGANGenerator(100, 64, 1), tm.DCGANDiscriminator(1, 64)
    else:
        sys.exit(f"torch_train: no DCGAN for image size {size}")

    wgan = a.loss == "wgan-gp"
    n_critic = 5 if wgan else 1
    if wgan:
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()

    # The critic is D without its final Sigmoid.
    def score(img):
        return D.main[:-1](img).view(-1, 1) if a.model == "dcgan" else D.model[:-1](img)

    n = x.shape[0]
    perm, pos = torch.randperm(n), 0

    def next_batch():
        nonlocal perm, pos
        if pos + a.batch > n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        return x[idx]

    first_step = None
    steps_done = 0
    for step in range(a.steps):
        for it in range(n_critic):
            real = next_batch()
            b = real.size(0)
            z = torch.randn(b, 100)
            fake = G(z)
            opt_d.zero_grad()
            if wgan:
                d_loss = score(fake.detach()).mean() - score(real).mean()
                alpha = torch.rand(b, 1, 1, 1)
                xhat = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
                grad = torch.autograd.grad(score(xhat).sum(), xhat, create_graph=True)[0]
                gp = ((grad.view(b, -1).norm(2, dim=1) - 1) ** 2).mean()
                d_loss = d_loss + 10 * gp
            else:
                d_loss = bce(D(real), torch.ones(b, 1)) + bce(D(fake.detach()), torch.zeros(b, 1))
            d_loss.backward()
            opt_d.step()
        opt_g.zero_grad()
        g_loss = -score(fake).mean() if wgan else bce(D(fake), torch.ones(fake.size(0), 1))
        g_loss.backward()
        opt_g.step()
        steps_done = step + 1
        if first_step is None:
            first_step = time.time() - START
            print(json.dumps({"step": 1}), flush=True)
        if a.time_limit is not None and time.time() - START >= a.time_limit:
            break
    train_seconds = time.time() - START
    out = a.out or f"/tmp/torch_train_{os.getpid()}.pt"
    torch.save(G.state_dict(), out)
    if a.out is None:
        os.remove(out)
    if a.samples_npy:
        import numpy as np
        for mode, path in (("eval", a.samples_npy), ("train", a.train_mode_npy)):
            if not path:
                continue
            G.train(mode == "train")
            torch.manual_seed(a.sample_seed)
            with torch.no_grad():
                imgs = torch.cat([G(torch.randn(min(250, a.samples - s), 100)) for s in range(0, a.samples, 250)])
            np.save(path, imgs.reshape(a.samples, 1, imgs.shape[-2], imgs.shape[-1]).numpy().astype(np.float32))
    print(json.dumps({"seconds": time.time() - START, "train_seconds": train_seconds, "first_step_seconds": first_step, "steps": steps_done,
                      "images": steps_done * n_critic * a.batch, "d_loss": d_loss.item(), "g_loss": g_loss.item(),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
