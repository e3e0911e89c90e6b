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
at 32x32 = the project's 32x32 variant DCGAN32Generator / DCGAN32Discriminator; sndcgan at 64x64 =
DCGANGenerator and SNDiscriminator. From tools/ringgan_models.py: --progressive (dcgan/sndcgan) =
ProgressiveGenerator at full resolution; stylegan = StyleGenerator (--w-dim, --mapping-layers) and StyleDiscriminator, its
noise inputs from --noise-prefix. --d-images / --d-outputs also compare the discriminator's outputs.

Needs torch and numpy; uses safetensors.torch when installed and a small reader otherwise.
"""

import argparse
import json
import os
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


# The tutorial's classes live in tools/tutorial_models.py (shared with the other scripts).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tutorial_models import (AdaIN, DCGAN32Discriminator, DCGAN32Generator, DCGANDiscriminator,  # noqa: E402
                             DCGANGenerator, Discriminator, Generator, MappingNetwork, SNDiscriminator)
from ringgan_models import ProgressiveGenerator, StyleDiscriminator, StyleGenerator  # noqa: E402


def build(args, discriminator=False):
    if args.model == "stylegan" and discriminator:
        return StyleDiscriminator(nc=args.nc, ndf=args.ndf, image_size=args.image_size)
    if args.model == "stylegan" and not discriminator:
        return StyleGenerator(latent_dim=args.latent_dim, w_dim=args.w_dim, mapping_layers=args.mapping_layers, ngf=args.ngf,
                              nc=args.nc, image_size=args.image_size)
    if args.progressive and not discriminator:
        return ProgressiveGenerator(latent_dim=args.latent_dim, ngf=args.ngf, nc=args.nc, image_size=args.image_size)
    if args.model == "sndcgan" and args.image_size == 64:
        return SNDiscriminator(nc=args.nc, ndf=args.ndf) if discriminator else \
            DCGANGenerator(latent_dim=args.latent_dim, ngf=args.ngf, nc=args.nc)
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
        if args.d_images:
            # The discriminator's outputs (its class's forward, eval mode) on the same images.
            d.eval()
            with torch.no_grad():
                scores = d(torch.from_numpy(np.load(args.d_images).astype(np.float32))).numpy()
            want = np.load(args.d_outputs)
            result["d_max_abs_diff"] = float(np.abs(scores - want).max()) if scores.shape == want.shape else float("inf")
    g.eval()
    z = torch.from_numpy(np.load(args.latents).astype(np.float32))
    expected = np.load(args.images)
    with torch.no_grad():
        if args.model == "stylegan":
            noise = [torch.from_numpy(np.load(args.noise_prefix + "%d.npy" % i)) for i in range(len(g.synthesis.blocks))]
            images = g(z, noise).numpy()
        else:
            images = g(z).numpy()
    result["shape"] = list(images.shape)
    result["expected_shape"] = list(expected.shape)
    diff = float(np.abs(images - expected).max()) if images.shape == expected.shape else float("inf")
    result["max_abs_diff"] = diff
    result["ok"] = diff < args.tol and result.get("d_max_abs_diff", 0) < args.tol
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
        s.add_argument("--model", choices=["mlp", "dcgan", "sndcgan", "stylegan"], required=True)
        s.add_argument("--progressive", action="store_true")
        s.add_argument("--w-dim", type=int, default=128)
        s.add_argument("--mapping-layers", type=int, default=8)
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
            s.add_argument("--d-images", help="images (.npy) to score with the discriminator")
            s.add_argument("--d-outputs", help="RingGAN's discriminator outputs on --d-images (.npy)")
            s.add_argument("--noise-prefix", help="stylegan: the noise inputs, PREFIX0.npy, PREFIX1.npy, ...")
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
