#!/usr/bin/env python3
"""Golden values for one whole ACL training step (Jiang et al., NeurIPS 2020,
"Robust Pre-Training by Adversarial Contrastive Learning", the dual-stream
variant ACL-DS; docs/acl.md), computed with PyTorch the way the authors' code
runs it.

Regenerate (needs torch and safetensors; the build and tests never need them):

    python3 tests/golden/make_acl_step_golden.py

writes tests/golden/acl_step_golden.safetensors, read by
tests/advcl/acl_step_golden_test.cpp.

Model, initial weights and sizes follow make_advcl_step_golden.py (its
constants are imported from there): the reference-shaped ResNet-18 of
make_nn_golden.py at width 3 on 3x16x16 images, in float64 so that no sign()
of the attack can flip on rounding, with randomised BN affine parameters. The
attack runs in eval mode, so the running statistics matter: those of `normal`
and `pgd` come from a forward of different random images each (a wrong set
shows). As the authors' model it has two sets, `normal` (0) and `pgd` (1),
and no pseudo-label heads. One step, B = 4 images, two views each, laid out as
the authors' loader does: one batch of 2B rows, the two views of image i in
rows 2i and 2i + 1.

  attack (model in eval mode, BN set `pgd`): delta from the stored start,
    5 iterations of
      delta <- clip(delta + 2/255 * sign(grad_delta NT-Xent(proj(x + delta))), -8/255, 8/255)
      delta <- clip01(x + delta) - x
  training (model in train mode):
    loss = (NT-Xent(proj(x_adv)[pgd]) * w + NT-Xent(proj(x)[normal]) * (2 - w)) / 2,  w = 1
    (the adversarial stream is forwarded first, as in the authors' code:
    it matters for the projection head's single BN set here), backward, SGD
    (lr 0.1, momentum 0.9, weight decay 1e-4).

NT-Xent is written here as the authors' loss: cosine similarities over the
2B rows, temperature 0.5, the partner row as positive, the denominator the
column sum minus the self term e^(1/t); independent of advcl/pretrain/losses.cpp.

Stored: x1, x2 (the two views, [B,3,16,16]), start1, start2 (x + delta0 of
each view), x_adv1, x_adv2 (after the attack), loss, loss_clean, loss_adv,
init.<state name>, final.<state name>.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_advcl_step_golden import (B, EPS, HW, ITERS, LR, MOMENTUM, NORMAL, PGD, randomize_batch_norms,  # noqa: E402
                                    STEP, WD)
import make_nn_golden  # noqa: E402  (the reference-shaped model)

# ACL's model: two BN statistic sets (`normal`, `pgd`) and no pseudo-label
# heads; make_nn_golden's Net reads both when it is built.
make_nn_golden.SETS = 2
make_nn_golden.PSEUDO = []
Net = make_nn_golden.Net

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "acl_step_golden.safetensors")
T = 0.5         # NT-Xent temperature
ADV_WEIGHT = 1  # ACL: both streams weigh the same


def nt_xent(z, t=T):
    """NT-Xent over 2B rows where rows 2i and 2i+1 are a positive pair."""
    norms = z.norm(dim=1, keepdim=True)
    cos = (z @ z.T) / (norms * norms.T).clamp(min=1e-8)
    e = torch.exp(cos / t)
    n = z.shape[0]
    partner = torch.arange(n) ^ 1  # 0<->1, 2<->3, ...
    positive = e[partner, torch.arange(n)]
    others = e.sum(dim=0) - math.exp(1 / t)  # every row of the column but the anchor itself
    return -torch.log(positive / others).mean()


def interleave(a, b):
    """[B, ...] x 2 -> [2B, ...] with a[i] in row 2i and b[i] in row 2i + 1."""
    return torch.stack([a, b], dim=1).reshape(-1, *a.shape[1:])


def embed(net, x, bn_set):
    return net.proj(net.features(x, bn_set))


def acl_attack(net, x, delta):
    """The authors' contrastive PGD: eval mode, BN set `pgd`, both views attacked through one NT-Xent."""
    net.eval()
    for _ in range(ITERS):
        delta = delta.detach().requires_grad_(True)
        loss = nt_xent(embed(net, x + delta, PGD))
        (g,) = torch.autograd.grad(loss, [delta])
        with torch.no_grad():
            delta = torch.clamp(delta + STEP * g.sign(), -EPS, EPS)
            delta = torch.clamp(x + delta, 0, 1) - x
    return (x + delta).detach()


def acl_step(net, opt, x, delta0, adv_weight=ADV_WEIGHT):
    """One ACL-DS step on the interleaved batch x [2B, C, H, W]; returns x_adv and the three losses."""
    x_adv = acl_attack(net, x, delta0)
    net.train()
    opt.zero_grad(set_to_none=True)
    loss_adv = nt_xent(embed(net, x_adv, PGD))
    loss_clean = nt_xent(embed(net, x, NORMAL))
    loss = (loss_clean * (2 - adv_weight) + loss_adv * adv_weight) / 2
    loss.backward()
    opt.step()
    return x_adv, loss, loss_clean, loss_adv


def calibrate_running_stats(net, g):
    """Running statistics of the sets `normal` and `pgd` (and of the head's
    BN) from one train-mode forward of random images each (momentum 1), so
    that the eval-mode attack sees activations of a sensible scale: with
    random running statistics the eval-mode projections nearly coincide and
    the attack's loss is flat (log(2B - 1)). The two sets see different
    images, so they still differ."""
    bns = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d))]
    for m in bns:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        for bn_set in (NORMAL, PGD):
            embed(net, torch.rand(2 * B, 3, HW, HW, generator=g, dtype=torch.float64), bn_set)
    for m in bns:
        m.momentum = 0.1
        m.num_batches_tracked.zero_()


def main():
    from safetensors.torch import save_file

    torch.manual_seed(2020)
    net = Net()
    g = torch.Generator().manual_seed(11)
    randomize_batch_norms(net, g)
    net = net.double()
    calibrate_running_stats(net, g)
    with torch.no_grad():
        for p in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            p.copy_(p.float().double())  # float32-representable starting point

    tensors = {}

    def put(name, t):
        assert name not in tensors, name
        t = t.detach().contiguous().clone()
        # model state as float32 (init is float32-exact; final is compared at float32 precision)
        tensors[name] = t.float() if (t.is_floating_point() and name.startswith(("init.", "final."))) else t

    for name, t in net.state_dict().items():
        put(f"init.{name}", t)
    rand = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    x1, x2 = rand(B, 3, HW, HW), rand(B, 3, HW, HW)
    d1, d2 = (rand(B, 3, HW, HW) * 2 - 1) * EPS, (rand(B, 3, HW, HW) * 2 - 1) * EPS
    put("x1", x1)
    put("x2", x2)
    put("start1", x1 + d1)  # the C++ step starts from these images: x + delta0, bit for bit
    put("start2", x2 + d2)

    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    x_adv, loss, loss_clean, loss_adv = acl_step(net, opt, interleave(x1, x2), interleave(d1, d2))
    put("x_adv1", x_adv[0::2])
    put("x_adv2", x_adv[1::2])
    put("loss", loss)
    put("loss_clean", loss_clean)
    put("loss_adv", loss_adv)
    for name, t in net.state_dict().items():
        put(f"final.{name}", t)

    moved = (x_adv - interleave(x1, x2)).abs().max().item()
    meta = {"generator": "tests/golden/make_acl_step_golden.py", "torch": torch.__version__}
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes, loss {loss.item():.6f} "
          f"(clean {loss_clean.item():.6f}, adversarial {loss_adv.item():.6f}), max |x_adv - x| {moved:.6f}")


if __name__ == "__main__":
    main()
