#!/usr/bin/env python3
"""Golden values for the SimCLR views (datasets/color_ops.h, datasets/resized_crop.h),
computed with torchvision's functional ops on float tensors.

Regenerate (needs `pip install torch torchvision safetensors numpy pillow`;
CPU only; nothing in the build or the tests needs them):

    python3 tests/golden/make_views_golden.py

writes tests/golden/views_golden.safetensors (read by tests/advcl/views_test.cpp).
Deterministic: every input comes from a generator seeded by a CRC of its name.

Contents (all images float32 CHW in [0, 1] unless said otherwise):
  in.rand, in.grad, in.gray    3x32x32 random, 3x32x32 smooth gradients, 1x32x32 random
  in.col, in.colgray           3x16x16 / 1x16x16 for the colour ops; in.col has
                               random pixels plus gray, pure, tied and extreme ones
  rc.<k>.src                   int64 [1]: 0 = in.rand, 1 = in.grad, 2 = in.gray
  rc.<k>.box                   int64 [6]: top, left, height, width, out_h, out_w
  rc.<k>.y                     F.resized_crop(src, top, left, height, width, [out_h, out_w],
                               BILINEAR, antialias=True)
  flip.y                       F.hflip(in.rand)
  gray.y                       F.rgb_to_grayscale(in.col, 3)   (torchvision luma 0.2989)
  bright.<k>.f / .y            [1] float64 factor / F.adjust_brightness(in.col, f)
  contrast.<k>.f / .y, sat.<k>.f / .y, hue.<k>.f / .y    likewise
  g.bright.y, g.contrast.y, g.sat.y, g.hue.y, g.gray.y   the same ops on the 1-channel in.colgray
  jit.<k>.order                int64 [4] (torchvision fn_idx), jit.<k>.f float64 [4]
                               (brightness, contrast, saturation, hue), jit.<k>.y = ColorJitter's
                               forward with those parameters
  mc.area.mean / .hist         Monte Carlo (200,000 draws) of RandomResizedCrop.get_params on a
                               32x32 image, scale (0.2, 1), ratio (3/4, 4/3): mean area fraction
                               h*w/1024 and the fraction in each of 8 bins [0.2 + 0.1 b, 0.3 + 0.1 b)
                               (the last bin includes 1.0); mc.ratio.mean: mean of w/h
  pil.in                       uint8 3x32x32 (in.rand rounded), the reference's kind of input
  pil.rc.y, pil.jit.y          uint8: the PIL path (what the AdvCL reference runs) for
                               rc.1's box and for jit.0's parameters on pil.in: to measure,
                               not to match, how far our float pipeline is from the reference
"""

import math
import os
import zlib

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "views_golden.safetensors")
tensors = {}


def gen(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def put(name, t):
    assert name not in tensors, name
    tensors[name] = t.detach().contiguous().clone()


def f64(*v):
    return torch.tensor(v, dtype=torch.float64)


# ---- inputs
rand = torch.rand((3, 32, 32), generator=gen("in.rand"))
yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
grad = torch.stack([xx / 31, yy / 31, 0.5 + 0.5 * torch.sin((xx + 2 * yy) / 6)]).float()
gray_img = torch.rand((1, 32, 32), generator=gen("in.gray"))
col = torch.rand((3, 16, 16), generator=gen("in.col"))
special = [  # rows of the first column: the corner cases of HSV and blending
    (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
    (1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (0.7, 0.7, 0.2), (0.2, 0.7, 0.7), (0.7, 0.2, 0.7),
    (0.9, 0.3, 0.3), (0.3, 0.9, 0.9), (0.25, 0.5, 0.75), (0.01, 0.0, 0.02),
]
for y, px in enumerate(special):
    col[:, y, 0] = torch.tensor(px)
colgray = torch.rand((1, 16, 16), generator=gen("in.colgray"))
put("in.rand", rand)
put("in.grad", grad)
put("in.gray", gray_img)
put("in.col", col)
put("in.colgray", colgray)

# ---- resized crops (top, left, height, width, out_h, out_w)
srcs = [rand, grad, gray_img]
boxes = [
    (0, rand, 0, 0, 32, 32, 32, 32),   # identity
    (1, rand, 5, 3, 20, 24, 32, 32),   # enlarge, non-square box
    (2, rand, 2, 1, 10, 10, 32, 32),   # strong enlargement (scale 0.1 of the area)
    (3, rand, 0, 0, 32, 32, 16, 16),   # shrink by 2: the antialiasing widens the filter
    (4, rand, 1, 2, 30, 26, 20, 12),   # shrink by non-integer factors
    (5, rand, 7, 0, 25, 32, 32, 32),   # one axis kept, one enlarged
    (6, grad, 1, 2, 14, 18, 32, 32),
    (7, grad, 0, 5, 32, 27, 32, 32),
    (8, gray_img, 4, 4, 16, 20, 32, 32),
]
for k, src, top, left, h, w, oh, ow in boxes:
    si = next(i for i, s in enumerate(srcs) if s is src)
    put(f"rc.{k}.src", torch.tensor([si], dtype=torch.int64))
    put(f"rc.{k}.box", torch.tensor([top, left, h, w, oh, ow], dtype=torch.int64))
    y = F.resized_crop(src, top, left, h, w, [oh, ow], T.InterpolationMode.BILINEAR, antialias=True)
    put(f"rc.{k}.y", y)

# ---- per-pixel ops
put("flip.y", F.hflip(rand))
put("gray.y", F.rgb_to_grayscale(col, num_output_channels=3))
for k, f in enumerate([0.6, 1.0, 1.37]):
    put(f"bright.{k}.f", f64(f))
    put(f"bright.{k}.y", F.adjust_brightness(col, f))
for k, f in enumerate([0.6, 1.25, 1.4, 0.0]):
    put(f"contrast.{k}.f", f64(f))
    put(f"contrast.{k}.y", F.adjust_contrast(col, f))
for k, f in enumerate([0.6, 1.3, 0.0, 1.4]):
    put(f"sat.{k}.f", f64(f))
    put(f"sat.{k}.y", F.adjust_saturation(col, f))
for k, f in enumerate([-0.1, -0.03, 0.05, 0.1, 0.5, -0.5, 0.0]):
    put(f"hue.{k}.f", f64(f))
    put(f"hue.{k}.y", F.adjust_hue(col, f))
put("g.bright.y", F.adjust_brightness(colgray, 1.3))
put("g.contrast.y", F.adjust_contrast(colgray, 0.7))
put("g.sat.y", F.adjust_saturation(colgray, 0.6))
put("g.hue.y", F.adjust_hue(colgray, 0.1))
put("g.gray.y", F.rgb_to_grayscale(colgray, num_output_channels=1))

# ---- ColorJitter with fixed parameters: torchvision's own forward, its
# get_params replaced so that the order and factors are ours.
jitters = [
    ([3, 0, 2, 1], (0.71, 1.32, 0.64, 0.083)),
    ([1, 2, 0, 3], (1.38, 0.62, 1.21, -0.097)),
    ([2, 3, 1, 0], (0.93, 1.05, 1.39, 0.012)),
]
orig_get_params = T.ColorJitter.get_params
for k, (order, fs) in enumerate(jitters):
    T.ColorJitter.get_params = staticmethod(lambda *a, order=order, fs=fs: (torch.tensor(order), *fs))
    cj = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    put(f"jit.{k}.order", torch.tensor(order, dtype=torch.int64))
    put(f"jit.{k}.f", f64(*fs))
    put(f"jit.{k}.y", cj(col))
T.ColorJitter.get_params = orig_get_params

# ---- Monte Carlo of get_params on 32x32
torch.manual_seed(12345)
n = 200_000
dummy = torch.zeros(3, 32, 32)
areas, ratios = np.empty(n), np.empty(n)
for t in range(n):
    i, j, h, w = T.RandomResizedCrop.get_params(dummy, [0.2, 1.0], [3 / 4, 4 / 3])
    areas[t] = h * w / 1024
    ratios[t] = w / h
bins = np.clip(np.floor((areas - 0.2) / 0.1 + 1e-9), 0, 7).astype(int)
put("mc.area.mean", f64(areas.mean()))
put("mc.area.hist", torch.tensor(np.bincount(bins, minlength=8) / n, dtype=torch.float64))
put("mc.ratio.mean", f64(ratios.mean()))
print(f"MC: mean area fraction {areas.mean():.5f} (min {areas.min():.4f}), mean w/h {ratios.mean():.5f}")

# ---- the reference's PIL path, for the record
pil_u8 = (rand * 255).round().to(torch.uint8)
put("pil.in", pil_u8)
pil = Image.fromarray(pil_u8.permute(1, 2, 0).numpy(), "RGB")
_, _, top, left, h, w, oh, ow = boxes[1]
pil_rc = F.resized_crop(pil, top, left, h, w, [oh, ow], T.InterpolationMode.BILINEAR)
put("pil.rc.y", torch.from_numpy(np.asarray(pil_rc).copy()).permute(2, 0, 1))
order, fs = jitters[0]
T.ColorJitter.get_params = staticmethod(lambda *a: (torch.tensor(order), *fs))
pil_jit = T.ColorJitter(0.4, 0.4, 0.4, 0.1)(pil)
T.ColorJitter.get_params = orig_get_params
put("pil.jit.y", torch.from_numpy(np.asarray(pil_jit).copy()).permute(2, 0, 1))

save_file(tensors, OUT, metadata={"generator": "tests/golden/make_views_golden.py", "torch": torch.__version__,
                                   "torchvision": torchvision.__version__})
back = load_file(OUT)
assert all(torch.equal(back[k], v) for k, v in tensors.items())
print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")
