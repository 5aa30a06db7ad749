#!/usr/bin/env python3
"""Golden values for mixed precision: one training step of the nn golden's
ResNet-18 (tests/golden/make_nn_golden.py: the same model, named as the
reference's, and the same loss) in float32 under
torch.autocast("cpu", dtype=torch.bfloat16), and the same step in plain
float32 for scale.

The nn golden's own sizes (width 3, 16x16 images, 4 per view, randomised batch
norms) are too ill-conditioned for bf16: there PyTorch's bf16 and float32
gradients already differ by O(1). Here: width 4, 32x32 images, 16 per view,
PyTorch's default initialisation, so that the smallest batch-norm batch is
16 x 4 x 4 values.

Regenerate (needs torch; the file format is written here in a few lines, so the
safetensors package is not needed):

    python3 tests/golden/make_bf16_golden.py

writes tests/golden/bf16_golden.safetensors, read by
tests/advcl/contrastive_model_bf16_golden_test.cpp.

PyTorch's autocast and ours agree on what runs in bf16 (convolutions and
linear layers, bf16 operands rounded to nearest even, float32 sums) but not
on what is stored: PyTorch's conv and linear outputs are bf16 tensors (so
batch norm, ReLU and the residual additions see bf16 activations), ours are
float32. The two bf16 steps therefore agree only to about bf16's resolution,
as each agrees with float32; the `fp32.*` values let the test state its
tolerance against that gap.

Stored: init.<state name>, x [32,3,32,32] (view A rows 0..15, view B 16..31),
labels.<k>, and per precision p in {bf16, fp32}: p.step1.loss and
p.step1.grad.<param> (one SGD step is a fixed function of the gradient, so the
updated weights add nothing).
"""

import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_nn_golden  # noqa: E402
from make_nn_golden import CE_WEIGHT, LR, MOMENTUM, PSEUDO, WD, Net  # noqa: E402

WIDTH, B, HW = 4, 16, 32
make_nn_golden.WIDTH = WIDTH  # Net reads its width from there

OUT = os.path.join(HERE, "bf16_golden.safetensors")


DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_file(tensors, path, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        blob = bytes(t.reshape(-1).view(torch.uint8).tolist())  # raw little-endian bytes, without numpy
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def step(init, x, labels, autocast):
    net = Net()
    net.load_state_dict(init)
    net = net.float().train()
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        fa = net.features(x[:B], 0)
        fb = net.features(x[B:], 1)
        pa, pb = net.proj(fa), net.proj(fb)
        ce = sum(F.cross_entropy(getattr(net, f"fc_{k:03d}")(fb), labels[k], ignore_index=-1) for k in PSEUDO)
        loss = -(pa * pb).sum(1).mean() + CE_WEIGHT * ce / len(PSEUDO)
    loss = loss.float()
    loss.backward()
    out = {"step1.loss": loss.detach()}
    for name, p in net.named_parameters():
        if p.grad is not None:
            out[f"step1.grad.{name}"] = p.grad.detach().float()
    return out


def main():
    torch.set_num_threads(1)  # one summation order
    torch.manual_seed(20211101)
    init = {k: v.detach().clone() for k, v in Net().state_dict().items()}
    g = torch.Generator().manual_seed(6)
    x = torch.rand(2 * B, 3, HW, HW, generator=g)
    labels = {k: torch.randint(0, k, (B,), generator=g, dtype=torch.int64) for k in PSEUDO}
    tensors = {"x": x}
    tensors.update({f"init.{k}": v for k, v in init.items()})
    tensors.update({f"labels.{k}": v for k, v in labels.items()})
    for prefix, autocast in (("bf16.", True), ("fp32.", False)):
        for k, v in step(init, x, labels, autocast).items():
            tensors[prefix + k] = v.contiguous()
    gap = abs(tensors["bf16.step1.loss"].item() - tensors["fp32.step1.loss"].item())
    meta = {"generator": "tests/golden/make_bf16_golden.py", "torch": torch.__version__, "width": str(WIDTH),
            "ce_weight": str(CE_WEIGHT), "batch_per_view": str(B),
            "lr": str(LR), "momentum": str(MOMENTUM), "weight_decay": str(WD)}
    save_file(tensors, OUT, meta)
    print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, "
          f"loss bf16 {tensors['bf16.step1.loss'].item():.6f} fp32 {tensors['fp32.step1.loss'].item():.6f} "
          f"(gap {gap:.2e})")


if __name__ == "__main__":
    main()
