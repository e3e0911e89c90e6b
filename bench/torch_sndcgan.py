"""The tutorial's spectral-norm discriminator in PyTorch, as a reference for RingGAN's sndcgan
rows of the recipe matrix (issue 27): the 32x32 DCGAN generator of bench/torch_train.py against
the tutorial's `spectral_norm` discriminator (bias-free convolutions, LeakyReLU 0.2, no
BatchNorm, no sigmoid; one stage shorter at 32x32, as RingGAN's), trained on the same 4,500
digits (padded to 32x32, batch 64) with the hinge loss and the tutorial's TTUR (Adam 4e-4 for D,
1e-4 for G, betas 0, 0.9), or with BCE at the tutorial's Adam(2e-4, 0.5, 0.999). Every 250 steps
it writes an 8x8 grid and prints the spread across those 64 latents (per-pixel standard
deviation, as `gan train` logs it).

  python3 bench/torch_sndcgan.py hinge|bce STEPS [OUT_DIR]
"""
import sys, os, time, torch, torch.nn as nn, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import torch_train as tt
from torch.nn.utils import spectral_norm as SN
from PIL import Image
torch.set_num_threads(1); torch.manual_seed(0)
loss = sys.argv[1]; steps = int(sys.argv[2]); out = sys.argv[3] if len(sys.argv) > 3 else '.'
x = tt.read_idx_images(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'mnist-5k', 'train-images-idx3-ubyte.gz')).float() / 127.5 - 1
x = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1)
G = tt.DCGAN3Generator()
ndf = 64
D = nn.Sequential(SN(nn.Conv2d(1, ndf, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2),
                  SN(nn.Conv2d(ndf, ndf*2, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2),
                  SN(nn.Conv2d(ndf*2, ndf*4, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2),
                  SN(nn.Conv2d(ndf*4, 1, 4, 1, 0, bias=False)))
if loss == 'hinge':
    oG = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9)); oD = torch.optim.Adam(D.parameters(), 4e-4, betas=(0.0, 0.9))
else:
    oG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)); oD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
for s in range(steps):
    idx = torch.randint(0, x.shape[0], (64,)); real = x[idx]
    z = torch.randn(64, 100); fake = G(z)
    dr, df = D(real).view(-1), D(fake.detach()).view(-1)
    ld = (torch.relu(1 - dr).mean() + torch.relu(1 + df).mean()) if loss == 'hinge' else bce(dr, torch.ones_like(dr)) + bce(df, torch.zeros_like(df))
    oD.zero_grad(); ld.backward(); oD.step()
    g = D(fake).view(-1)
    lg = -g.mean() if loss == 'hinge' else bce(g, torch.ones_like(g))
    oG.zero_grad(); lg.backward(); oG.step()
    if (s + 1) % 250 == 0:
        G.eval()
        with torch.no_grad(): im = G(torch.randn(64, 100, generator=torch.Generator().manual_seed(1)))
        G.train()
        spread = im.std(0).mean().item()
        t = ((im.clamp(-1, 1) + 1) * 127.5).byte().numpy()[:, 0]
        grid = np.concatenate([np.concatenate(list(t[r*8:(r+1)*8]), 1) for r in range(8)], 0)
        Image.fromarray(grid).save(os.path.join(out, f'{loss}-{s+1}.png'))
        print(loss, s + 1, 'spread', round(spread, 4), 'ld', round(ld.item(), 3), 'lg', round(lg.item(), 3), flush=True)
