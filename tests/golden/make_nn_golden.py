#!/usr/bin/env python3
"""Golden values for nn/ and the pretraining model composed on it
(advcl/pretrain/contrastive_model.h): two SGD training steps of the
reference-shaped AdvCL ResNet-18, computed with PyTorch.

Regenerate (needs torch and safetensors; nothing in the build or the tests
needs PyTorch):

    python3 tests/golden/make_nn_golden.py

writes tests/golden/nn_golden.safetensors, read by
tests/advcl/contrastive_model_golden_test.cpp.

The model here is written independently of ours in plain PyTorch, shaped and
named as the reference's pretraining model (`conv1`, `bn1.bn_list.{i}.*`,
`layerN.M.downsample.conv/bn`, `fc_002..fc_500`, `head_proj.{0,1,3}`) at
width 3 (channels 3, 6, 12, 24: sizes that are not powers of two) on 3x16x16
images, batch 4 per view. As in the reference, every
view is its own forward call: view A with BN set `normal` (0), view B with
set `pgd` (1); the C++ side runs both views in one call with per-view sets,
which is what this file checks.

Everything is computed in float64 from float32-representable initial values
(BN affine parameters and running statistics are randomised so that a wrong
set shows), and stored as float32 (int64 for labels and num_batches_tracked)
to keep the file small. Per step:
  loss = -mean_i <proj(A_i), proj(B_i)> + 0.2 * mean_k CE_mean(fc_k(feat(B)), labels_k)
with labels_002[0] = -1 (ignored). Then torch.optim.SGD(lr 0.1, momentum 0.9,
weight_decay 1e-4) steps; the parameters of set `pgd_ce` get no gradient and
must not move (PyTorch skips p.grad None).

Stored: x [8,3,16,16] (view A rows 0..3, view B rows 4..7), labels.<k>,
init.<state name>, step1.loss, step1.grad.<param>, step2.loss,
final.<state name> (after both steps),
final.momentum.<param>, eval.features and eval.proj (eval mode, after the steps).
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn_golden.safetensors")
WIDTH, SETS, B, HW = 3, 3, 4, 16
PSEUDO = [2, 10, 50, 100, 500]
LR, MOMENTUM, WD, CE_WEIGHT = 0.1, 0.9, 1e-4, 0.2


class MultiBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bn_list = nn.ModuleList([nn.BatchNorm2d(c) for _ in range(SETS)])

    def forward(self, x, s):
        return self.bn_list[s](x)


class Down(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        self.bn = MultiBN(cout)

    def forward(self, x, s):
        return self.bn(self.conv(x), s)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = MultiBN(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = MultiBN(cout)
        self.downsample = Down(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x, s):
        out = F.relu(self.bn1(self.conv1(x), s))
        out = self.bn2(self.conv2(out), s)
        idt = self.downsample(x, s) if self.downsample is not None else x
        return F.relu(out + idt)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        w = WIDTH
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = MultiBN(w)
        cin = w
        for stage in range(4):
            cout = w << stage
            layer = nn.ModuleList([Block(cin, cout, 2 if stage > 0 else 1), Block(cout, cout, 1)])
            setattr(self, f"layer{stage + 1}", layer)
            cin = cout
        feat = 8 * w
        for k in PSEUDO:
            setattr(self, f"fc_{k:03d}", nn.Linear(feat, k))
        self.head_proj = nn.Sequential(nn.Linear(feat, feat), nn.BatchNorm1d(feat), nn.ReLU(), nn.Linear(feat, 128))

    def features(self, x, s):
        h = F.relu(self.bn1(self.conv1(x), s))
        for stage in range(4):
            for blk in getattr(self, f"layer{stage + 1}"):
                h = blk(h, s)
        return h.mean(dim=(2, 3))

    def proj(self, f):
        return F.normalize(self.head_proj(f), dim=1)


def main():
    # Imported here, not at the top: bench/advcl_step_bench.py uses Net on machines without safetensors.
    from safetensors.torch import load_file, save_file

    torch.manual_seed(20211101)
    net = Net()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                c = m.num_features
                m.weight.copy_(1 + 0.2 * torch.randn(c, generator=g))
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                m.num_batches_tracked.fill_(int(torch.randint(0, 50, (1,), generator=g)))
        for p in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            p.copy_(p.float().double())  # float32-representable starting point
    net = net.double()

    tensors = {}

    def put(name, t):
        assert name not in tensors, name
        t = t.detach().contiguous().clone()
        tensors[name] = t.float() if t.is_floating_point() else t

    for name, t in net.state_dict().items():
        put(f"init.{name}", t)

    x = torch.rand(2 * B, 3, HW, HW, generator=g, dtype=torch.float64).float().double()
    put("x", x)
    labels = {}
    for k in PSEUDO:
        labels[k] = torch.randint(0, k, (B,), generator=g, dtype=torch.int64)
    labels[2][0] = -1
    for k in PSEUDO:
        put(f"labels.{k}", labels[k])

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    net.train()
    for step in (1, 2):
        opt.zero_grad(set_to_none=True)
        fa = net.features(x[:B], 0)  # set normal
        fb = net.features(x[B:], 1)  # set pgd
        pa, pb = net.proj(fa), net.proj(fb)  # one head BN, two calls
        ce = sum(F.cross_entropy(getattr(net, f"fc_{k:03d}")(fb), labels[k], ignore_index=-1) for k in PSEUDO)
        loss = -(pa * pb).sum(1).mean() + CE_WEIGHT * ce / len(PSEUDO)
        loss.backward()
        put(f"step{step}.loss", loss)
        if step == 1:  # step 2's gradients show in the final weights; not stored, to keep the file small
            for name, p in net.named_parameters():
                if p.grad is not None:
                    put(f"step{step}.grad.{name}", p.grad)
        opt.step()

    for name, t in net.state_dict().items():
        put(f"final.{name}", t)
    for name, p in net.named_parameters():
        st = opt.state.get(p, {})
        if "momentum_buffer" in st:
            put(f"final.momentum.{name}", st["momentum_buffer"])

    net.eval()
    with torch.no_grad():
        fe = torch.cat([net.features(x[:B], 0), net.features(x[B:], 1)])
        put("eval.features", fe)
        put("eval.proj", net.proj(fe))

    meta = {"generator": "tests/golden/make_nn_golden.py", "torch": torch.__version__, "width": str(WIDTH),
            "lr": str(LR), "momentum": str(MOMENTUM), "weight_decay": str(WD), "ce_weight": str(CE_WEIGHT)}
    save_file(tensors, OUT, metadata=meta)
    back = load_file(OUT)
    assert set(back) == set(tensors)
    print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, loss {tensors['step1.loss'].item():.6f}")


if __name__ == "__main__":
    main()
