"""PyTorch twins of RingGAN's models that go beyond the tutorial's classes (tutorial_models.py):
the progressive DCGAN generator and the StyleGAN generator and discriminator as `gan train` builds them, with the
same state_dict keys, so `gan export` files load with load_state_dict(strict=True) and give the
same images (tools/interop/torch_load_export.py check --model dcgan --progressive / stylegan).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def stages(image_size):
    n, s = 0, 4
    while s < image_size:
        s *= 2
        n += 1
    return n


class ProgressiveGenerator(nn.Module):
    """Sources/GAN/Progressive.swift: transposed conv to 4x4, per level upsample + 3x3 conv +
    BatchNorm + ReLU, a 1x1 to_rgb per level; a level fading in (alpha < 1) blends over the
    previous level's to_rgb, upsampled."""

    def __init__(self, latent_dim=100, ngf=64, nc=1, image_size=32):
        super().__init__()
        n = stages(image_size)
        ch = [max((ngf * 4) >> i, 8) for i in range(n + 1)]
        blocks = [nn.Sequential(nn.ConvTranspose2d(latent_dim, ch[0], 4, 1, 0, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(True))]
        for lv in range(1, n + 1):
            blocks.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                        nn.Conv2d(ch[lv - 1], ch[lv], 3, 1, 1, bias=False), nn.BatchNorm2d(ch[lv]), nn.ReLU(True)))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList([nn.Conv2d(ch[i], nc, 1) for i in range(n + 1)])
        self.level, self.alpha = n, 1.0

    def forward(self, z):
        h = self.blocks[0](z.view(z.size(0), z.size(1), 1, 1))
        prev = h
        for lv in range(1, self.level + 1):
            prev = h
            h = self.blocks[lv](h)
        out = self.to_rgb[self.level](h)
        if self.level > 0 and self.alpha < 1:
            skip = F.interpolate(self.to_rgb[self.level - 1](prev), scale_factor=2, mode="nearest")
            return torch.tanh(skip * (1 - self.alpha) + out * self.alpha)
        return torch.tanh(out)


class EqualizedLinear(nn.Module):
    def __init__(self, in_f, out_f, bias=True, bias_init=0.0, gain=1.0, lr_mul=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), bias_init / lr_mul)) if bias else None
        self.scale = gain / math.sqrt(in_f) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, None if self.bias is None else self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class NoiseInjection(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x, noise):
        return x + noise * self.weight.view(1, -1, 1, 1)


class StyleModulation(nn.Module):
    """AdaIN with the scale centred on 1: (1 + ys) * instance_norm(x) + yb."""

    def __init__(self, num_features, w_dim):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features)
        self.style = EqualizedLinear(w_dim, num_features * 2)

    def forward(self, x, w):
        gamma, beta = self.style(w).chunk(2, dim=1)
        return (1 + gamma[:, :, None, None]) * self.norm(x) + beta[:, :, None, None]


class StyleMappingNetwork(nn.Module):
    def __init__(self, latent_dim, w_dim, num_layers=8, lr_mul=0.01):
        super().__init__()
        self.pixel_norm = PixelNorm()
        layers = []
        for i in range(num_layers):
            layers += [EqualizedLinear(latent_dim if i == 0 else w_dim, w_dim, gain=math.sqrt(2), lr_mul=lr_mul), nn.LeakyReLU(0.2)]
        self.mapping = nn.Sequential(*layers)

    def forward(self, z):
        return self.mapping(self.pixel_norm(z))


class StyleBlock(nn.Module):
    """(4x4 stride-2 transposed conv, none in the first block), noise, AdaIN, ReLU."""

    def __init__(self, in_ch, out_ch, w_dim, upsample):
        super().__init__()
        if upsample:
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)
        self.upsample = upsample
        self.noise = NoiseInjection(out_ch)
        self.adain = StyleModulation(out_ch, w_dim)

    def forward(self, x, w, noise):
        h = self.conv(x) if self.upsample else x
        return F.relu(self.adain(self.noise(h, noise), w))


class SynthesisNetwork(nn.Module):
    """DCGAN's generator with AdaIN in BatchNorm's place: w projected to 4x4, one block per
    resolution 4 ... image_size / 2, a last transposed conv to image channels + tanh."""

    def __init__(self, w_dim, ngf, nc, image_size):
        super().__init__()
        n = stages(image_size)
        ch = [(ngf << (n - 1)) >> i for i in range(n)]
        self.input = nn.ConvTranspose2d(w_dim, ch[0], 4, 1, 0, bias=False)
        self.blocks = nn.ModuleList([StyleBlock(ch[0] if i == 0 else ch[i - 1], ch[i], w_dim, i > 0) for i in range(n)])
        self.to_rgb = nn.ConvTranspose2d(ch[n - 1], nc, 4, 2, 1, bias=False)

    def forward(self, ws, noise):
        h = self.input(ws[0][:, :, None, None])
        for b, w, nz in zip(self.blocks, ws, noise):
            h = b(h, w, nz)
        return torch.tanh(self.to_rgb(h))


class StyleGenerator(nn.Module):
    """Sources/GAN/StyleGAN.swift. `noise`: one [N, 1, r, r] per block (RingGAN draws it from each
    latent's bits; pass the same tensors to compare)."""

    def __init__(self, latent_dim=100, w_dim=128, mapping_layers=8, ngf=64, nc=1, image_size=32):
        super().__init__()
        self.mapping = StyleMappingNetwork(latent_dim, w_dim, mapping_layers)
        self.synthesis = SynthesisNetwork(w_dim, ngf, nc, image_size)

    def forward(self, z, noise):
        w = self.mapping(z)
        return self.synthesis([w] * len(self.synthesis.blocks), noise)


class MinibatchStdDev(nn.Module):
    """Groups of group_size consecutive samples (the largest divisor of the batch not above it);
    each group's feature std (biased, +1e-8), averaged, appended as one more feature map."""

    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(n // g, g, c, h, w)
        s = torch.sqrt((y - y.mean(dim=1, keepdim=True)).pow(2).mean(dim=1, keepdim=True) + 1e-8).mean(dim=(2, 3, 4), keepdim=True)
        return torch.cat([x, s.expand(n // g, g, 1, h, w).reshape(n, 1, h, w)], dim=1)


class StyleDiscriminator(nn.Module):
    """Sources/GAN/StyleGAN.swift: DCGAN's discriminator without BatchNorm (biases on the middle
    convs), minibatch std before the last conv, sigmoid output."""

    def __init__(self, nc=1, ndf=64, image_size=32):
        super().__init__()
        n = stages(image_size)
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        ch = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.stddev = MinibatchStdDev()
        self.last = nn.Conv2d(ch + 1, 1, 4, 1, 0, bias=False)

    def forward(self, x):
        return torch.sigmoid(self.last(self.stddev(self.main(x))).view(-1, 1))
