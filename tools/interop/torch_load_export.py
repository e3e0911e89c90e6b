#!/usr/bin/env python3
"""PyTorch side of RingGAN's safetensors interop test: the tutorial's own generator classes load
RingGAN's exported weights and produce the same images, and weights PyTorch saves load into
RingGAN.

    # RingGAN -> PyTorch: load an export strictly, run eval-mode forward on latents RingGAN wrote,
    # compare with the images RingGAN wrote.
    python3 tools/interop/torch_load_export.py check --model mlp|dcgan [--image-size 32|64] \
        [--latent-dim 100] [--ngf 64] [--ndf 64] [--nc 1] --generator G.safetensors \
        [--discriminator D.safetensors] --latents z.npy --images images.npy [--tol 1e-4]

    # PyTorch -> RingGAN: a randomly initialised generator (BatchNorm running statistics and
    # num_batches_tracked set too) saved with safetensors.torch.save_file, and latents as .npy.
    python3 tools/interop/torch_load_export.py make --model ... --out G.safetensors \
        --latents-out z.npy [--count 16] [--seed 0] [--latents-dtype float32|float64]

`check` then runs again on RingGAN's images from those latents. Each command prints one JSON
object; `check` exits 1 when an image differs by --tol or more (max abs difference).

Models (copied verbatim from the tutorial, ../shared/seeds/000_c290097a8ca967c7.txt, as in
tools/fixtures/make_nn_fixtures.py): mlp = Generator(latent_dim, img_shape=(nc, 28, 28)) and
Discriminator; dcgan at 64x64 = DCGANGenerator(latent_dim, ngf, nc) and DCGANDiscriminator; dcgan
at 32x32 = the project's 32x32 variant DCGAN32Generator / DCGAN32Discriminator.

Needs torch and numpy; uses safetensors.torch when installed and a small reader otherwise.
"""

import argparse
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

try:
    import safetensors.torch as st
except ImportError:  # pragma: no cover - the test command installs safetensors
    st = None

torch.set_num_threads(1)


# ----------------------------------------------------------------------------
# Model classes, copied from the tutorial (code unchanged, non-English comments dropped).
# ----------------------------------------------------------------------------

class Generator(nn.Module):
    def __init__(self, latent_dim=100, img_shape=(1, 28, 28)):
        super().__init__()
        self.img_shape = img_shape

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(latent_dim, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(torch.prod(torch.tensor(img_shape)))),
            nn.Tanh()  # [-1, 1]
        )

    def forward(self, z):
        img = self.model(z)
        return img.view(img.size(0), *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, img_shape=(1, 28, 28)):
        super().__init__()
        self.model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(int(torch.prod(torch.tensor(img_shape))), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
            nn.Sigmoid()  # [0, 1]
        )

    def forward(self, img):
        return self.model(img)


class DCGANGenerator(nn.Module):
    """z (100,) -> (1024, 4, 4) -> (512, 8, 8) -> (256, 16, 16) -> (128, 32, 32) -> (3, 64, 64)"""

    def __init__(self, latent_dim=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            # z (latent_dim,) -> (ngf*8, 4, 4)
            nn.ConvTranspose2d(latent_dim, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # (ngf*8, 4, 4) -> (ngf*4, 8, 8)
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # (ngf*4, 8, 8) -> (ngf*2, 16, 16)
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # (ngf*2, 16, 16) -> (ngf, 32, 32)
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # (ngf, 32, 32) -> (nc, 64, 64)
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
        )
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.constant_(m.bias, 0)

    def forward(self, z):
        # z: (batch, latent_dim) -> (batch, latent_dim, 1, 1)
        z = z.view(z.size(0), z.size(1), 1, 1)
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """(3, 64, 64) -> (64, 32, 32) -> (128, 16, 16) -> (256, 8, 8) -> (512, 4, 4) -> (1,)"""

    def __init__(self, nc=3, ndf=64):
        super().__init__()
        self.main = nn.Sequential(
            # (nc, 64, 64) -> (ndf, 32, 32)
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf, 32, 32) -> (ndf*2, 16, 16)
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*2, 16, 16) -> (ndf*4, 8, 8)
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*4, 8, 8) -> (ndf*8, 4, 4)
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*8, 4, 4) -> (1, 1, 1)
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.constant_(m.bias, 0)

    def forward(self, img):
        return self.main(img).view(-1, 1)


# ----------------------------------------------------------------------------
# 32x32 DCGAN variant (RingGAN's default for MNIST padded to 32x32); not in the
# tutorial, specified by the project (as in tools/fixtures/make_nn_fixtures.py).
# ----------------------------------------------------------------------------

class DCGAN32Generator(nn.Module):
    def __init__(self, nz=16, ngf=4, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh()
        )

    def forward(self, z):
        z = z.view(z.size(0), z.size(1), 1, 1)
        return self.main(z)


class DCGAN32Discriminator(nn.Module):
    def __init__(self, nc=1, ndf=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )

    def forward(self, img):
        return self.main(img).view(-1, 1)


# ----------------------------------------------------------------------------

def build(args, discriminator=False):
    if args.model == "mlp":
        shape = (args.nc, 28, 28)
        return Discriminator(img_shape=shape) if discriminator else Generator(latent_dim=args.latent_dim, img_shape=shape)
    if args.model == "dcgan" and args.image_size == 64:
        return DCGANDiscriminator(nc=args.nc, ndf=args.ndf) if discriminator else \
            DCGANGenerator(latent_dim=args.latent_dim, ngf=args.ngf, nc=args.nc)
    if args.model == "dcgan" and args.image_size == 32:
        return DCGAN32Discriminator(nc=args.nc, ndf=args.ndf) if discriminator else \
            DCGAN32Generator(nz=args.latent_dim, ngf=args.ngf, nc=args.nc)
    sys.exit("no tutorial class for --model %s --image-size %s" % (args.model, args.image_size))


DTYPES = {"F32": (torch.float32, "<f4"), "F64": (torch.float64, "<f8"), "I64": (torch.int64, "<i8"), "I32": (torch.int32, "<i4")}


def load_file(path):
    """safetensors.torch.load_file, or the same by hand when the package is missing."""
    if st is not None:
        return st.load_file(path)
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        tdtype, npdtype = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + end], dtype=npdtype).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def save_file(tensors, path):
    if st is not None:
        st.save_file(tensors, path)
        return
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        kind = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        blob = t.numpy().astype(DTYPES[kind][1]).tobytes()
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check(args):
    g = build(args)
    sd = load_file(args.generator)
    dtypes = {k: str(v.dtype) for k, v in sd.items()}
    g.load_state_dict(sd, strict=True)
    result = {"generator": type(g).__name__, "keys": len(sd),
              "num_batches_tracked_dtypes": sorted({v for k, v in dtypes.items() if k.endswith("num_batches_tracked")})}
    if args.discriminator:
        d = build(args, discriminator=True)
        dsd = load_file(args.discriminator)
        d.load_state_dict(dsd, strict=True)
        result["discriminator"] = type(d).__name__
        result["discriminator_keys"] = len(dsd)
    g.eval()
    z = torch.from_numpy(np.load(args.latents).astype(np.float32))
    expected = np.load(args.images)
    with torch.no_grad():
        images = g(z).numpy()
    result["shape"] = list(images.shape)
    result["expected_shape"] = list(expected.shape)
    diff = float(np.abs(images - expected).max()) if images.shape == expected.shape else float("inf")
    result["max_abs_diff"] = diff
    result["ok"] = diff < args.tol
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


def make(args):
    torch.manual_seed(args.seed)
    g = build(args)
    # Non-trivial buffers, so that loading them is tested too.
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(1 + 0.5 * torch.rand_like(m.running_var))
                m.num_batches_tracked.fill_(7)
    save_file(g.state_dict(), args.out)
    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((args.count, args.latent_dim)).astype(args.latents_dtype)
    np.save(args.latents_out, z)
    print(json.dumps({"generator": type(g).__name__, "keys": len(g.state_dict()), "out": args.out,
                      "latents": list(z.shape), "latents_dtype": str(z.dtype)}, sort_keys=True))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("check", "make"):
        s = sub.add_parser(name)
        s.add_argument("--model", choices=["mlp", "dcgan"], required=True)
        s.add_argument("--image-size", type=int, default=32)
        s.add_argument("--latent-dim", type=int, default=100)
        s.add_argument("--ngf", type=int, default=64)
        s.add_argument("--ndf", type=int, default=64)
        s.add_argument("--nc", type=int, default=1)
        if name == "check":
            s.add_argument("--generator", required=True)
            s.add_argument("--discriminator")
            s.add_argument("--latents", required=True)
            s.add_argument("--images", required=True)
            s.add_argument("--tol", type=float, default=1e-4)
        else:
            s.add_argument("--out", required=True)
            s.add_argument("--latents-out", required=True)
            s.add_argument("--count", type=int, default=16)
            s.add_argument("--seed", type=int, default=0)
            s.add_argument("--latents-dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args()
    sys.exit(check(args) if args.command == "check" else make(args))


if __name__ == "__main__":
    main()
